#!/usr/bin/env bash
# The main demo: builds coil-echo and coil-echo-load (release), starts the server on 127.0.0.1,
# drives it with the load client for a few seconds at 1, 16 and 64 connections (64-byte
# messages, every byte checked), prints round trips per second and latency, then stops the server
# with SIGINT (a graceful shutdown) and prints its summary.
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
PORT=${PORT:-7878}
DURATION=${DURATION:-3}
WORKERS=${WORKERS:-1}
$SWIFT build -c release --product coil-echo
$SWIFT build -c release --product coil-echo-load
bin=$($SWIFT build -c release --show-bin-path)
"$bin/coil-echo" --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" &
server=$!
trap 'kill -INT $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then break; fi
  sleep 0.1
done
status=0
for connections in 1 16 64; do
  "$bin/coil-echo-load" --host 127.0.0.1 --port "$PORT" --connections "$connections" --size 64 \
    --duration "$DURATION" --warmup 0.5 || status=1
done
kill -INT "$server"
wait "$server" || status=1
trap - EXIT
exit $status
