#!/usr/bin/env bash
# The copy benchmark (bench/bench.py): one single-partition collection (default 200,000 entities
# of a 128-d vector, a VarChar, a Double, a JSON and a dynamic field) copied by pymilvus, by
# vecmigrate's reader and writer alone (bench/pages.rs), and by `vecmigrate run` with 1, 2 and 4
# workers on the embedded store and on DynamoDB (moto), alternated round by round on two fresh
# local servers. Release builds. Appends its table to bench/RESULTS.md.
#
#   bench/run.sh                          Milvus Lite
#   BENCH_BACKEND=standalone bench/run.sh Milvus 2.3.5
#   bench/run.sh --rows 20000 --rounds 3 --dim 768   extra arguments go to bench/bench.py
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$VM_ROOT"
ensure_venv
cargo build --release --quiet --bin vecmigrate --example pages
backend="${BENCH_BACKEND:-lite}"
start_moto
start_milvus "$backend" SOURCE
start_milvus "$backend" TARGET
echo "backend: $backend ($(nproc) cores), $(date -u +%Y-%m-%d)"
"$VM_PY" bench/bench.py --source "$SOURCE_URI" --target "$TARGET_URI" --token "$SOURCE_TOKEN" \
  --backend "$backend" "$@"
