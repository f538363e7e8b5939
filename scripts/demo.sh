#!/usr/bin/env bash
# The demo: starts two local Milvus servers, seeds the source with three collections (53,000
# entities, several partitions, scalar, vector and dynamic fields), migrates them with
# `vecmigrate run` on the embedded job store, and prints the verification report.
#
#   scripts/demo.sh                          two Milvus Lite servers (fast)
#   DEMO_BACKEND=standalone scripts/demo.sh  two embedded Milvus 2.3.5 servers
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$VM_ROOT"

backend="${DEMO_BACKEND:-lite}"
ensure_venv
log "building vecmigrate"
cargo build --quiet --bin vecmigrate
start_milvus "$backend" SOURCE
start_milvus "$backend" TARGET
log "seeding the source"
"$VM_PY" scripts/seed_demo.py "$SOURCE_URI" "$SOURCE_TOKEN"

spec="$VM_RUN_DIR/spec.json"
cat >"$spec" <<JSON
{
  "idempotency_key": "demo-$(date +%s)",
  "source": { "uri": "$SOURCE_URI" },
  "target": { "uri": "$TARGET_URI" },
  "databases": [ { "name": "default", "target_name": "migrated",
                   "collections": [ { "name": "products" }, { "name": "reviews" },
                                    { "name": "users", "target_name": "customers" } ] } ],
  "options": { "batch_size": 5000, "max_workers": 4 }
}
JSON
log "migrating (spec: $spec)"
set +e
VECMIGRATE_SOURCE_TOKEN="$SOURCE_TOKEN" VECMIGRATE_TARGET_TOKEN="$TARGET_TOKEN" \
  ./target/debug/vecmigrate --store "$VM_RUN_DIR/jobs.sqlite3" run --spec "$spec" "$@"
code=$?
set -e
log "vecmigrate exited $code"
exit "$code"
