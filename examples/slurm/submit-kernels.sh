#!/bin/sh
# Submit a kernel matrix: one array task per line of TCPLAB_KERNELS, then the matrix.
# Prints the two job ids ("ARRAY COMPARE").
#   printf '6.1\n6.12\n' > kernels.txt
#   TCPLAB_WORK=/shared/m1 TCPLAB_KERNELS=kernels.txt TCPLAB_SCENARIOS=scenarios/seed \
#   ./submit-kernels.sh
# Results: $TCPLAB_WORK/kernels/<task>/<release>/, the matrix in $TCPLAB_WORK/matrix.txt.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${TCPLAB_KERNELS:?set TCPLAB_KERNELS}" "${TCPLAB_SCENARIOS:?set TCPLAB_SCENARIOS}"
export TCPLAB_WORK="${TCPLAB_WORK:-$PWD}"
TCPLAB_KERNELS=$(cd "$(dirname "$TCPLAB_KERNELS")" && pwd)/$(basename "$TCPLAB_KERNELS")
export TCPLAB_KERNELS TCPLAB_SCENARIOS
n=$(grep -c . "$TCPLAB_KERNELS")
mkdir -p "$TCPLAB_WORK/logs" "$TCPLAB_WORK/kernels"
array=$(sbatch --parsable --chdir="$TCPLAB_WORK" --array="0-$((n - 1))" \
	"$here/kernels.sbatch" | cut -d';' -f1)
compare=$(sbatch --parsable --chdir="$TCPLAB_WORK" --dependency="afterany:$array" \
	"$here/kernels-compare.sbatch" | cut -d';' -f1)
echo "$array $compare"
