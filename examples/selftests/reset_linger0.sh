#!/bin/sh
# The server closes with SO_LINGER 0: an RST instead of a FIN, sent by the server.
dir=$(dirname "$0")
exec "$dir/tcplab_run.sh" "$dir/scenarios/reset-linger0.toml" "$@"
