//! Writing the session's `Set-Cookie` per request (issue #11, part 6): sessionbase's
//! template, joined once per configuration in Django's attribute order, against the `cookie`
//! crate building and rendering the same cookie; and the `expires` date, hand-written against
//! `httpdate` and `time`'s formatter. The middleware keeps hand-written code only where the
//! crates cost more than 20 ns a request here; the figures are quoted in
//! `src/middleware/set_cookie.rs`.

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cookie::{Cookie, SameSite};
use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderValue;
use sessionbase::SessionConfig;
use sessionbase::bench_support::{SetCookieRenderer, http_date};
use time::OffsetDateTime;

const KEY: &str = "ld2xyabcdefgh0123456789abcdefghi";
const AGE: i64 = 1_209_600;

fn set_cookie(c: &mut Criterion) {
    let now = OffsetDateTime::from_unix_timestamp(1_780_000_000).expect("a date");
    let renderer = SetCookieRenderer::new(&SessionConfig::default());
    let mut group = c.benchmark_group("set_cookie");
    group.bench_function("sessionbase_template", |b| {
        b.iter(|| renderer.render(black_box(KEY), Some(AGE), black_box(now)))
    });
    group.bench_function("cookie_crate", |b| {
        b.iter(|| {
            let cookie = Cookie::build(("sessionid", black_box(KEY)))
                .expires(black_box(now) + time::Duration::seconds(AGE))
                .http_only(true)
                .max_age(time::Duration::seconds(AGE))
                .path("/")
                .same_site(SameSite::Lax)
                .build();
            HeaderValue::try_from(cookie.to_string()).ok()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("http_date");
    let seconds = 1_781_209_600_i64;
    group.bench_function("hand_written", |b| {
        let mut out = Vec::with_capacity(32);
        b.iter(|| {
            out.clear();
            http_date(&mut out, black_box(seconds));
            black_box(&out);
        })
    });
    group.bench_function("httpdate", |b| {
        let at = UNIX_EPOCH + Duration::from_secs(seconds as u64);
        b.iter(|| httpdate::fmt_http_date(black_box(at)))
    });
    group.bench_function("time_format", |b| {
        let format = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        b.iter(|| {
            OffsetDateTime::from_unix_timestamp(black_box(seconds))
                .expect("a date")
                .format(format)
        })
    });
    group.bench_function("httpdate_from_system_time_now", |b| {
        b.iter(|| httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(AGE as u64)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = set_cookie
}
criterion_main!(benches);
