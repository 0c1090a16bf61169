#!/usr/bin/env bash
# Throughput and peak memory of `tcplab analyze` against cat, tcpdump and tshark, on one
# generated capture of 1,000,000 interleaved connections (~10M packets), plus an exact check
# of the teardown counts against the generator's truth. See bench/README.md.
#
# A benchmark, not a test: the speed/memory targets of issues 3 and 16 are reported (PASS/MISS), and
# the exit status is non-zero only when the counts are wrong or a tool fails.
#
# Environment (all optional):
#   BENCH_CONNECTIONS  connections in the main file          (default 1000000)
#   BENCH_SLICE        connections in the file tshark reads  (default 100000)
#   BENCH_SEED         generator seed                        (default 1)
#   BENCH_RUNS         runs per tcplab/cat measurement; the fastest is kept (default 3)
#   BENCH_CLIENTS      distinct 4-tuples (gen-pcap --clients; default 28232)
#   BENCH_TUNNELS      connections in the tunnel-heavy file (gen-pcap --tunnels; default 200000)
#   CARGO_TARGET_DIR   where the binaries and the cached captures (…/bench/) live
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
CARGO=${CARGO:-cargo}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CONNS=${BENCH_CONNECTIONS:-1000000}
SLICE=${BENCH_SLICE:-100000}
SEED=${BENCH_SEED:-1}
RUNS=${BENCH_RUNS:-3}
CLIENTS=${BENCH_CLIENTS:-28232}
TUNNELS=${BENCH_TUNNELS:-200000}
DIR=$TARGET/bench
TCPLAB=$TARGET/release/tcplab
GEN=$TARGET/release/examples/gen-pcap
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

die() { echo "bench: $*" >&2; exit 2; }

# --- tools (a bench may install what it compares against; Debian, as root) -------------------
need_pkgs=()
[ -x /usr/bin/time ] || need_pkgs+=(time)
command -v tcpdump >/dev/null 2>&1 || need_pkgs+=(tcpdump)
command -v tshark >/dev/null 2>&1 || need_pkgs+=(tshark)
command -v jq >/dev/null 2>&1 || need_pkgs+=(jq)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bench: installing ${need_pkgs[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
    else
        echo "bench: missing ${need_pkgs[*]} (run as root on Debian to install them)" >&2
    fi
fi
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) is required for peak RSS"
command -v tcpdump >/dev/null 2>&1 || die "tcpdump is required (the reference for the ratios)"
command -v jq >/dev/null 2>&1 || die "jq is required for the count check"
HAVE_TSHARK=1
command -v tshark >/dev/null 2>&1 || HAVE_TSHARK=0

# --- build ------------------------------------------------------------------------------------
echo "bench: building (release)"
"$CARGO" build --release --locked -q -p tcplab-cli
"$CARGO" build --release --locked -q -p tcplab-trace --example gen-pcap
[ -x "$TCPLAB" ] || die "$TCPLAB not built"
[ -x "$GEN" ] || die "$GEN not built"

# --- captures (cached; regenerated when the generator is newer) -------------------------------
mkdir -p "$DIR"
capture() { # capture N [--tunnels] -> path of the pcap (truth next to it)
    local n=$1 extra=${2:-} base="$DIR/conn$1-seed$SEED-clients$CLIENTS${2:+-tunnels}"
    if [ ! -s "$base.pcap" ] || [ ! -s "$base.truth.json" ] || [ "$GEN" -nt "$base.pcap" ]; then
        echo "bench: generating $n connections${extra:+ ($extra)} -> $base.pcap" >&2
        "$GEN" --connections "$n" --seed "$SEED" --clients "$CLIENTS" $extra \
            --out "$base.pcap.tmp" --truth "$base.truth.json.tmp" >/dev/null 2>"$base.info.tmp"
        sed "s/\.tmp\b//" "$base.info.tmp" >"$base.info" && rm -f "$base.info.tmp"
        # The same bytes as before (the generator was rebuilt, not changed): keep the old
        # files, so the kernel is not still writing a gigabyte back while the timings run.
        if cmp -s "$base.pcap.tmp" "$base.pcap" && cmp -s "$base.truth.json.tmp" "$base.truth.json"; then
            rm -f "$base.pcap.tmp" "$base.truth.json.tmp"
            touch "$base.pcap" "$base.truth.json"
        else
            mv "$base.pcap.tmp" "$base.pcap"
            mv "$base.truth.json.tmp" "$base.truth.json"
        fi
    fi
    echo "$base.pcap"
}
FILE=$(capture "$CONNS")
SLICE_FILE=$(capture "$SLICE")
TUNNEL_FILE=$(capture "$TUNNELS" --tunnels)
TUNNEL_TRUTH=${TUNNEL_FILE%.pcap}.truth.json
TRUTH=${FILE%.pcap}.truth.json
SLICE_TRUTH=${SLICE_FILE%.pcap}.truth.json

# --- measurement ------------------------------------------------------------------------------
# measure NAME RUNS CMD...: stdout to /dev/null; keeps the fastest wall time of RUNS runs, its
# CPU time (user+sys), and the largest peak RSS. Sets M_WALL, M_CPU, M_RSS_MIB.
measure() {
    local name=$1 runs=$2 i best="" cpu="" rss=0 t0 t1 w u s m
    shift 2
    for ((i = 0; i < runs; i++)); do
        t0=$(date +%s%N)
        /usr/bin/time -f '%U %S %M' -o "$SCRATCH/time" "$@" >/dev/null 2>"$SCRATCH/stderr" ||
            { cat "$SCRATCH/stderr" >&2; die "$name failed: $*"; }
        t1=$(date +%s%N)
        w=$(((t1 - t0) / 1000000))
        read -r u s m <"$SCRATCH/time"
        if [ -z "$best" ] || [ "$w" -lt "$best" ]; then
            best=$w
            cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
        fi
        [ "$m" -gt "$rss" ] && rss=$m
    done
    M_WALL=$(awk -v ms="$best" 'BEGIN { printf "%.3f", ms / 1000 }')
    M_CPU=$cpu
    M_RSS_MIB=$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')
    printf '  %-44s %9s s %9s s %9s MiB\n' "$name" "$M_WALL" "$M_CPU" "$M_RSS_MIB"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "inf" }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "PASS" : "MISS" }'; }

size=$(stat -c %s "$FILE")
echo
echo "tcplab analyze benchmark — $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), kernel $(uname -r)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "capture: $FILE ($((size / 1048576)) MiB, $CLIENTS distinct 4-tuples)"
sed 's/^/  /' "${FILE%.pcap}.info" 2>/dev/null || true
echo
printf '  %-44s %11s %11s %13s\n' "command (stdout > /dev/null)" "wall" "cpu" "peak RSS"
cat "$FILE" >/dev/null # warm the page cache: every tool reads from memory
measure "cat FILE" "$RUNS" cat "$FILE"
CAT_WALL=$M_WALL
measure "tcplab analyze --json FILE" "$RUNS" "$TCPLAB" analyze --json "$FILE"
JSON_WALL=$M_WALL JSON_CPU=$M_CPU JSON_RSS=$M_RSS_MIB
measure "tcplab analyze --summary FILE" "$RUNS" "$TCPLAB" analyze --summary "$FILE"
SUM_WALL=$M_WALL SUM_CPU=$M_CPU SUM_RSS=$M_RSS_MIB
measure "tcpdump -nn -r FILE" 1 tcpdump -nn -r "$FILE"
TD_WALL=$M_WALL TD_CPU=$M_CPU
echo
echo "  on the $SLICE-connection slice ($(($(stat -c %s "$SLICE_FILE") / 1048576)) MiB):"
measure "tcplab analyze --json SLICE" "$RUNS" "$TCPLAB" analyze --json "$SLICE_FILE"
SJSON_WALL=$M_WALL
if [ "$HAVE_TSHARK" = 1 ]; then
    measure "tshark -r SLICE -T fields -e tcp.stream" 1 tshark -r "$SLICE_FILE" -T fields -e tcp.stream
    TS_WALL=$M_WALL TS_RSS=$M_RSS_MIB
fi
echo
echo "  on the $TUNNELS-connection tunnel-heavy file ($(($(stat -c %s "$TUNNEL_FILE") / 1048576)) MiB; VXLAN, GENEVE, GRE, MPLS, QinQ in turn):"
cat "$TUNNEL_FILE" >/dev/null
measure "tcplab analyze --json TUNNELS" "$RUNS" "$TCPLAB" analyze --json "$TUNNEL_FILE"
TJSON_WALL=$M_WALL TJSON_RSS=$M_RSS_MIB TJSON_CPU=$M_CPU
measure "tcplab analyze --summary TUNNELS" "$RUNS" "$TCPLAB" analyze --summary "$TUNNEL_FILE"
TSUM_WALL=$M_WALL TSUM_CPU=$M_CPU
measure "tcpdump -nn -r TUNNELS" 1 tcpdump -nn -r "$TUNNEL_FILE"
TTD_WALL=$M_WALL TTD_CPU=$M_CPU
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- ratios and targets (issues 3 and 16) ----------------------------------------------------
# The packet counts come from the generator's info line ("N connections, P packets, ...").
packets_of() { sed -n 's/.* connections, \([0-9]*\) packets,.*/\1/p' "${1%.pcap}.info" 2>/dev/null | head -1; }
# CPU (user+sys, all threads) per packet in ns: less sensitive than wall time to a busy machine.
ns_per_packet() { awk -v c="$1" -v p="$2" 'BEGIN { if (p > 0) printf "%.0f", c * 1e9 / p; else print "?" }'; }
# Throughput of the input in GB/s (10^9 bytes) from a wall time.
gbps() { awk -v b="$1" -v w="$2" 'BEGIN { if (w > 0) printf "%.2f", b / w / 1e9; else print "inf" }'; }
PKTS=$(packets_of "$FILE")
TPKTS=$(packets_of "$TUNNEL_FILE")
tsize=$(stat -c %s "$TUNNEL_FILE")
scale=$(awk -v a="$CONNS" -v b="$SLICE" 'BEGIN { printf "%g", a / b }')
r_json=$(ratio "$TD_WALL" "$JSON_WALL")
r_sum=$(ratio "$TD_WALL" "$SUM_WALL")
echo
echo "ratios (wall):"
echo "  tcpdump / tcplab --json     $r_json×   (target ≥ 20×: $(verdict "$r_json" 20))   cpu: $(ratio "$TD_CPU" "$JSON_CPU")×"
echo "  tcpdump / tcplab --summary  $r_sum×   (target ≥ 30×: $(verdict "$r_sum" 30))   cpu: $(ratio "$TD_CPU" "$SUM_CPU")×"
echo "  tcplab --summary reads      $(gbps "$size" "$SUM_WALL") GB/s   (target ≥ 1 GB/s: $(verdict "$(gbps "$size" "$SUM_WALL")" 1))"
echo "  tcplab --json / cat         $(ratio "$JSON_WALL" "$CAT_WALL")×"
if [ "$HAVE_TSHARK" = 1 ]; then
    ts_full=$(awk -v w="$TS_WALL" -v k="$scale" 'BEGIN { printf "%.1f", w * k }')
    echo "  tshark / tcplab --json      $(ratio "$TS_WALL" "$SJSON_WALL")× on the slice;" \
        "tshark on the full file ≈ ${ts_full} s (slice ×$scale, extrapolated), peak RSS $TS_RSS MiB on the slice"
else
    echo "  tshark: not installed, skipped"
fi
rss_ok() { awk -v m="$1" 'BEGIN { print (m < 200) ? "PASS" : "MISS" }'; }
r_tjson=$(ratio "$TTD_WALL" "$TJSON_WALL")
echo "  tunnels: tcpdump / tcplab --json $r_tjson× (target ≥ 15×: $(verdict "$r_tjson" 15); cpu: $(ratio "$TTD_CPU" "$TJSON_CPU")×)," \
    "--summary $(ratio "$TTD_WALL" "$TSUM_WALL")× (cpu: $(ratio "$TTD_CPU" "$TSUM_CPU")×) (peak RSS --json $TJSON_RSS MiB)"
echo "cpu per packet (user+sys, all threads): --json $(ns_per_packet "$JSON_CPU" "$PKTS") ns," \
    "--summary $(ns_per_packet "$SUM_CPU" "$PKTS") ns, tcpdump $(ns_per_packet "$TD_CPU" "$PKTS") ns ($PKTS packets);" \
    "tunnels: --json $(ns_per_packet "$TJSON_CPU" "$TPKTS") ns, --summary $(ns_per_packet "$TSUM_CPU" "$TPKTS") ns," \
    "tcpdump $(ns_per_packet "$TTD_CPU" "$TPKTS") ns ($TPKTS packets, $((tsize / 1048576)) MiB)"
echo "peak RSS: --json $JSON_RSS MiB ($(rss_ok "$JSON_RSS")), --summary $SUM_RSS MiB ($(rss_ok "$SUM_RSS")) (target < 200 MiB)"

# --- counts must be exact ---------------------------------------------------------------------
# The `counts` object is on the last line of the JSON (after the streamed connections).
check_counts() { # check_counts FILE TRUTH LABEL
    local got want
    got=$("$TCPLAB" analyze --json "$1" | tail -c 65536 | sed -n 's/.*"counts":\({[^}]*}\).*/\1/p')
    [ -n "$got" ] || { echo "  $3: no counts object in tcplab's JSON"; return 1; }
    got=$(jq -cS . <<<"$got")
    want=$(jq -cS . "$2")
    if [ "$got" = "$want" ]; then
        echo "  $3: exact ($(jq 'add' <<<"$got") connections) $got"
    else
        echo "  $3: MISMATCH"
        echo "    want $want"
        echo "    got  $got"
        jq -rn --argjson w "$want" --argjson g "$got" \
            '($w + $g | keys[]) as $k | select($w[$k] != $g[$k]) |
             "    \($k): want \($w[$k] // 0), got \($g[$k] // 0)"'
        return 1
    fi
}
echo
echo "counts (tcplab analyze --json vs gen-pcap truth):"
ok=0
check_counts "$FILE" "$TRUTH" "$CONNS connections" || ok=1
check_counts "$SLICE_FILE" "$SLICE_TRUTH" "$SLICE connections" || ok=1
check_counts "$TUNNEL_FILE" "$TUNNEL_TRUTH" "$TUNNELS tunnelled connections" || ok=1
exit $ok
