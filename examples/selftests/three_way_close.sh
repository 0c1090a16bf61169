#!/bin/sh
# The server closes at once, the client 20 ms after reading: a three-way close (FIN, FIN+ACK,
# ACK), because the client's delayed ACK of the server's FIN rides on its own FIN.
dir=$(dirname "$0")
exec "$dir/tcplab_run.sh" "$dir/scenarios/three-way-close.toml" "$@"
