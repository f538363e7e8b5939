#!/usr/bin/env bash
# Throughput through a write cap: `vecmigrate run` (release build) against a pymilvus copy, both
# writing to a target behind the fault proxy holding writes to a byte rate (bench/capped.py).
#
#   bench/capped.sh                               Milvus 2.3.5 (the source reads faster than the cap)
#   BENCH_BACKEND=lite bench/capped.sh --cap-mb 0.5
#   bench/capped.sh --rows 60000 --cap-mb 2 --rounds 3   extra arguments go to bench/capped.py
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$VM_ROOT"
ensure_venv
cargo build --release --quiet --bin vecmigrate
backend="${BENCH_BACKEND:-standalone}"
start_milvus "$backend" SOURCE
start_milvus "$backend" TARGET
start_grpc_proxy CAPPED "$TARGET_URI"
echo "backend: $backend ($(nproc) cores), $(date -u +%Y-%m-%d)"
"$VM_PY" bench/capped.py --source "$SOURCE_URI" --target-direct "$TARGET_URI" \
  --target-proxy "http://127.0.0.1:$CAPPED_PORT" --control "http://127.0.0.1:$CAPPED_CONTROL" \
  --token "$SOURCE_TOKEN" "$@"
