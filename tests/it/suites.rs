//! Says which store suites this `cargo test` leaves out, and fails when a run that must
//! cover everything (`.ci/run` sets `SESSIONBASE_REQUIRE_ALL_SUITES=1`) would leave one out.

use std::io::Write as _;

fn not_run() -> Vec<String> {
    let mut missing = Vec::new();
    let mut check = |name: &str, feature_on: bool, feature: &str, var: &str| {
        if !feature_on {
            missing.push(format!(
                "{name} store tests not built: add `--features {feature}` (or `--all-features`) and set {var}"
            ));
        } else if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
            missing.push(format!("{name} store tests skipped: {var} not set"));
        }
    };
    check(
        "PostgreSQL",
        cfg!(feature = "postgres"),
        "postgres",
        "DATABASE_URL",
    );
    check(
        "MySQL/MariaDB",
        cfg!(feature = "mysql"),
        "mysql",
        "MYSQL_URL",
    );
    check("Redis", cfg!(feature = "redis"), "redis", "REDIS_URL");
    check(
        "Redis Cluster",
        cfg!(all(feature = "redis", feature = "conformance")),
        "redis,conformance",
        "REDIS_CLUSTER_URLS",
    );
    // The failover suites start clusters of their own (tests/it/common/cluster.rs).
    let installed = |program: &str| {
        std::process::Command::new(program)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if cfg!(feature = "redis") && !(installed("redis-server") && installed("redis-cli")) {
        missing.push(
            "Redis Cluster failover tests skipped: redis-server or redis-cli not installed".into(),
        );
    }
    missing
}

#[test]
fn every_suite_runs_when_required() {
    let missing = not_run();
    // Straight to stderr: libtest captures eprintln! of passing tests.
    let mut stderr = std::io::stderr();
    for line in &missing {
        let _ = writeln!(stderr, "note: {line}");
    }
    if std::env::var_os("SESSIONBASE_REQUIRE_ALL_SUITES").is_some() {
        assert!(
            missing.is_empty(),
            "suites left out of a run that requires all: {missing:?}"
        );
    }
}
