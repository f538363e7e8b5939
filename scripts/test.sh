#!/usr/bin/env bash
# The whole test suite: unit tests, then the integration suite once per Milvus backend
# (two Milvus Lite servers, then two embedded Milvus 2.3.5 servers), each pair started on free
# loopback ports with a moto server (DynamoDB, SQS, Secrets Manager) beside it and TLS proxies
# in front of them (scripts/grpc_proxy.py, with a CA made by scripts/make_certs.py), and
# stopped on exit. The jobs page's test drives Debian's chromium (installed here if missing).
#
#   scripts/test.sh                         everything
#   VECMIGRATE_BACKENDS=lite scripts/test.sh   one backend
#   scripts/test.sh -- NAME                 extra arguments go to `cargo test` (a test filter)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$VM_ROOT"

extra=()
if [ "${1:-}" = "--" ]; then shift; extra=("$@"); fi

ensure_venv
ensure_chromium
ensure_node_examples
# The integration tests use the engine's fault hooks, which only `test-support` builds have.
features=(--features test-support)
log "building"
cargo build --tests --bins --quiet "${features[@]}"

log "unit tests"
cargo test --quiet --lib --bins "${features[@]}" "${extra[@]}"

log "template.yaml: SAM transform, then cfn-lint"
"$VM_PY" scripts/validate_template.py template.yaml
# The validator must refuse what cfn-lint alone lets through.
for mutation in 's/Runtime: provided.al2023/Runtime: provided.al2099/' \
  's/Architectures: \[arm64\]/Architectures: [arm46]/' 's/Timeout: 900/Timeout: 1200/' \
  's/!GetAtt WorkQueue.Arn/!GetAtt WorkQueues.Arn/'; do
  sed "$mutation" template.yaml >"$VM_RUN_DIR/broken.yaml"
  if "$VM_PY" scripts/validate_template.py "$VM_RUN_DIR/broken.yaml" >/dev/null; then
    log "the template validator accepted a broken template ($mutation)"
    exit 1
  fi
done

log "schemas/v1/openapi.json: an OpenAPI 3.1 document whose references all resolve"
"$VM_VENV/bin/openapi-spec-validator" schemas/v1/openapi.json >/dev/null
sed 's#\$defs/Report"#$defs/Repor"#' schemas/v1/openapi.json >"$VM_ROOT/schemas/v1/.broken.json"
if "$VM_VENV/bin/openapi-spec-validator" "$VM_ROOT/schemas/v1/.broken.json" >/dev/null 2>&1; then
  log "the OpenAPI validator accepted a dangling reference"
  exit 1
fi
rm -f "$VM_ROOT/schemas/v1/.broken.json"

# The fault suite adds a row per case here; the table is printed at the end.
export VECMIGRATE_TEST_FAULT_TABLE="$VM_ROOT/target/fault-table.tsv"
mkdir -p "$VM_ROOT/target"
: >"$VECMIGRATE_TEST_FAULT_TABLE"

# Each behaviour is proven once, on the backend where it can fail: a test binary whose
# behaviour does not depend on the backend runs on one of them (a test of it that does is
# guarded in the test itself with `common::proven_on`); the rest run on both. With a single
# backend chosen, everything runs on it.
backends="${VECMIGRATE_BACKENDS:-lite standalone}"
export VECMIGRATE_TEST_BACKENDS="$backends"
declare -A only_on=(
  [jobs_page]=lite [store_dynamodb]=lite [store_sqlite]=lite [tls]=lite [webhooks]=lite
  [zilliz]=lite [new_cluster]=lite [lambda]=standalone [secrets]=standalone
)
binaries_for() {
  local backend="$1" file name
  for file in "$VM_ROOT"/tests/*.rs; do
    name=$(basename "$file" .rs)
    if [ -n "${only_on[$name]:-}" ] && [ "${only_on[$name]}" != "$backend" ] \
      && [[ " $backends " == *" ${only_on[$name]} "* ]]; then
      continue
    fi
    printf -- '--test %s ' "$name"
  done
}

for backend in $backends; do
  log "integration tests on $backend"
  # Milvus Lite 3.2.2 races when one client creates a collection while another describes it
  # (two cached Collection objects; a new partition is then "not found"): one test at a time.
  threads=3
  [ "$backend" = lite ] && threads=1
  start_moto
  start_milvus "$backend" SOURCE
  start_milvus "$backend" TARGET
  start_tls_proxies
  start_fault_proxies
  VECMIGRATE_TEST_BACKEND="$backend" \
  VECMIGRATE_TEST_SOURCE_URI="$SOURCE_URI" VECMIGRATE_TEST_SOURCE_TOKEN="$SOURCE_TOKEN" \
  VECMIGRATE_TEST_TARGET_URI="$TARGET_URI" VECMIGRATE_TEST_TARGET_TOKEN="$TARGET_TOKEN" \
  RUST_TEST_THREADS="${RUST_TEST_THREADS:-$threads}" \
    cargo test --quiet $(binaries_for "$backend") "${features[@]}" "${extra[@]}"
  stop_servers
done
log "smoke test: the bootstrap binary under cargo lambda watch"
"$VM_ROOT/scripts/smoke_lambda.sh"
log "the fault suite (docs/RELIABILITY.md keeps a copy):"
"$VM_PY" "$VM_ROOT/scripts/fault_table.py" "$VECMIGRATE_TEST_FAULT_TABLE" >&2
log "all tests passed"
