#!/usr/bin/env bash
# Benchmark `tcplab run --kernel`: the seed's scenarios (and all of scenarios/) on two Debian
# kernels in QEMU guests, kernels already cached, against the same scenarios on the host.
#
#   bench/kernels.sh [KERNEL_A] [KERNEL_B]     (defaults: 6.1 6.12; ACCEL=tcg by default)
#   SUITE_ONLY=1 bench/kernels.sh              the whole suite on the debian:6.1 build only
#                                              (SUITE_KERNEL=SRC, SUITE_REPEAT=N to change)
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
[ -n "${SUITE_ONLY:-}" ] || "$TCPLAB" kernels fetch "$A" "$B" >/dev/null

now() { date +%s.%N; }

measure() { # label, paths... : wall time and the per-kernel figures from --json
  local label=$1; shift
  measure_on "$label" --kernel "$A" --kernel "$B" "$@"
}

measure_on() { # label, run arguments (--kernel K ... paths): wall time and the breakdown
  local label=$1; shift
  local t0 t1
  t0=$(now)
  "$TCPLAB" run --json --accel "$ACCEL" --out "$OUT/$label" "$@" > "$OUT/$label.jsonl" || true
  t1=$(now)
  python3 - "$label" "$t0" "$t1" "$OUT/$label.jsonl" <<'PY'
import json, sys
label, t0, t1, path = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
lines = [json.loads(l) for l in open(path) if l.strip()]
print(f"{label}: {t1 - t0:.1f} s wall, {len(lines)} scenario batches, "
      f"{sum(1 for l in lines if l.get('passed'))} passed, "
      f"{sum(1 for l in lines if l.get('inconclusive'))} inconclusive, "
      f"{sum(l.get('runs') or 0 for l in lines)} runs counted, "
      f"{sum(l.get('timing_miss_runs') or 0 for l in lines)} timing misses")
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
    # Where the time goes: boot; in the guest, its `tcplab run` (the runs themselves and
    # everything around them per scenario: reading it, places, results files), the
    # results files streamed back after it, and the rest (module loads, probes); on the
    # host, the initramfs before QEMU, unpacking the stream after it, and QEMU's start
    # and exit.
    suite = p.get('suite_s') or guest
    transfer = p.get('transfer_s') or 0
    initramfs, unpack = p.get('initramfs_s') or 0, p.get('unpack_s') or 0
    n = max(batches[k], 1)
    setup = suite - runs_s[k]
    print(f"  {'':<28} breakdown: boot {boot:.1f} s, runs {runs_s[k]:.1f} s, "
          f"per-scenario setup {setup:.1f} s ({setup / n:.2f} s x {n}), "
          f"result transfer {transfer + unpack:.1f} s (guest {transfer:.1f} s, host unpack {unpack:.1f} s), "
          f"guest other {guest - suite - transfer:.1f} s, initramfs {initramfs:.1f} s, "
          f"QEMU start/exit {total - initramfs - boot - guest - unpack:.1f} s")
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

if [ -n "${SUITE_ONLY:-}" ]; then
  # The whole suite on one kernel built from source (issue 15 §5, 16): `kernels build`
  # prints the bzImage (cached: no build). SUITE_REPEAT=N adds --repeat N.
  # (SUITE_BZIMAGE=FILE: a copy of it, e.g. while a mutants run holds the shared tree).
  BZ=${SUITE_BZIMAGE:-$("$TCPLAB" kernels build "${SUITE_KERNEL:-debian:6.1}")}
  measure_on "suite-${SUITE_KERNEL:-debian:6.1}${SUITE_REPEAT:+-repeat-$SUITE_REPEAT}" \
    --kernel "$BZ" ${SUITE_REPEAT:+--repeat "$SUITE_REPEAT"} "$ROOT/scenarios"
  echo "target: the whole suite on one kernel under TCG <= 90 s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  exit 0
fi
measure seed "$ROOT/scenarios/seed"
host seed "$ROOT/scenarios/seed"
measure all "$ROOT/scenarios"
host all "$ROOT/scenarios"
echo "targets: seed on both kernels < 30 s, all scenarios on both < 90 s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
