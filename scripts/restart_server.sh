#!/usr/bin/env bash
# Test tool: kills a test server with SIGKILL (and its children), waits, then starts it again
# on the same data directory and port, and waits until it answers. The fault tests use it to
# restart a target or source in the middle of a copy.
#
#   scripts/restart_server.sh DIR DOWN_SECONDS   (DIR: the server's folder, as start_milvus in
#                                                scripts/lib.sh made it)
set -euo pipefail
dir="$1" down="${2:-0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
# Every process of this server has its data folder on its command line (the wrapper, milvus,
# etcd), and start.sh runs it with exec.
pkill -KILL -f "$dir/data" || true
sleep "$down"
# Connections the killed server had end in TIME_WAIT on its port; until they are gone, the
# embedded Milvus 2.3.5 finds the port taken and listens on the next one instead.
port="$(cat "$dir/uri")"; port="${port##*:}"
for _ in $(seq 1 240); do
  [ -z "$(ss -Htan "( sport = :$port )" 2>/dev/null)" ] && break
  sleep 0.5
done
nohup bash "$dir/start.sh" >>"$dir/server.log" 2>&1 &
"$root/.venv/bin/python" "$root/scripts/wait_milvus.py" "$(cat "$dir/uri")" "$(cat "$dir/token")" 240 --deep
