#!/usr/bin/env bash
# Runs every benchmark of issue #5 and rewrites BENCHMARKS.md and benches/results/*.svg.
#
#   bash benches/report.sh
#
# Needs: cargo; wrk (installed from Debian when missing); valgrind for instruction counts
# (optional); Redis at REDIS_URL and PostgreSQL at DATABASE_URL for the round-trip and Redis
# benchmarks (started like .ci/run does when installed but down; skipped and said so when
# unreachable). Measurement takes about 9 minutes on 2 cores; a cold build adds a few.
set -euo pipefail
cd "$(dirname "$0")/.."

export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
export CARGO_TERM_COLOR=never
RESULTS="$PWD/target/bench-results"
export SESSIONBASE_BENCH_RESULTS="$RESULTS"
mkdir -p "$RESULTS"

step() { printf '\n== %s\n' "$*" >&2; }

step "tools"
if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null \
    || echo "could not install wrk: the HTTP benchmark will be skipped" >&2
fi
if ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 && command -v redis-server >/dev/null; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/bench.log || true
fi
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q \
  && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi

build_start=$(date +%s)
step "build (sessionbase's benches, all features; benches/ts_redis_server, benches/ts_pg_server)"
cargo bench --all-features --no-run
CARGO_TARGET_DIR="$PWD/target/ts_redis_server" \
  cargo build --release --manifest-path benches/ts_redis_server/Cargo.toml
export TS_REDIS_SERVER="$PWD/target/ts_redis_server/release/ts-redis-server"
CARGO_TARGET_DIR="$PWD/target/ts_pg_server" \
  cargo build --release --manifest-path benches/ts_pg_server/Cargo.toml
export TS_PG_SERVER="$PWD/target/ts_pg_server/release/ts-pg-server"
build_end=$(date +%s)

run_start=$(date +%s)
step "1. in-process (criterion)"
rm -rf target/criterion/inprocess_* target/criterion/signing
cargo bench --all-features --bench inprocess
step "5. signed cookies (criterion)"
cargo bench --all-features --bench signing
step "3. store calls, allocations, round trips, instructions"
cargo bench --all-features --bench calls >/dev/null
step "4. memory"
cargo bench --all-features --bench memory
step "2. over loopback HTTP (wrk)"
cargo bench --all-features --bench http
step "2b. many requests on one session (loopback HTTP)"
cargo bench --all-features --bench contention
step "2c. the Redis local cache's invalidation delay"
cargo bench --all-features --bench invalidation
run_end=$(date +%s)

step "machine"
{
  echo '| | |'
  echo '|---|---|'
  echo "| CPU | $(lscpu | sed -n 's/^Model name: *//p' | head -n1) |"
  echo "| cores | $(nproc) ($(lscpu | sed -n 's/^Thread(s) per core: *//p') thread(s) per core) |"
  echo "| memory | $(free -h | awk '/^Mem:/ {print $2}') |"
  echo "| kernel | $(uname -sr) |"
  echo "| virtualization | $(lscpu | sed -n 's/^Hypervisor vendor: *//p') $(lscpu | sed -n 's/^Virtualization type: *//p') |"
  echo "| rustc | $(rustc --version) |"
  echo "| wrk | $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2) |"
  echo "| Redis | $(redis-cli -u "$REDIS_URL" info server 2>/dev/null | sed -n 's/^redis_version:\(.*\)\r$/\1/p') |"
  echo "| PostgreSQL | $(psql "$DATABASE_URL" -tAc 'show server_version' 2>/dev/null || true) |"
  echo "| sessionbase | $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet -- src 2>/dev/null || echo ' with uncommitted changes in src/') |"
  echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
  echo "| report.sh | build $((build_end - build_start)) s, measurement $((run_end - run_start)) s |"
} > "$RESULTS/machine.md"
cat "$RESULTS/machine.md" >&2

step "report"
cargo bench --all-features --bench report -- --out BENCHMARKS.md
