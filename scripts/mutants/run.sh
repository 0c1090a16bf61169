#!/usr/bin/env bash
# The suite's mutation score: for each small change to Linux's TCP teardown code in
# mutants.tsv, build the kernel incrementally (`tcplab kernels build`), run the scenarios on
# it in a guest (`tcplab run --kernel BZIMAGE`), restore the file, and say which scenarios
# failed. A change some scenario fails on is caught ("killed"); the score is caught / tried.
#
# usage: scripts/mutants/run.sh [--only ID,ID] [--own] [--source debian:6.1] [--out DIR]
#                               [--tcplab BIN] [--no-baseline] [-- RUN-ARGS…] [SCENARIO…]
# SCENARIO: files or directories (default scenarios/; with --own, the scenarios the chosen
# changes are written for, mutants.tsv's last column). RUN-ARGS go to `tcplab run`.
# Exit: 0 when every change tried was caught, 1 when one survived, 2 on bad usage or a
# failed build of the unchanged tree.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
only=""
source_spec="debian:6.1"
out=""
tcplab=""
baseline=1
own=0
run_args=()
scenarios=()
while [ $# -gt 0 ]; do
    case "$1" in
        --only) only="$2"; shift 2 ;;
        --own) own=1; shift ;;
        --source) source_spec="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --tcplab) tcplab="$2"; shift 2 ;;
        --no-baseline) baseline=0; shift ;;
        --) shift; while [ $# -gt 0 ] && [ "$1" != "--" ]; do run_args+=("$1"); shift; done
            [ $# -gt 0 ] && shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        -*) echo "mutants: unknown option $1" >&2; exit 2 ;;
        *) scenarios+=("$1"); shift ;;
    esac
done
[ "$own" = 0 ] || [ ${#scenarios[@]} = 0 ] || { echo "mutants: --own runs the changes' own scenarios: name no SCENARIO" >&2; exit 2; }
if [ -z "$tcplab" ]; then
    if [ -x "$repo/target/release/tcplab" ]; then tcplab="$repo/target/release/tcplab"
    elif [ -x "$repo/target/debug/tcplab" ]; then tcplab="$repo/target/debug/tcplab"
    else tcplab=$(command -v tcplab || true); fi
fi
[ -x "$tcplab" ] || { echo "mutants: no tcplab binary (build it, or pass --tcplab BIN)" >&2; exit 2; }
# One mutants run at a time per kernel cache: a second run would build the first one's
# changed tree as its "unchanged" kernel. The lock ends with this shell (also when killed).
lockdir="${XDG_CACHE_HOME:-${HOME:?}/.cache}/tcplab/kernels"
mkdir -p "$lockdir"
exec 9>"$lockdir/.mutants.lock"
if ! flock -n 9; then
    echo "mutants: another mutants run holds $lockdir/.mutants.lock; waiting for it" >&2
    flock 9
fi
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/tcplab-mutants.XXXXXX")
mkdir -p "$out"

# The changes to try.
ids=()
declare -A m_file m_func m_n m_find m_repl m_what own_seen
# The last column names the scenarios (under scenarios/, without .toml) the change is
# written for: each fails on the changed kernel.
while IFS=$'\t' read -r id file func n find repl what written_for; do
    case "$id" in ''|'#'*) continue ;; esac
    if [ -n "$only" ] && [[ ",$only," != *",$id,"* ]]; then continue; fi
    ids+=("$id"); m_file[$id]=$file; m_func[$id]=$func; m_n[$id]=$n
    m_find[$id]=$find; m_repl[$id]=$repl; m_what[$id]=$what
    if [ "$own" = 1 ]; then
        for s in $written_for; do
            [ -n "${own_seen[$s]+x}" ] && continue
            own_seen[$s]=1
            [ -f "$repo/scenarios/$s.toml" ] || { echo "mutants: $id is written for scenarios/$s.toml, which does not exist" >&2; exit 2; }
            scenarios+=("$repo/scenarios/$s.toml")
        done
    fi
done < "$here/mutants.tsv"
[ ${#scenarios[@]} -gt 0 ] || scenarios=("$repo/scenarios")
if [ -n "$only" ]; then
    for want in ${only//,/ }; do
        [ -n "${m_file[$want]+x}" ] || { echo "mutants: --only $want: no such change in mutants.tsv" >&2; exit 2; }
    done
fi
[ ${#ids[@]} -gt 0 ] || { echo "mutants: no changes selected" >&2; exit 2; }

# Build the unchanged tree (also extracts Debian's source on first use): where the tree is.
build() { # $1: name → $out/$1.json (built.json), stderr in $out/$1.build.log
    "$tcplab" kernels build "$source_spec" --json >"$out/$1.json" 2>"$out/$1.build.log"
}
field() { sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p" "$out/$1.json"; }

# Restore the changed file on every way out (error, Ctrl-C): the tree must stay pristine.
applied=""; backup=""; marker=""
restore() {
    if [ -n "$applied" ] && [ -n "$backup" ] && [ -f "$backup" ]; then
        # New contents, new mtime: the next build recompiles the file from the original.
        cat "$backup" > "$applied"
        rm -f "$backup"
    fi
    [ -n "$marker" ] && rm -f "$marker"
    applied=""; backup=""; marker=""
}
trap 'restore' EXIT
trap 'restore; echo "mutants: interrupted; $out keeps what finished" >&2; exit 130' INT TERM HUP

# Run the suite on a bzImage: "PASS name" / "FAIL name" lines into $2, the output into $2.log.
suite() { # $1 bzImage, $2 result file
    local rc=0
    "$tcplab" run --kernel "$1" --out "$2.results" "${run_args[@]}" "${scenarios[@]}" >"$2.log" 2>&1 || rc=$?
    [ "$rc" = 130 ] && { echo "mutants: the suite was interrupted" >&2; exit 130; }
    sed -n 's/^  \(PASS\|FAIL\|SKIP\|CANCELLED\)  \([^ ]*\).*/\1 \2/p' "$2.log" > "$2"
    if grep -q '^  ERROR  ' "$2.log"; then echo "ERROR kernel" >> "$2"; fi
    # No verdict at all (a scenario file this tcplab cannot read, no QEMU, …) is no score:
    # a change would look "survived" when nothing ran.
    if [ "$rc" = 2 ] || [ ! -s "$2" ]; then
        echo "mutants: the suite did not run (exit $rc): $(grep -m1 '^tcplab: ' "$2.log" || tail -n 1 "$2.log")" >&2
        exit 2
    fi
    return 0
}

echo "mutants: source $source_spec, ${#ids[@]} change(s), scenarios: ${scenarios[*]}, results in $out"
t0=$(date +%s.%N)
if ! build base; then
    echo "mutants: building the unchanged $source_spec failed:" >&2
    tail -n 15 "$out/base.build.log" >&2
    exit 2
fi
bz=$(field base bzimage)
tree=$(field base tree)
[ -d "$tree" ] || { echo "mutants: cannot tell where $source_spec's tree is" >&2; exit 2; }
echo "mutants: unchanged kernel $bz ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s to build)"

flaky=" "
if [ "$baseline" = 1 ]; then
    cp "$bz" "$out/base.bzImage"
    t=$(date +%s.%N)
    suite "$out/base.bzImage" "$out/base"
    echo "mutants: unchanged kernel: $(grep -c '^PASS' "$out/base" || true) passed, $(grep -c '^FAIL\|^ERROR' "$out/base" || true) failed ($(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s)"
    while read -r verdict name; do
        case "$verdict" in FAIL|ERROR) flaky="$flaky$name " ;; esac
    done < "$out/base"
    [ "$flaky" = " " ] || echo "mutants: failing on the unchanged kernel too, not counted:$flaky"
fi

killed=0; tried=0; na=0
summary="$out/score.txt"
: > "$summary"
for id in "${ids[@]}"; do
    file="$tree/${m_file[$id]}"
    printf '%s: %s %s(): %s\n' "$id" "${m_file[$id]}" "${m_func[$id]}" "${m_what[$id]}"
    if [ ! -f "$file" ]; then
        echo "  not applicable: no ${m_file[$id]}"; na=$((na+1)); echo "$id n/a" >> "$summary"; continue
    fi
    backup="$out/$id.orig"
    cp "$file" "$backup"
    marker="$tree/.tcplab-mutant"
    echo "$id $$" > "$marker"
    applied="$file"
    if ! awk -v func_name="${m_func[$id]}" -v n="${m_n[$id]}" -v find="${m_find[$id]}" \
            -v repl="${m_repl[$id]}" -f "$here/apply.awk" "$backup" > "$out/$id.c"; then
        restore
        echo "  not applicable: ${m_func[$id]}() has no occurrence ${m_n[$id]} of the text to change"
        na=$((na+1)); echo "$id n/a" >> "$summary"; continue
    fi
    diff -u "$backup" "$out/$id.c" > "$out/$id.diff" || true
    cat "$out/$id.c" > "$file"
    t=$(date +%s.%N)
    if ! TCPLAB_MUTANT_PID=$$ build "$id"; then
        restore
        echo "  does not build (see $out/$id.build.log): not counted"
        na=$((na+1)); echo "$id no-build" >> "$summary"; continue
    fi
    bs=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    cp "$(field "$id" bzimage)" "$out/$id.bzImage"
    restore
    t=$(date +%s.%N)
    suite "$out/$id.bzImage" "$out/$id"
    ss=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    caught=""
    while read -r verdict name; do
        case "$verdict" in FAIL|ERROR) [[ "$flaky" == *" $name "* ]] || caught="$caught $name" ;; esac
    done < "$out/$id"
    tried=$((tried+1))
    if [ -n "$caught" ]; then
        killed=$((killed+1))
        echo "  caught by:$caught (build $bs s, suite $ss s)"
        echo "$id caught$caught" >> "$summary"
    else
        echo "  SURVIVED: every scenario passed (build $bs s, suite $ss s)"
        echo "$id survived" >> "$summary"
    fi
done

# Leave the cache's kernel unchanged for whoever builds next.
build final || true
echo "mutation score: $killed/$tried changes caught ($na not applicable); details in $out"
[ "$killed" = "$tried" ]
