#!/usr/bin/env bash
# Benchmark `tcplab run` against the C floor (bench/floor.c) and the seed's manual method,
# measured in the same run. Needs root.
#
#   bench/run.sh [N] [JOBS]      (defaults: N=2000 runs, JOBS=4; the seed's method: N/20 runs)
#
# 1. the C floor, built here from bench/floor.c with cc: `floor fresh` (fork + new namespace +
#    capture socket + exchange per run) and `floor pooled` (one namespace and capture socket
#    for the batch, a fresh port per run); see the comment at the top of floor.c.
# 2. fresh mode:  tcplab run --repeat N --jobs JOBS            (new namespace + capture per run)
# 3. pooled mode: tcplab run --repeat N --jobs JOBS --pooled   (one namespace + capture, fresh ports)
#    both on scenarios/seed/seed-zero-delay.toml, with capture, kernel states, classification
#    and the batch's results (summary.json, meta.json, runs.jsonl; --keep-pcaps $KEEP, default
#    none: nothing written per run). Each tcplab mode runs right after its floor, so a ratio
#    compares two measurements taken under the same load.
# 4. the seed's method: per run, tcpdump on lo inside a namespace made with `unshare -n`, a
#    python3 server and a python3 client (the seed's programs), tcpdump stopped after the run.
#    SEED_N=0 skips it.
# Prints runs/s of each and the ratios. Drops are read from tcplab's --json output.
set -euo pipefail
N=${1:-2000}
JOBS=${2:-4}
KEEP=${KEEP:-none}
FLOOR_FRESH_N=${FLOOR_FRESH_N:-$(( N / 4 ))}
FLOOR_POOLED_N=${FLOOR_POOLED_N:-$(( N * 2 ))}
CC=${CC:-cc}
SEED_N=${SEED_N:-$(( N / 20 ))}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TCPLAB=${TCPLAB:-$ROOT/target/release/tcplab}
SCEN=$ROOT/scenarios/seed/seed-zero-delay.toml
OUT=$(mktemp -d /tmp/tcplab-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
[ -x "$TCPLAB" ] || { echo "build first: cargo build --release -p tcplab-cli (or set TCPLAB)" >&2; exit 2; }

now() { date +%s.%N; }
rate() { python3 -c "print(f'{$1/($3-$2):.1f}')"; }

measure() { # label, extra args...
  local label=$1; shift
  local t0 t1 line
  t0=$(now)
  line=$("$TCPLAB" run "$SCEN" --repeat "$N" --out "$OUT/res" --keep-pcaps "$KEEP" --json "$@")
  t1=$(now)
  local r; r=$(rate "$N" "$t0" "$t1")
  echo "$label: $N runs in $(python3 -c "print(f'{$t1-$t0:.2f}')") s = $r runs/s; $(echo "$line" | python3 -c 'import json,sys; d=json.loads(sys.stdin.readline()); print("counts", d["counts"], "drops", d["drops"], "passed", d["passed"])')" >&2
  echo "$r"
}

# The C floor, compiled for this machine in this run.
command -v "$CC" >/dev/null || { echo "bench: a C compiler is needed for bench/floor.c (apt-get install gcc, or set CC)" >&2; exit 2; }
"$CC" -O2 -Wall -o "$OUT/floor" "$ROOT/bench/floor.c"
floor() { # mode, n -> runs/s on stdout, the floor's line on stderr
  local line; line=$("$OUT/floor" "$1" "$2")
  echo "floor $1: $line" >&2
  echo "$line" | awk '{ print $4 }'
}

FLOOR_FRESH=$(floor fresh "$FLOOR_FRESH_N")
FRESH=$(measure "fresh  (--jobs $JOBS)" --jobs "$JOBS")
FLOOR_POOLED=$(floor pooled "$FLOOR_POOLED_N")
POOLED=$(measure "pooled (--jobs $JOBS)" --jobs "$JOBS" --pooled)

# The seed's method, as the blog post did it by hand, automated: one namespace for the batch
# (`unshare -n`), and per run: tcpdump started (and waited for), server + client in python3,
# tcpdump stopped. Port 60000 as in the seed.
cat > "$OUT/server.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 60000)); s.listen(5)
print("ready", flush=True)
c, a = s.accept()
d = c.recv(1024)
if d == b"get": c.sendall(b"200 ok")
c.close()
PY
cat > "$OUT/client.py" <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(("127.0.0.1", 60000)); s.sendall(b"get"); s.recv(1024); s.close()
PY
cat > "$OUT/seed.sh" <<'SH'
set -e
ip link set lo up
for i in $(seq 1 "$1"); do
  rm -f "$2/tcpdump.err" "$2/srv.out"
  tcpdump -i lo -nn -w "$2/seed-$i.pcap" -U tcp port 60000 2>"$2/tcpdump.err" &
  td=$!
  until grep -q "listening on" "$2/tcpdump.err" 2>/dev/null; do sleep 0.005; done
  python3 "$2/server.py" > "$2/srv.out" &
  sv=$!
  until grep -q ready "$2/srv.out" 2>/dev/null; do sleep 0.002; done
  python3 "$2/client.py"
  wait "$sv"
  sleep 0.05   # let the last ACK reach tcpdump
  kill -INT "$td"; wait "$td" || true
done
SH
SEED=0
if [ "$SEED_N" -gt 0 ]; then
  t0=$(now)
  unshare -n bash "$OUT/seed.sh" "$SEED_N" "$OUT"
  t1=$(now)
  SEED=$(rate "$SEED_N" "$t0" "$t1")
  echo "seed method (tcpdump + 2 python3 per run): $SEED_N runs in $(python3 -c "print(f'{$t1-$t0:.2f}')") s = $SEED runs/s" >&2
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores" >&2
python3 - "$FRESH" "$POOLED" "$SEED" "$FLOOR_FRESH" "$FLOOR_POOLED" <<'PY'
import sys
f, p, s, ff, fp = map(float, sys.argv[1:])
print(f"runs/s: fresh {f:.1f}, pooled {p:.1f}, C floor fresh {ff:.1f}, C floor pooled {fp:.1f}" + (f", seed method {s:.1f}" if s else ""))
print(f"ratios to the C floor: fresh {f/ff:.2f} (goal >= 2/3: {'met' if f/ff >= 2/3 else 'MISSED'}), pooled {p/fp:.2f} (goal >= 1/3: {'met' if p/fp >= 1/3 else 'MISSED'})")
if s:
    print(f"ratios: fresh/seed {f/s:.1f}x, pooled/seed {p/s:.1f}x, pooled/fresh {p/f:.1f}x")
print(f"targets: fresh >= 100/s {'met' if f >= 100 else 'MISSED'}, pooled >= 1000/s {'met' if p >= 1000 else 'MISSED'}")
PY
