#!/usr/bin/env bash
# What finding a cut costs: range counts against reading the remainder's keys (bench/cutcost.py),
# on one server of each backend.
#
#   bench/cutcost.sh                    both backends, 200,000 entities of 128-d
#   bench/cutcost.sh --rows 1000000     extra arguments go to bench/cutcost.py
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$VM_ROOT"
ensure_venv
echo "$(nproc) cores, $(date -u +%Y-%m-%d)" >&2
echo "| backend | entities | remainder | counting (2 counts) | reading the keys | keys / counts |"
echo "|---|---|---|---|---|---|"
start_milvus lite LITE
start_milvus standalone STANDALONE
printf '| Milvus Lite 3.2.2 '
"$VM_PY" bench/cutcost.py --uri "$LITE_URI" --token "$LITE_TOKEN" "$@"
printf '| Milvus 2.3.5 '
"$VM_PY" bench/cutcost.py --uri "$STANDALONE_URI" --token "$STANDALONE_TOKEN" "$@"
