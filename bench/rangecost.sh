#!/usr/bin/env bash
# What counting one key range costs (bench/rangecost.py), on one server of each backend: the
# query a task's end and the finish step send to each side, per range.
#
#   bench/rangecost.sh                    both backends, 200,000 entities of 128-d
#   bench/rangecost.sh --rows 1000000     extra arguments go to bench/rangecost.py
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$VM_ROOT"
ensure_venv
echo "$(nproc) cores, $(date -u +%Y-%m-%d)" >&2
echo "| backend | entities | whole collection | 1/10 range | 1/100 range | 1/1000 range |"
echo "|---|---|---|---|---|---|"
start_milvus lite LITE
start_milvus standalone STANDALONE
printf '| Milvus Lite 3.2.2 '
"$VM_PY" bench/rangecost.py --uri "$LITE_URI" --token "$LITE_TOKEN" "$@"
printf '| Milvus 2.3.5 '
"$VM_PY" bench/rangecost.py --uri "$STANDALONE_URI" --token "$STANDALONE_TOKEN" "$@"
