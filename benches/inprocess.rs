//! In-process cost of a session layer (issue #5, benchmark 1): the axum router driven
//! through `tower::ServiceExt::oneshot` with requests built outside the timed part, for
//! scenarios a to e, each for the bare router, sessionbase and tower-sessions (both on their
//! in-memory store), with the layers added by `Router::layer` and again wrapped around the
//! whole router (`*-around`).
//!
//! `cargo bench --bench inprocess`; criterion keeps the estimates under
//! `target/criterion/inprocess_<scenario>/<contender>/`, which `benches/report.sh` tabulates.

mod common;

use std::time::Duration;

use axum::Router;
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tower::ServiceExt;

use common::{App, Contender, Scenario};

fn layers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for scenario in Scenario::ALL {
        let mut group = c.benchmark_group(format!("inprocess_{}", scenario.id()));
        for contender in Contender::ALL {
            let app: Router = contender.router();
            let cookie = runtime.block_on(common::cookie_for(contender, &app));
            runtime.block_on(common::check(contender, scenario, &app, &cookie));
            bench(
                &mut group,
                &runtime,
                scenario,
                contender.name(),
                app,
                &cookie,
            );
        }
        common::visit_around(&mut Around {
            group: &mut group,
            runtime: &runtime,
            scenario,
        });
        group.finish();
    }
}

fn bench<S: App>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    scenario: Scenario,
    name: &str,
    app: S,
    cookie: &str,
) {
    group.bench_function(name, |b| {
        b.to_async(runtime).iter_batched(
            || scenario.request(cookie),
            |request| app.clone().oneshot(request),
            BatchSize::SmallInput,
        );
    });
}

/// The contenders whose layer wraps the whole router.
struct Around<'a, 'g> {
    group: &'a mut BenchmarkGroup<'g, WallTime>,
    runtime: &'a Runtime,
    scenario: Scenario,
}

impl common::AroundVisitor for Around<'_, '_> {
    fn visit<S: App>(&mut self, contender: Contender, name: &'static str, app: S) {
        let cookie = self.runtime.block_on(common::cookie_for(contender, &app));
        self.runtime
            .block_on(common::check(contender, self.scenario, &app, &cookie));
        bench(self.group, self.runtime, self.scenario, name, app, &cookie);
    }
}

criterion_group! {
    name = benches;
    // Short runs: benches/report.sh must finish everything in 10 minutes on 2 cores.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(50);
    targets = layers
}
criterion_main!(benches);
