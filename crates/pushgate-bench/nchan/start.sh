#!/usr/bin/env bash
# Starts the nchan peer (nginx.conf beside this script) on 127.0.0.1:8091; its runtime files go to
# /tmp/nchan-peer. WORKERS=N overrides worker_processes. Idempotent: a running peer is left alone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
run=/tmp/nchan-peer
mkdir -p "$run"/{client_body,proxy,fastcgi,uwsgi,scgi}
if [[ -s "$run/nginx.pid" ]] && kill -0 "$(cat "$run/nginx.pid")" 2>/dev/null; then
    echo "nchan peer already running: master pid $(cat "$run/nginx.pid")"
    exit 0
fi
if [[ ! -f /usr/lib/nginx/modules/ngx_nchan_module.so ]]; then
    echo "nchan is not installed: apt-get install -y --no-install-recommends nginx libnginx-mod-nchan" >&2
    exit 1
fi
conf=$here/nginx.conf
if [[ -n "${WORKERS:-}" ]]; then
    sed -E "s/^worker_processes [^;]+;/worker_processes ${WORKERS};/" "$here/nginx.conf" >"$run/nginx.conf"
    conf=$run/nginx.conf
fi
nginx -t -q -p "$run" -c "$conf" 2>/dev/null || { nginx -t -p "$run" -c "$conf"; exit 1; }
nginx -p "$run" -c "$conf"
for _ in $(seq 1 50); do
    [[ -s "$run/nginx.pid" ]] && break
    sleep 0.1
done
echo "nchan peer started: master pid $(cat "$run/nginx.pid")"
