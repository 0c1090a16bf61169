#!/usr/bin/env bash
# Benchmark `tcplab run --kernel`: the seed's scenarios (and all of scenarios/) on two Debian
# kernels in QEMU guests, kernels already cached, against the same scenarios on the host.
#
#   bench/kernels.sh [KERNEL_A] [KERNEL_B]     (defaults: 6.1 6.12; ACCEL=tcg by default)
#
# Prints wall times, each kernel's boot time, the scenarios' time in the guest vs on the host,
# the bytes of results moved back from each guest, and where each guest's time went: boot,
# the runs, per-scenario setup in the guest, the host side. Needs root (the host runs; apt).
set -euo pipefail
A=${1:-6.1}
B=${2:-6.12}
ACCEL=${ACCEL:-tcg}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TCPLAB=${TCPLAB:-$ROOT/target/release/tcplab}
OUT=$(mktemp -d /tmp/tcplab-bench-kernels.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
[ -x "$TCPLAB" ] || { echo "build first: make build (or set TCPLAB)" >&2; exit 2; }
"$TCPLAB" kernels fetch "$A" "$B" >/dev/null

now() { date +%s.%N; }

measure() { # label, paths... : wall time and the per-kernel figures from --json
  local label=$1; shift
  local t0 t1
  t0=$(now)
  "$TCPLAB" run --json --accel "$ACCEL" --kernel "$A" --kernel "$B" --out "$OUT/$label" "$@" \
    > "$OUT/$label.jsonl" || true
  t1=$(now)
  python3 - "$label" "$t0" "$t1" "$OUT/$label.jsonl" <<'PY'
import json, sys
label, t0, t1, path = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
lines = [json.loads(l) for l in open(path) if l.strip()]
print(f"{label}: both kernels {t1 - t0:.1f} s wall, {len(lines)} scenario batches, "
      f"{sum(1 for l in lines if l.get('passed'))} passed")
seen, runs_s, batches = {}, {}, {}
for l in lines:
    seen.setdefault(l["kernel"], l)
    # A batch's elapsed_s is its runs, from the first run's start to the last run's end.
    runs_s[l["kernel"]] = runs_s.get(l["kernel"], 0.0) + (l.get("elapsed_s") or 0.0)
    batches[l["kernel"]] = batches.get(l["kernel"], 0) + 1
for k, l in seen.items():
    p, c = l["place"], l["conditions"]
    boot, guest, total = p['boot_s'] or 0, p['guest_s'] or 0, p['elapsed_s'] or 0
    print(f"  {k:<28} boot {boot:.1f} s, scenarios {guest:.1f} s in the guest, "
          f"{total:.1f} s in all, {p['bytes_moved'] / 1048576:.2f} MiB moved back "
          f"({c['accel']}, {c['cpus']} cpu, {c['memory_mib']} MiB)")
    # Where the time goes: boot; in the guest, the runs themselves and everything around
    # them per scenario (reading it, the kernel trace's start and stop, results files);
    # the rest on the host (QEMU start and exit, moving results back).
    setup = guest - runs_s[k]
    print(f"  {'':<28} breakdown: boot {boot:.1f} s, runs {runs_s[k]:.1f} s, "
          f"per-scenario setup {setup:.1f} s ({setup / max(batches[k], 1):.2f} s x {batches[k]}), "
          f"host side {total - boot - guest:.1f} s")
PY
}

host() { # label, paths...: the same scenarios natively
  local label=$1; shift
  local t0 t1
  t0=$(now)
  "$TCPLAB" run --json --out "$OUT/host-$label" "$@" > /dev/null || true
  t1=$(now)
  python3 -c "import sys; print(f'  host ({sys.argv[1]}): {float(sys.argv[3]) - float(sys.argv[2]):.1f} s for the same scenarios natively')" "$label" "$t0" "$t1"
}

measure seed "$ROOT/scenarios/seed"
host seed "$ROOT/scenarios/seed"
measure all "$ROOT/scenarios"
host all "$ROOT/scenarios"
echo "targets: seed on both kernels < 30 s, all scenarios on both < 90 s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
