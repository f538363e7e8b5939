#!/usr/bin/env bash
# The scale benchmark (bench/scale.py): one single-partition collection of 128-d vectors at 1M,
# 5M and 10M entities (as far as the disk allows), copied with 1 worker on the embedded
# store, 4 on DynamoDB (moto) and 4 with short invocations. Milvus 2.3.5, release build.
#
#   bench/scale.sh                          1M, 5M and 10M
#   bench/scale.sh --sizes 200000,1000000   other sizes
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$VM_ROOT"
ensure_venv
cargo build --release --quiet --bin vecmigrate
start_moto
start_milvus standalone SOURCE
start_milvus standalone TARGET
echo "backend: standalone ($(nproc) cores), $(date -u +%Y-%m-%d)"
"$VM_PY" bench/scale.py --source "$SOURCE_URI" --target "$TARGET_URI" --token "$SOURCE_TOKEN" \
  --ddb "$@"
