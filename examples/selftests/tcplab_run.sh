#!/bin/sh
# The runner of this selftest directory: `tcplab run --kselftest` on the given scenario files,
# with any further arguments passed on (kselftest's KSELFTEST_<PROGRAM>_ARGS land here, e.g.
# KSELFTEST_THREE_WAY_CLOSE_SH_ARGS="--repeat 50").
#
#   TCPLAB      the tcplab binary (default: `tcplab` on PATH)
#   TCPLAB_OUT  where results/ go (default: a new directory under $TMPDIR, named in the KTAP)
#
# Exit: 0 every scenario passed, 1 one failed, 4 (kselftest's skip) when tcplab is missing or
# this environment cannot run it.
ksft_skip=4

TCPLAB=${TCPLAB:-tcplab}
if ! command -v "$TCPLAB" >/dev/null 2>&1; then
	echo "TAP version 13"
	echo "1..0 # SKIP tcplab not found (put it on PATH or set TCPLAB)"
	exit $ksft_skip
fi
out=${TCPLAB_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/tcplab-selftest.XXXXXX")}
exec "$TCPLAB" run --kselftest --out "$out" "$@"
