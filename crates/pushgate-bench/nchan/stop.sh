#!/usr/bin/env bash
# Stops the nchan peer that start.sh started, by its master's pid only (never another nginx).
set -euo pipefail
run=/tmp/nchan-peer
if [[ ! -s "$run/nginx.pid" ]]; then
    echo "nchan peer not running (no $run/nginx.pid)"
    exit 0
fi
pid=$(cat "$run/nginx.pid")
if kill -0 "$pid" 2>/dev/null; then
    # QUIT is nginx's graceful stop: the master ends its workers, then itself.
    kill -QUIT "$pid"
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid"
fi
echo "nchan peer stopped (master pid $pid)"
