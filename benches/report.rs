//! Writes BENCHMARKS.md and its plots from what the other benchmarks left behind
//! (`target/criterion/` and `target/bench-results/`): `benches/report.sh` runs it last as
//! `cargo bench --bench report -- --out BENCHMARKS.md`. Without `--out` it prints the
//! report instead. Every verdict is computed from the numbers of this run.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::Value;

// Redis and PostgreSQL over HTTP, with issue #12's targets.
#[path = "report/stores.rs"]
mod stores;

const SCENARIOS: [(&str, &str); 5] = [
    ("a", "session never extracted, no cookie"),
    ("b", "session never extracted, valid cookie"),
    ("c", "read one value"),
    ("d", "increment a counter"),
    ("e", "insert into a new session"),
];
/// Bare, the no-op layer, sessionbase and tower-sessions, in each placement of the layers.
const PLACEMENTS: [(&str, [&str; 4]); 2] = [
    (
        "per route",
        ["bare", "noop-layer", "sessionbase", "tower-sessions"],
    ),
    (
        "around the router",
        [
            "bare",
            "noop-around",
            "sessionbase-around",
            "tower-sessions-around",
        ],
    ),
];

struct Inputs {
    root: PathBuf,
    results: PathBuf,
}

impl Inputs {
    fn json(&self, name: &str) -> Value {
        std::fs::read_to_string(self.results.join(name))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    }

    fn text(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.results.join(name)).ok()
    }

    /// Criterion's median estimate, in nanoseconds.
    fn criterion(&self, group: &str, function: &str) -> Option<f64> {
        let path = self
            .root
            .join("target/criterion")
            .join(group)
            .join(function.replace('/', "_"))
            .join("new/estimates.json");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        v["median"]["point_estimate"].as_f64()
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**missed**" }
}

fn ns(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} µs", v / 1000.0)
    } else {
        format!("{v:.0} ns")
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// A grouped bar chart: one group per label, one bar per series.
fn bar_chart(
    title: &str,
    unit: &str,
    labels: &[String],
    series: &[(&str, &str, Vec<f64>)],
    reference: Option<(f64, &str)>,
) -> String {
    let (width, height) = (760.0, 360.0);
    let (left, right, top, bottom) = (70.0, 20.0, 40.0, 70.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let max = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .chain(reference.map(|r| r.0))
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.1;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{title}</text>
"##,
        width / 2.0
    );
    for i in 0..=5 {
        let v = max * i as f64 / 5.0;
        let y = top + plot_h - plot_h * i as f64 / 5.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 6.0,
            y + 4.0,
            if max >= 10.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        );
    }
    let _ = writeln!(
        svg,
        r##"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">{unit}</text>"##,
        top + plot_h / 2.0
    );
    let group_w = plot_w / labels.len().max(1) as f64;
    let bar_w = group_w * 0.8 / series.len().max(1) as f64;
    for (g, label) in labels.iter().enumerate() {
        let x0 = left + group_w * g as f64 + group_w * 0.1;
        for (s, (_, color, values)) in series.iter().enumerate() {
            let Some(&v) = values.get(g) else { continue };
            if !v.is_finite() {
                continue;
            }
            let h = plot_h * v.max(0.0) / max;
            let x = x0 + bar_w * s as f64;
            let _ = writeln!(
                svg,
                r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{color}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"##,
                top + plot_h - h,
                bar_w - 2.0,
                x + bar_w / 2.0 - 1.0,
                top + plot_h - h - 3.0,
                if v >= 10.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                }
            );
        }
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            left + group_w * (g as f64 + 0.5),
            top + plot_h + 16.0
        );
    }
    if let Some((v, name)) = reference {
        let y = top + plot_h - plot_h * v / max;
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#555" stroke-dasharray="5,4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{name}</text>"##,
            left + plot_w,
            left + plot_w,
            y - 4.0
        );
    }
    let mut lx = left;
    for (name, color, _) in series {
        let _ = writeln!(
            svg,
            r##"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{color}"/><text x="{:.1}" y="{:.1}">{name}</text>"##,
            height - 26.0,
            lx + 16.0,
            height - 16.0
        );
        lx += 20.0 + 8.0 * name.len() as f64;
    }
    svg.push_str("</svg>\n");
    svg
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let results = std::env::var_os("SESSIONBASE_BENCH_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/bench-results"));
    if out.is_none() && !results.join("calls.json").exists() {
        // `cargo bench` with nothing measured yet (or `cargo test --benches`).
        return;
    }
    let inputs = Inputs { root, results };
    let plots = inputs.root.join("benches/results");
    let (md, svgs) = render(&inputs);
    match out {
        Some(path) => {
            std::fs::create_dir_all(&plots).expect("benches/results");
            for (name, svg) in svgs {
                std::fs::write(plots.join(name), svg).expect("write plot");
            }
            std::fs::write(&path, md).expect("write the report");
            eprintln!("wrote {}", path.display());
        }
        None => print!("{md}"),
    }
}

/// One in-process table: `names` are bare, the no-op layer, sessionbase and tower-sessions
/// in one placement. Returns the overheads over bare of sessionbase and tower-sessions.
fn inprocess_table(
    inputs: &Inputs,
    md: &mut String,
    misses: &mut Vec<String>,
    names: [&str; 4],
    placement: &str,
) -> (Vec<f64>, Vec<f64>) {
    let _ = writeln!(
        md,
        "| scenario | bare | {} | sessionbase | tower-sessions | sessionbase overhead | tower-sessions overhead | overhead sessionbase / tower-sessions | sessionbase over {} | target | |\n\
         |---|---|---|---|---|---|---|---|---|---|---|",
        names[1], names[1]
    );
    let mut sb_over = Vec::new();
    let mut ts_over = Vec::new();
    for (id, _) in SCENARIOS {
        let group = format!("inprocess_{id}");
        let t: Vec<Option<f64>> = names.iter().map(|c| inputs.criterion(&group, c)).collect();
        let (Some(bare), Some(sb), Some(ts)) = (t[0], t[2], t[3]) else {
            let _ = writeln!(md, "| {id} | not measured | | | | | | | | | |");
            sb_over.push(f64::NAN);
            ts_over.push(f64::NAN);
            continue;
        };
        let (o_sb, o_ts) = (sb - bare, ts - bare);
        sb_over.push(o_sb);
        ts_over.push(o_ts);
        let (target, ok) = if matches!(id, "a" | "b") {
            ("≤ 5% of bare".to_owned(), o_sb <= 0.05 * bare)
        } else {
            ("≤ ⅓ of tower-sessions'".to_owned(), o_sb <= o_ts / 3.0)
        };
        if !ok {
            misses.push(format!(
                "in-process {id}, layer {placement}: sessionbase adds {} ({:.0}% of bare, {:.2} of tower-sessions' {}); target {target}",
                ns(o_sb),
                100.0 * o_sb / bare,
                o_sb / o_ts,
                ns(o_ts)
            ));
        }
        let noop = t[1].unwrap_or(f64::NAN);
        let _ = writeln!(
            md,
            "| {id} | {} | {} | {} | {} | +{} ({:.0}% of bare) | +{} ({:.0}%) | {:.2} | +{} | {target} | {} |",
            ns(bare),
            ns(noop),
            ns(sb),
            ns(ts),
            ns(o_sb),
            100.0 * o_sb / bare,
            ns(o_ts),
            100.0 * o_ts / bare,
            o_sb / o_ts,
            ns(sb - noop),
            verdict(ok)
        );
    }
    md.push('\n');
    (sb_over, ts_over)
}

fn render(inputs: &Inputs) -> (String, Vec<(&'static str, String)>) {
    let mut md = String::new();
    let mut svgs = Vec::new();
    let mut misses: Vec<String> = Vec::new();
    let calls = inputs.json("calls.json");
    let http = inputs.json("http.json");
    let memory = inputs.json("memory.json");

    md.push_str(
        "# Benchmarks\n\n\
         Written by `benches/report.sh` (see [How to run](#how-to-run)); every number and \
         verdict below comes from one run of it on the machine described at the end. Absolute \
         times drift from run to run and machine to machine; the ratios between contenders \
         measured in the same run are what count.\n\n\
         Contenders: **bare** (the same axum router with no session layer: the floor), \
         **sessionbase** (`SessionLayer::new(MemoryStore::new())`, Django's defaults) and \
         **tower-sessions** 0.15 with its `MemoryStore` (`Secure` off like sessionbase's \
         default); in-process only, also **noop-layer**: the bare router with a layer that \
         does nothing (`MapRequestLayer` of the identity) added by `Router::layer` like the \
         session layers, which shows what axum itself charges for any layer (it boxes and \
         clones the layered route per request); and every layer a second time wrapped \
         around the whole router (**noop-around**, **sessionbase-around**, \
         **tower-sessions-around**). Every handler answers a static `\"ok\"`; the scenarios are issue #5's:\n\n\
         | scenario | request |\n|---|---|\n\
         | a | handler never extracts the session, no cookie |\n\
         | b | handler never extracts the session, a valid cookie is sent |\n\
         | c | handler reads one value from an existing session |\n\
         | d | handler increments a counter (read, modify, save, Set-Cookie) on an existing session |\n\
         | e | handler inserts into a new session (no cookie in, Set-Cookie out) |\n\n",
    );

    // ----- summary placeholder, filled at the end -----
    md.push_str("@@SUMMARY@@");

    // ----- 1. in-process -----
    md.push_str(
        "## 1. In-process (criterion)\n\n\
         `cargo bench --bench inprocess`: the router driven through `tower::ServiceExt::oneshot` \
         on a current-thread Tokio runtime, requests built outside the timed part \
         (`iter_batched`). Median time per request; *overhead* is the time over the bare \
         router in the same scenario.\n\n\
         Two placements of each layer. **Per route**: `Router::layer`, as most axum apps \
         add middleware; axum then boxes and clones the layered route on every request, \
         which the noop-layer contender shows. **Around the router**: the layer wraps the \
         whole `Router` (`Layer::layer(router)`, as `tower::ServiceBuilder` does), so that \
         what is measured is the layer alone. Targets are judged in both.\n\n\
         ### Layer per route (`Router::layer`)\n\n",
    );
    let (sb_over, ts_over) = inprocess_table(
        inputs,
        &mut md,
        &mut misses,
        ["bare", "noop-layer", "sessionbase", "tower-sessions"],
        "per route",
    );
    md.push_str("### Layer around the router\n\n");
    let (sb_around, ts_around) = inprocess_table(
        inputs,
        &mut md,
        &mut misses,
        [
            "bare",
            "noop-around",
            "sessionbase-around",
            "tower-sessions-around",
        ],
        "around the router",
    );
    md.push_str(
        "\n![In-process overhead per scenario](benches/results/overhead-inprocess.svg)\n\n",
    );
    let labels: Vec<String> = SCENARIOS.iter().map(|s| s.0.to_owned()).collect();
    svgs.push((
        "overhead-inprocess.svg",
        bar_chart(
            "In-process overhead over the bare router (ns per request, lower is better)",
            "ns over bare",
            &labels,
            &[
                ("sessionbase, per route", "#2b7bb9", sb_over),
                ("tower-sessions, per route", "#e8853d", ts_over),
                ("sessionbase, around", "#9cc3e6", sb_around),
                ("tower-sessions, around", "#f4c39b", ts_around),
            ],
            None,
        ),
    ));

    // Instructions.
    let cg = &calls["callgrind"];
    if cg["bare"].is_object() {
        md.push_str(
            "### Instructions per request (callgrind)\n\n\
             The same requests counted by callgrind (`cargo bench --bench calls`), exact and \
             repeatable: instructions per request in the measured loop, and over bare.\n\n\
             | scenario, layer | bare | no-op layer | sessionbase | tower-sessions | sessionbase over bare | tower-sessions over bare | ratio of the overheads | sessionbase over no-op layer |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        for (placement, names) in PLACEMENTS {
            for (id, _) in SCENARIOS {
                let g = |c: &str| num(&cg[c][id]).unwrap_or(f64::NAN);
                let (b, s, t) = (g(names[0]), g(names[2]), g(names[3]));
                let noop = g(names[1]);
                let _ = writeln!(
                    md,
                    "| {id}, {placement} | {b:.0} | {noop:.0} | {s:.0} | {t:.0} | +{:.0} ({:.0}%) | +{:.0} ({:.0}%) | {:.2} | +{:.0} |",
                    s - b,
                    100.0 * (s - b) / b,
                    t - b,
                    100.0 * (t - b) / b,
                    (s - b) / (t - b),
                    s - noop
                );
            }
        }
        md.push('\n');
    } else if let Some(reason) = cg["skipped"].as_str() {
        let _ = writeln!(md, "Callgrind instruction counts skipped: {reason}.\n");
    }

    // Allocations.
    let al = &calls["allocations"];
    if al["bare"].is_object() {
        md.push_str(
            "### Heap allocations per request\n\n\
             A counting global allocator (`cargo bench --bench calls`), 2,000 requests after a \
             warm-up: allocations (and bytes asked for) per request. Target for a and b: at \
             most one small allocation over bare.\n\n\
             | scenario, layer | bare | no-op layer | sessionbase | tower-sessions | sessionbase added | tower-sessions added | sessionbase over no-op layer | target | |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        );
        for (placement, names) in PLACEMENTS {
            for (id, _) in SCENARIOS {
                let a = |c: &str| num(&al[c][id]["allocations"]).unwrap_or(f64::NAN);
                let b = |c: &str| num(&al[c][id]["bytes"]).unwrap_or(f64::NAN);
                let [bare, noop, sb, ts] = names;
                let added = a(sb) - a(bare);
                let (target, verdict_text) = if matches!(id, "a" | "b") {
                    let ok = added <= 1.0;
                    if !ok {
                        misses.push(format!(
                            "allocations {id}, layer {placement}: sessionbase adds {added:.1} allocations ({:.0} bytes) per request; target at most one",
                            b(sb) - b(bare)
                        ));
                    }
                    ("≤ 1", verdict(ok))
                } else {
                    ("", "")
                };
                let _ = writeln!(
                    md,
                    "| {id}, {placement} | {:.1} ({:.0} B) | {:.1} ({:.0} B) | {:.1} ({:.0} B) | {:.1} ({:.0} B) | +{added:.1} | +{:.1} | +{:.1} | {target} | {verdict_text} |",
                    a(bare),
                    b(bare),
                    a(noop),
                    b(noop),
                    a(sb),
                    b(sb),
                    a(ts),
                    b(ts),
                    a(ts) - a(bare),
                    a(sb) - a(noop),
                );
            }
        }
        md.push('\n');
    }

    // ----- 2. HTTP -----
    md.push_str("## 2. Over loopback HTTP (wrk)\n\n");
    if let Some(reason) = http["skipped"].as_str() {
        let _ = writeln!(md, "Skipped: {reason}.\n");
    } else {
        let setup = &http["setup"];
        let _ = writeln!(
            md,
            "`cargo bench --all-features --bench http`: one server process per contender (a \
             one-worker Tokio runtime{}), `wrk -t1 -c{}`{}, {} s per run, {} rounds with the \
             contenders interleaved (A B C, C B A, …) after a warm-up; medians of the rounds. \
             Requests of c and d rotate over {} sessions created beforehand. p99 is wrk's, \
             under saturation (closed loop): it mostly measures queueing and scheduler noise.\n",
            if setup["pinned"].as_bool() == Some(true) {
                ", pinned to CPU 0"
            } else {
                ""
            },
            setup["connections"],
            if setup["pinned"].as_bool() == Some(true) {
                " pinned to CPU 1"
            } else {
                ""
            },
            setup["seconds_per_run"],
            setup["rounds"],
            setup["sessions"],
        );
        md.push_str(
            "| scenario | bare req/s | sessionbase req/s (of bare) | tower-sessions req/s (of bare) | sessionbase / tower-sessions | p99 bare / sessionbase / tower-sessions | target | |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        let mut sb_frac = Vec::new();
        let mut ts_frac = Vec::new();
        let mut http_labels = Vec::new();
        for id in ["a", "c", "d", "e"] {
            let s = &http["memory"][id];
            let rps = |c: &str| num(&s[c]["rps"]).unwrap_or(f64::NAN);
            let p99 = |c: &str| num(&s[c]["p99_us"]).unwrap_or(f64::NAN);
            let (b, sb, ts) = (rps("bare"), rps("sessionbase"), rps("tower-sessions"));
            sb_frac.push(sb / b);
            ts_frac.push(ts / b);
            http_labels.push(id.to_owned());
            let min = match id {
                "c" => Some(0.9),
                "d" | "e" => Some(0.8),
                _ => None,
            };
            let (target, v) = match min {
                Some(m) => {
                    let ok = sb / b >= m;
                    if !ok {
                        misses.push(format!(
                            "HTTP {id}: sessionbase keeps {:.2} of the bare throughput; target ≥ {m}",
                            sb / b
                        ));
                    }
                    (format!("≥ {m} of bare"), verdict(ok))
                }
                None => (String::new(), ""),
            };
            let _ = writeln!(
                md,
                "| {id} | {b:.0} | {sb:.0} ({:.2}) | {ts:.0} ({:.2}) | {:.2} | {:.2} / {:.2} / {:.2} ms | {target} | {v} |",
                sb / b,
                ts / b,
                sb / ts,
                p99("bare") / 1000.0,
                p99("sessionbase") / 1000.0,
                p99("tower-sessions") / 1000.0,
            );
        }
        md.push_str(
            "\n![Throughput as a fraction of bare](benches/results/throughput-http.svg)\n\n",
        );
        svgs.push((
            "throughput-http.svg",
            bar_chart(
                "HTTP throughput as a fraction of the bare router (higher is better)",
                "fraction of bare req/s",
                &http_labels,
                &[
                    ("sessionbase", "#2b7bb9", sb_frac),
                    ("tower-sessions", "#e8853d", ts_frac),
                ],
                Some((1.0, "bare")),
            ),
        ));
    }
    // Also without wrk: the verdicts of issue #12 then say "not measured".
    let invalidation = inputs.json("invalidation.json");
    stores::render(&mut md, &mut misses, &http, &calls, &invalidation);

    // ----- 2b. many requests on one session -----
    if let Some(contention) = inputs.text("contention.md") {
        md.push_str("### Many requests on one session\n\n");
        md.push_str(&contention);
        md.push('\n');
    }

    // ----- 3. store calls and round trips -----
    md.push_str(
        "## 3. Store calls and round trips\n\n\
         `cargo bench --all-features --bench calls`. Store calls per request through a \
         counting wrapper around the store; for Redis and PostgreSQL, what the client sent \
         and the network round trips, counted by a proxy between the store and the server \
         (a round trip: the server answering after the client spoke).\n\n\
         | scenario | expected | sessionbase (memory) | tower-sessions (memory) | sessionbase Redis: commands, round trips | tower-sessions Redis | sessionbase PostgreSQL: messages, round trips | |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let fmt_calls = |v: &Value| -> String {
        match v.as_object() {
            Some(m) if m.is_empty() => "none".to_owned(),
            Some(m) => m
                .iter()
                .map(|(k, v)| format!("{} {k}", v.as_f64().unwrap_or(0.0)))
                .collect::<Vec<_>>()
                .join(", "),
            None => "—".to_owned(),
        }
    };
    let fmt_wire = |v: &Value| -> String {
        if v.is_null() {
            return "—".to_owned();
        }
        format!(
            "{}; **{}**",
            fmt_calls(&v["messages"]),
            v["round_trips"].as_f64().unwrap_or(f64::NAN)
        )
    };
    for (id, _) in SCENARIOS {
        let (expected, expected_rt): (&[(&str, f64)], f64) = match id {
            "a" | "b" => (&[], 0.0),
            "c" => (&[("load", 1.0)], 1.0),
            "d" => (&[("load", 1.0), ("save", 1.0)], 2.0),
            _ => (&[("create", 1.0)], 1.0),
        };
        let sb = &calls["store_calls"]["sessionbase"][id];
        let ok_calls = sb.as_object().is_some_and(|m| {
            m.len() == expected.len()
                && expected
                    .iter()
                    .all(|(k, n)| m.get(*k).and_then(Value::as_f64) == Some(*n))
        });
        let redis_rt = calls["redis"][id]["round_trips"].as_f64();
        let ok_redis = redis_rt.is_none_or(|r| r == expected_rt)
            && calls["redis"][id]["messages"].get("EXISTS").is_none();
        let ok = ok_calls && ok_redis;
        if !ok {
            misses.push(format!("store calls or Redis round trips in {id}"));
        }
        let exp = if expected.is_empty() {
            "no store call".to_owned()
        } else {
            expected
                .iter()
                .map(|(k, _)| format!("one {k}"))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        let _ = writeln!(
            md,
            "| {id} | {exp} | {} | {} | {} | {} | {} | {} |",
            fmt_calls(sb),
            fmt_calls(&calls["store_calls"]["tower-sessions"][id]),
            fmt_wire(&calls["redis"][id]),
            fmt_wire(&calls["tower_sessions_redis"][id]),
            fmt_wire(&calls["postgres"][id]),
            verdict(ok),
        );
    }
    for (name, key) in [
        ("Redis", "redis"),
        ("tower-sessions Redis", "tower_sessions_redis"),
        ("PostgreSQL", "postgres"),
    ] {
        if let Some(reason) = calls[key]["skipped"].as_str() {
            let _ = writeln!(md, "\n{name} skipped: {reason}.");
        }
    }
    // PostgreSQL's round trips per store call are judged with issue #12's targets (section 2).
    md.push('\n');

    // ----- 4. memory -----
    md.push_str("## 4. Memory\n\n");
    if memory.is_object() {
        let sb = &memory["sessionbase"];
        let ts = &memory["tower_sessions"];
        let over = num(&sb["overhead_beyond_data"]).unwrap_or(f64::NAN);
        let ok = over <= 200.0;
        if !ok {
            misses.push(format!(
                "MemoryStore: {over:.0} bytes of overhead per session beyond its data; target ≤ 200"
            ));
        }
        let _ = writeln!(
            md,
            "`cargo bench --bench memory`. {} sessions of `{{\"user_id\": n}}` ({} bytes of JSON) \
             created in each store; heap bytes from a tracking global allocator (bytes asked \
             for, live), resident memory from `/proc/self/statm`. *Data* is the session's map \
             measured alone before the store took it.\n\n\
             | store | data (heap) | total heap per session | overhead beyond data | resident per session | target | |\n\
             |---|---|---|---|---|---|---|\n\
             | sessionbase `MemoryStore` | {:.0} B | {:.0} B | {over:.0} B | {:.0} B | ≤ 200 B | {} |\n\
             | tower-sessions `MemoryStore` | {:.0} B | {:.0} B | {:.0} B | {:.0} B | | |\n",
            sb["sessions"],
            sb["json_bytes"],
            num(&sb["data_heap_bytes"]).unwrap_or(f64::NAN),
            num(&sb["heap_bytes_per_session"]).unwrap_or(f64::NAN),
            num(&sb["rss_bytes_per_session"]).unwrap_or(f64::NAN),
            verdict(ok),
            num(&ts["data_heap_bytes"]).unwrap_or(f64::NAN),
            num(&ts["heap_bytes_per_session"]).unwrap_or(f64::NAN),
            num(&ts["overhead_beyond_data"]).unwrap_or(f64::NAN),
            num(&ts["rss_bytes_per_session"]).unwrap_or(f64::NAN),
        );
        md.push_str(
            "\nChurn: sessions created at a steady rate, each expiring 2 s later, nothing \
             else calling the store. The store reclaims expired records in periodic sweeps, \
             so it swings between about one and two live sets; growth compares the peak of \
             the second half of the run (once the live set is reached) with the peak of the \
             first half.\n\n\
             | store | run | rate achieved | records at the end | live heap growth | resident growth | max live heap | target | |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        let mut churn_samples = Vec::new();
        for (name, key) in [
            ("sessionbase `MemoryStore`", "sessionbase_churn"),
            ("tower-sessions `MemoryStore`", "tower_sessions_churn"),
        ] {
            let c = &memory[key];
            if !c.is_object() {
                continue;
            }
            let live_growth = num(&c["live_growth"]).unwrap_or(f64::NAN);
            let rss_growth = num(&c["rss_growth"]).unwrap_or(f64::NAN);
            let last = c["samples"].as_array().and_then(|s| s.last()).cloned();
            let records = last.as_ref().map_or(Value::Null, |l| l["records"].clone());
            let (target, v) = if key == "sessionbase_churn" {
                let ok = live_growth.abs() <= 0.10 && rss_growth.abs() <= 0.10;
                if !ok {
                    misses.push(format!(
                        "MemoryStore churn: live heap grew {:.0}% and resident memory {:.0}% after the live set was reached ({records} records held at the end for a live set of about {:.0})",
                        100.0 * live_growth,
                        100.0 * rss_growth,
                        num(&c["rate_per_sec"]).unwrap_or(0.0) * num(&c["ttl_secs"]).unwrap_or(0.0)
                    ));
                }
                ("flat (±10%)", verdict(ok))
            } else {
                ("", "")
            };
            let _ = writeln!(
                md,
                "| {name} | {} s | {:.0}/s | {records} | {:+.0}% | {:+.0}% | {:.0} MB | {target} | {v} |",
                c["seconds"],
                num(&c["achieved_rate"]).unwrap_or(f64::NAN),
                100.0 * live_growth,
                100.0 * rss_growth,
                num(&c["max_live_bytes"]).unwrap_or(f64::NAN) / 1e6,
            );
            churn_samples.push((name, c["samples"].clone()));
        }
        if let Some((_, samples)) = churn_samples.first()
            && let Some(samples) = samples.as_array()
        {
            md.push_str("\nsessionbase churn, every 5 s: ");
            let points: Vec<String> = samples
                .iter()
                .enumerate()
                .filter(|(i, _)| (i + 1) % 5 == 0)
                .map(|(_, s)| {
                    format!(
                        "{:.0} s: {} records, {:.0} MB live, {:.0} MB resident",
                        s["t"].as_f64().unwrap_or(0.0),
                        s["records"],
                        s["live_bytes"].as_f64().unwrap_or(0.0) / 1e6,
                        s["rss_bytes"].as_f64().unwrap_or(0.0) / 1e6
                    )
                })
                .collect();
            md.push_str(&points.join("; "));
            md.push_str(".\n");
        }
        md.push('\n');
    } else {
        md.push_str("Not measured.\n\n");
    }

    // ----- 5. signing -----
    md.push_str(
        "## 5. Signed-cookie encode and decode\n\n\
         `cargo bench --bench signing`: sessionbase's Django-compatible signing (what \
         `CookieStore` does per save and per load) against the `cookie` crate's signed jar \
         (HMAC-SHA256, base64), median per operation. *small* is `{\"user_id\":42,\"counter\":7}`, \
         *1k* a compressible cart of 24 items (≈ 1 KiB of JSON). sessionbase's encode always \
         tries zlib, as Django's `dumps(compress=True)` does for `signed_cookies`, and keeps \
         the compressed form only when shorter.\n\n\
         | operation | sessionbase | cookie jar | sessionbase / cookie |\n|---|---|---|---|\n",
    );
    for (label, ours, theirs) in [
        (
            "sign (HMAC over a ready value)",
            "sessionbase/sign",
            Some("cookie/sign"),
        ),
        ("verify", "sessionbase/verify", Some("cookie/verify")),
        (
            "encode small (JSON, zlib attempt, base64, sign)",
            "sessionbase/encode_small",
            Some("cookie/encode_small"),
        ),
        (
            "encode small without the zlib attempt",
            "sessionbase/encode_small_nozlib",
            Some("cookie/encode_small"),
        ),
        (
            "decode small (verify, base64, JSON)",
            "sessionbase/decode_small",
            Some("cookie/decode_small"),
        ),
        (
            "encode 1k (zlib wins)",
            "sessionbase/encode_1k",
            Some("cookie/encode_1k"),
        ),
        (
            "decode 1k (inflate)",
            "sessionbase/decode_1k",
            Some("cookie/decode_1k"),
        ),
    ] {
        let a = inputs.criterion("signing", ours);
        let b = theirs.and_then(|t| inputs.criterion("signing", t));
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} |",
            a.map_or("—".into(), ns),
            b.map_or("—".into(), ns),
            match (a, b) {
                (Some(a), Some(b)) => format!("{:.2}", a / b),
                _ => "—".into(),
            }
        );
    }
    md.push('\n');

    // ----- findings (hand-written, from profiles) -----
    if let Ok(notes) = std::fs::read_to_string(inputs.root.join("benches/NOTES.md")) {
        md.push_str(&notes);
        md.push('\n');
    }

    // ----- how to run, machine -----
    md.push_str(
        "## How to run\n\n\
         ```sh\nbash benches/report.sh          # everything, then rewrites BENCHMARKS.md and benches/results/*.svg\n\
         cargo bench --bench inprocess   # one part alone (criterion: append a filter, e.g. -- inprocess_d)\n\
         cargo bench --bench signing\n\
         cargo bench --bench memory\n\
         cargo bench --all-features --bench calls   # + TS_REDIS_SERVER=... for tower-sessions' Redis\n\
         cargo bench --all-features --bench http    # needs wrk; + TS_REDIS_SERVER=... TS_PG_SERVER=...\n```\n\n\
         `report.sh` installs `wrk` (Debian) when missing, builds `benches/ts_redis_server` \
         (tower-sessions 0.14 + tower-sessions-redis-store 0.16) and `benches/ts_pg_server` \
         (tower-sessions 0.14 + tower-sessions-sqlx-store 0.15), separate cargo projects \
         since those cannot share a lockfile with tower-sessions 0.15 cleanly, and uses Redis \
         at `REDIS_URL` and PostgreSQL at `DATABASE_URL` when they answer (defaults \
         `redis://127.0.0.1:6379/`, `postgres://postgres@127.0.0.1:5432/test`). Raw results \
         stay in `target/bench-results/` (JSON; callgrind profiles under `callgrind/`).\n\n",
    );
    md.push_str("## Machine\n\n");
    match inputs.text("machine.md") {
        Some(m) => md.push_str(&m),
        None => md.push_str("Not recorded (run `benches/report.sh`).\n"),
    }

    // ----- summary -----
    let mut summary = String::from("## Verdicts of this run\n\n");
    if misses.is_empty() {
        summary.push_str("Every target of issues #5 and #12 was met.\n\n");
    } else {
        summary
            .push_str("Targets of issues #5 and #12 that sessionbase **missed** in this run:\n\n");
        for m in &misses {
            let _ = writeln!(summary, "- {m}");
        }
        summary.push_str(
            "\nEvery other target was met. What costs the time and the allocations on each \
             path is in [Profile findings](#profile-findings).\n\n",
        );
    }
    let md = md.replace("@@SUMMARY@@", &summary);
    (md, svgs)
}
