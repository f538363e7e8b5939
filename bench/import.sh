#!/usr/bin/env bash
# Insert mode against import mode (bench/import.py): `vecmigrate run` (release build) on two
# embedded Milvus 2.3.5 servers, the target's writes capped by the fault proxy.
#
#   bench/import.sh                                   200,000 x 128-d, 2 MB/s
#   bench/import.sh --rows 1000000 --cap-mb 2         extra arguments go to bench/import.py
#   bench/import.sh --cap-mb 2,0 --rows 1000000 --pymilvus   capped, then uncapped beside pymilvus
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$VM_ROOT"
ensure_venv
cargo build --release --quiet --bin vecmigrate
start_milvus standalone SOURCE
start_milvus standalone TARGET
start_grpc_proxy CAPPED "$TARGET_URI"
echo "backend: standalone ($(nproc) cores), $(date -u +%Y-%m-%d)"
"$VM_PY" bench/import.py --source "$SOURCE_URI" --target-direct "$TARGET_URI" \
  --target-proxy "http://127.0.0.1:$CAPPED_PORT" --control "http://127.0.0.1:$CAPPED_CONTROL" \
  --token "$SOURCE_TOKEN" "$@"
