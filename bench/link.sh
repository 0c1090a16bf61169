#!/usr/bin/env bash
# Benchmark the delayed link and the kernel state trace (needs root).
#
#   bench/link.sh [RUNS] [BASELINE_TCPLAB]
#
# 1-3: crates/runner/examples/link_bench.rs (link runs/s at --jobs 1/4/8, the relay's delay
#      error p50/p99 idle and under load, KernelTrace start/finish cost, traced runs/s).
# 4:   tracing overhead per run, end to end: `tcplab run seed-three-way --repeat RUNS` with
#      this build (kernel states recorded) and with BASELINE_TCPLAB (a build without them,
#      e.g. the main branch's target/release/tcplab), --jobs 1 and 8; the difference of the
#      per-run wall times is the cost of the kernel states per run.
set -euo pipefail
RUNS=${1:-200}
BASE=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cargo build --release --locked -p tcplab-cli -p tcplab-runner --example link_bench >&2
./target/release/examples/link_bench "$RUNS"
OUT=$(mktemp -d /tmp/tcplab-link-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
per_run() { # binary jobs -> ms per run
  local t0 t1
  t0=$(date +%s.%N)
  "$1" run scenarios/seed/seed-three-way.toml --repeat "$RUNS" --jobs "$2" --out "$OUT" \
    --keep-pcaps none >/dev/null
  t1=$(date +%s.%N)
  python3 -c "print(f'{($t1-$t0)*1e3/$RUNS:.2f}')"
}
if [ -n "$BASE" ]; then
  echo "4. tracing overhead per run (seed-three-way, $RUNS runs)"
  for j in 1 8; do
    a=$(per_run ./target/release/tcplab "$j")
    b=$(per_run "$BASE" "$j")
    echo "  --jobs $j: with kernel states $a ms/run, without $b ms/run"
  done
fi
