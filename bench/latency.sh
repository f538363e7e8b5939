#!/usr/bin/env bash
# Parallel readers across a network: 1 against 4 workers, the source behind the test gRPC
# proxy adding 50-200 ms to every call (bench/latency.py). Milvus 2.3.5, release build.
#
#   bench/latency.sh                        300,000 rows, pages of 2,000, 2 rounds
#   bench/latency.sh --rows 100000 --rounds 1
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$VM_ROOT"
ensure_venv
cargo build --release --quiet --bin vecmigrate
start_milvus standalone SOURCE
start_milvus standalone TARGET
start_grpc_proxy SLOW "$SOURCE_URI"
echo "backend: standalone ($(nproc) cores), $(date -u +%Y-%m-%d)"
"$VM_PY" bench/latency.py --source-direct "$SOURCE_URI" --source-proxy "http://127.0.0.1:$SLOW_PORT" \
  --control "http://127.0.0.1:$SLOW_CONTROL" --target "$TARGET_URI" --token "$SOURCE_TOKEN" "$@"
