//! The Redis and PostgreSQL groups of the HTTP benchmark (issue #12) and the verdicts of
//! issue #12's targets, from `http.json` (`redis`, `postgres`) and `calls.json` (store calls
//! and round trips of sessionbase's stores). A figure the results lack is "not measured".

use std::fmt::Write as _;

use serde_json::Value;

use super::{num, verdict};

const NOT_MEASURED: &str = "not measured";

/// One backend's contenders: (JSON name, shown name).
const REDIS: [(&str, &str); 5] = [
    ("bare", "bare"),
    ("sessionbase", "sessionbase, memory store"),
    ("sessionbase-redis", "sessionbase `RedisStore`"),
    (
        "sessionbase-redis-cache",
        "sessionbase `RedisStore` + local cache",
    ),
    ("tower-sessions-redis", "tower-sessions Redis store"),
];
const POSTGRES: [(&str, &str); 2] = [
    ("sessionbase-pg", "sessionbase `PostgresStore`"),
    ("tower-sessions-pg", "tower-sessions sqlx `PostgresStore`"),
];
const SCENARIOS: [(&str, &str); 3] = [
    ("c", "read one value"),
    ("d", "increment a counter"),
    ("f", "c with a save every request"),
];

fn or_not_measured(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| NOT_MEASURED.to_owned(), f)
}

/// The group's table: a row per scenario and contender.
fn table(md: &mut String, group: &Value, contenders: &[(&str, &str)], peer: &str) {
    md.push_str(
        "| scenario | contender | req/s | of tower-sessions | server CPU per request | p99 | store round trips per request |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (id, what) in SCENARIOS {
        let s = &group[id];
        let peer_rps = num(&s[peer]["rps"]);
        for (key, shown) in contenders {
            let c = &s[*key];
            let rps = num(&c["rps"]);
            if rps.is_none() && key.ends_with("-cache") {
                // Not written yet: one row says so, in c only.
                if id == "c" {
                    let _ = writeln!(md, "|  | {shown} | {NOT_MEASURED} | | | | |");
                }
                continue;
            }
            let rt = &group["round_trips"][*key][id];
            let round_trips = if matches!(*key, "bare" | "sessionbase") {
                "—".to_owned()
            } else {
                or_not_measured(num(&rt["round_trips"]), |v| {
                    let messages = rt["messages"].as_object().map_or(String::new(), |m| {
                        m.iter()
                            .map(|(k, v)| format!("{} {k}", v.as_f64().unwrap_or(0.0)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    });
                    format!("**{v}** ({messages})")
                })
            };
            let ratio = match (rps, peer_rps) {
                (Some(a), Some(b)) => format!("{:.2}", a / b),
                _ => String::new(),
            };
            let _ = writeln!(
                md,
                "| {} | {shown} | {} | {ratio} | {} | {} | {round_trips} |",
                if *key == contenders[0].0 {
                    format!("{id} ({what})")
                } else {
                    String::new()
                },
                or_not_measured(rps, |v| format!("{v:.0}")),
                or_not_measured(num(&c["cpu_us"]), |v| format!("{v:.1} µs")),
                or_not_measured(num(&c["p99_us"]), |v| format!("{:.2} ms", v / 1000.0)),
            );
        }
    }
    md.push('\n');
}

/// A target "ratio ≥ goal": the row of the verdict table, and the miss.
fn at_least(
    rows: &mut String,
    misses: &mut Vec<String>,
    target: &str,
    ours: Option<f64>,
    theirs: Option<f64>,
    goal: f64,
) {
    let (measured, v) = match (ours, theirs) {
        (Some(a), Some(b)) if a.is_finite() && b.is_finite() && b > 0.0 => {
            let ratio = a / b;
            let measured = format!("{ratio:.2}× ({a:.0} against {b:.0} req/s)");
            if ratio >= goal {
                (measured, verdict(true).to_owned())
            } else {
                let short = 100.0 * (1.0 - ratio / goal);
                misses.push(format!(
                    "{target}: {ratio:.2}×, {short:.0}% short of {goal}×"
                ));
                (
                    measured,
                    format!("{} by {short:.0}% ({ratio:.2}× of {goal}×)", verdict(false)),
                )
            }
        }
        _ => (NOT_MEASURED.to_owned(), NOT_MEASURED.to_owned()),
    };
    let _ = writeln!(rows, "| {target} | {measured} | {v} |");
}

/// The local cache's invalidation delay (`benches/invalidation.rs`): p99 ≤ 5 ms.
fn invalidation_delay(rows: &mut String, misses: &mut Vec<String>, invalidation: &Value) {
    let target = "Redis with local cache: invalidation delay p99 ≤ 5 ms";
    let (Some(p50), Some(p99)) = (
        num(&invalidation["delay_p50_us"]),
        num(&invalidation["delay_p99_us"]),
    ) else {
        let _ = writeln!(rows, "| {target} | {NOT_MEASURED} | {NOT_MEASURED} |");
        return;
    };
    let samples = num(&invalidation["samples"]).unwrap_or_default();
    let measured = format!(
        "p50 {:.2} ms, p99 {:.2} ms over {samples:.0} writes",
        p50 / 1e3,
        p99 / 1e3
    );
    let v = if p99 <= 5000.0 {
        verdict(true).to_owned()
    } else {
        misses.push(format!("{target}: p99 {:.2} ms", p99 / 1e3));
        format!("{} ({:.2} ms)", verdict(false), p99 / 1e3)
    };
    let _ = writeln!(rows, "| {target} | {measured} | {v} |");
}

/// Round trips per store call of sessionbase's PostgreSQL store in c, d and f
/// (`calls.json`: the proxy's round trips over the counting wrapper's store calls).
fn pg_round_trips(rows: &mut String, misses: &mut Vec<String>, calls: &Value) {
    let target = "PostgreSQL: 1 round trip per store call (c, d, f)";
    let mut parts = Vec::new();
    let mut worst: Option<f64> = None;
    for (id, _) in SCENARIOS {
        let s = &calls["postgres"][id];
        let store_calls: Option<f64> = s["store_calls"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_f64).sum());
        match (num(&s["round_trips"]), store_calls) {
            (Some(rt), Some(n)) if n > 0.0 => {
                let per = rt / n;
                parts.push(format!(
                    "{id} {per:.2} ({rt} round trips for {n} store calls)"
                ));
                worst = Some(worst.map_or(per, |w: f64| w.max(per)));
            }
            _ => parts.push(format!("{id} {NOT_MEASURED}")),
        }
    }
    let complete = parts.iter().all(|p| !p.ends_with(NOT_MEASURED));
    let v = match worst {
        None => NOT_MEASURED.to_owned(),
        Some(w) if w <= 1.0 + 1e-9 => {
            let met = verdict(true).to_owned();
            if complete {
                met
            } else {
                format!("{met} where measured")
            }
        }
        Some(w) => {
            misses.push(format!(
                "{target}: up to {w:.2} round trips per store call, {:.2} more than one",
                w - 1.0
            ));
            format!("{} by {:.2} round trips per call", verdict(false), w - 1.0)
        }
    };
    let _ = writeln!(rows, "| {target} | {} | {v} |", parts.join("; "));
}

/// `### Redis and PostgreSQL` of section 2, with issue #12's targets.
pub(crate) fn render(
    md: &mut String,
    misses: &mut Vec<String>,
    http: &Value,
    calls: &Value,
    invalidation: &Value,
) {
    let redis = &http["redis"];
    let pg = &http["postgres"];
    md.push_str(
        "### Redis and PostgreSQL (issue #12)\n\n\
         The same loopback setup on the production stores, same Redis and same PostgreSQL for \
         every contender, fresh servers per scenario, interleaved. tower-sessions is 0.14 with \
         tower-sessions-redis-store 0.16 (`benches/ts_redis_server`) and with \
         tower-sessions-sqlx-store 0.15, feature `postgres` (`benches/ts_pg_server`, its pool \
         opened with sqlx's defaults as the store's example does): the newest versions that \
         resolve together, each in its own cargo project. Scenario **f** is c with a save on \
         every request (rolling sessions): sessionbase's `save_every_request`, \
         tower-sessions' `with_always_save(true)`. *Server CPU per request* is the server \
         process's user + system time (`/proc/PID/stat`) over the run divided by its \
         requests; the store's own CPU is not in it. *Store round trips per request* come \
         from a short extra run of each server with its store behind the counting proxy of \
         section 3 (20 sequential requests on one session; what the client sent in \
         parentheses). On Redis the group also runs sessionbase's memory store, the \
         reference of the local cache's target.\n\n",
    );
    let mut have_redis = false;
    md.push_str("#### Redis\n\n");
    match redis["skipped"].as_str() {
        Some(reason) => {
            let _ = writeln!(md, "Skipped: {reason}.\n");
        }
        None if redis["c"].is_object() => {
            have_redis = true;
            table(md, redis, &REDIS, "tower-sessions-redis");
        }
        None => md.push_str("Not measured.\n\n"),
    }
    md.push_str("#### PostgreSQL\n\n");
    match pg["skipped"].as_str() {
        Some(reason) => {
            let _ = writeln!(md, "Skipped: {reason}.\n");
        }
        None if pg["c"].is_object() => table(md, pg, &POSTGRES, "tower-sessions-pg"),
        None => md.push_str("Not measured.\n\n"),
    }
    if have_redis {
        disturbed(md, http);
    }

    let rps = |group: &Value, id: &str, c: &str| num(&group[id][c]["rps"]);
    let mut rows = String::from("| target of issue #12 | measured | |\n|---|---|---|\n");
    at_least(
        &mut rows,
        misses,
        "Redis without local cache: d ≥ 1.2× tower-sessions",
        rps(redis, "d", "sessionbase-redis"),
        rps(redis, "d", "tower-sessions-redis"),
        1.2,
    );
    pg_round_trips(&mut rows, misses, calls);
    at_least(
        &mut rows,
        misses,
        "PostgreSQL: d ≥ 1.5× tower-sessions' sqlx store",
        rps(pg, "d", "sessionbase-pg"),
        rps(pg, "d", "tower-sessions-pg"),
        1.5,
    );
    at_least(
        &mut rows,
        misses,
        "Rolling sessions (f) on Redis: ≥ 2× tower-sessions",
        rps(redis, "f", "sessionbase-redis"),
        rps(redis, "f", "tower-sessions-redis"),
        2.0,
    );
    at_least(
        &mut rows,
        misses,
        "Rolling sessions (f) on PostgreSQL: ≥ 2× tower-sessions",
        rps(pg, "f", "sessionbase-pg"),
        rps(pg, "f", "tower-sessions-pg"),
        2.0,
    );
    at_least(
        &mut rows,
        misses,
        "Redis with local cache: c ≥ 0.85 of the memory store",
        rps(redis, "c", "sessionbase-redis-cache"),
        rps(redis, "c", "sessionbase"),
        0.85,
    );
    at_least(
        &mut rows,
        misses,
        "Redis with local cache: d ≥ 2× tower-sessions Redis",
        rps(redis, "d", "sessionbase-redis-cache"),
        rps(redis, "d", "tower-sessions-redis"),
        2.0,
    );
    invalidation_delay(&mut rows, misses, invalidation);
    md.push_str(&rows);
    md.push_str(
        "\nRatios are of requests/s measured in the same interleaved group; round trips per \
         store call are `cargo bench --bench calls`' (the proxy's round trips over the \
         counting wrapper's store calls).\n\n",
    );
}

/// Flags a Redis group whose bare server ran far below its memory-group throughput.
fn disturbed(md: &mut String, http: &Value) {
    let usual: Vec<f64> = ["a", "c", "d", "e"]
        .iter()
        .filter_map(|id| num(&http["memory"][id]["bare"]["rps"]))
        .collect();
    if usual.is_empty() {
        return;
    }
    let usual = usual.iter().sum::<f64>() / usual.len() as f64;
    let disturbed: Vec<String> = SCENARIOS
        .iter()
        .filter_map(|(id, _)| {
            let b = num(&http["redis"][id]["bare"]["rps"])?;
            (b < 0.8 * usual).then(|| {
                format!(
                    "in Redis scenario {id} the bare server ran at {:.2} of its throughput in the memory groups",
                    b / usual
                )
            })
        })
        .collect();
    if !disturbed.is_empty() {
        let _ = writeln!(
            md,
            "**Disturbed run:** {}: something else loaded the machine during that group, so \
             its numbers are less reliable than the others (the interleaving spreads the \
             disturbance over the contenders, but not evenly).\n",
            disturbed.join("; ")
        );
    }
}
