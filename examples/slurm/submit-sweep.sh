#!/bin/sh
# Submit a sharded sweep and its merge. Prints the two job ids ("ARRAY MERGE").
#   TCPLAB_WORK=/shared/run1 TCPLAB_SHARDS=4 TCPLAB_REPEAT=20 \
#   TCPLAB_SCENARIO=scenarios/seed/seed-four-way.toml \
#   TCPLAB_VARY=server.close_delay_ms=0..100:5 ./submit-sweep.sh
# TCPLAB_WORK must be on a filesystem every node sees; results: $TCPLAB_WORK/merged.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${TCPLAB_SCENARIO:?set TCPLAB_SCENARIO}" "${TCPLAB_VARY:?set TCPLAB_VARY}"
export TCPLAB_WORK="${TCPLAB_WORK:-$PWD}" TCPLAB_REPEAT="${TCPLAB_REPEAT:-20}"
export TCPLAB_SCENARIO TCPLAB_VARY
shards=${TCPLAB_SHARDS:-4}
mkdir -p "$TCPLAB_WORK/logs" "$TCPLAB_WORK/shards"
array=$(sbatch --parsable --chdir="$TCPLAB_WORK" --array="0-$((shards - 1))" \
	"$here/sweep.sbatch" | cut -d';' -f1)
# A failed shard cancels the merge instead of leaving it pending forever.
merge=$(sbatch --parsable --chdir="$TCPLAB_WORK" --dependency="afterok:$array" \
	--kill-on-invalid-dep=yes "$here/sweep-merge.sbatch" | cut -d';' -f1)
echo "$array $merge"
