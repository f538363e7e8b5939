#!/usr/bin/env bash
# The copy benchmark: 100,000 rows of 128-d vectors in one partition, `vecmigrate run` (release
# build) with 1, 2 and 4 workers against a pymilvus query_iterator + insert copy (index created
# first), alternated round by round on two fresh local servers.
#
#   bench/run.sh                          Milvus Lite
#   BENCH_BACKEND=standalone bench/run.sh Milvus 2.3.5
#   bench/run.sh --rows 20000 --rounds 5 --workers 1,4   extra arguments go to bench/bench.py
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$VM_ROOT"
ensure_venv
cargo build --release --quiet --bin vecmigrate
backend="${BENCH_BACKEND:-lite}"
start_milvus "$backend" SOURCE
start_milvus "$backend" TARGET
echo "backend: $backend ($(nproc) cores), $(date -u +%Y-%m-%d)"
"$VM_PY" bench/bench.py --source "$SOURCE_URI" --target "$TARGET_URI" --token "$SOURCE_TOKEN" "$@"
