# Shared shell functions for the project's scripts: the Python venv with the pinned test
# servers, free loopback ports, and starting / stopping Milvus servers. Source it; do not run it.
#
#   ensure_venv [demo|test]          create .venv and install what the demo or the tests need
#                                    (scripts/requirements-demo.txt, scripts/requirements.txt)
#   ensure_chromium                  install Debian's chromium for the jobs page's browser test
#   start_milvus BACKEND NAME        start a server (lite | standalone); sets NAME_URI
#   start_moto                       start the AWS API emulator; exports AWS_ENDPOINT_URL_*
#   make_test_certs                  a test CA and certificates; exports VECMIGRATE_TEST_TLS_DIR
#   start_grpc_proxy NAME UPSTREAM [ARGS]
#                                    the test gRPC proxy in front of UPSTREAM; sets NAME_PORT
#   start_tls_proxies                TLS proxies in front of SOURCE and TARGET for the TLS tests
#   stop_servers                     stop every server this shell started (also on exit)

VM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VM_VENV="$VM_ROOT/.venv"
VM_PY="$VM_VENV/bin/python"
VM_RUN_DIR="${VM_RUN_DIR:-$(mktemp -d /tmp/vecmigrate-servers.XXXXXX)}"
VM_PIDS=()
# The token the standalone servers are started with (authorization on, Milvus's default root).
VM_STANDALONE_TOKEN="root:Milvus"

log() { printf '[vecmigrate] %s\n' "$*" >&2; }

ensure_venv() {
  local kind="${1:-test}" file stamp
  case "$kind" in
    demo) file="$VM_ROOT/scripts/requirements-demo.txt" ;;
    test) file="$VM_ROOT/scripts/requirements.txt" ;;
    *) log "ensure_venv: '$kind' is neither demo nor test"; return 2 ;;
  esac
  # The test set includes the demo's: either stamp up to date with its files will do.
  stamp="$VM_VENV/.requirements-$kind"
  local want
  want=$(cat "$file" "$VM_ROOT/scripts/requirements-demo.txt")
  if [ -x "$VM_PY" ] && [ "$want" = "$(cat "$stamp" 2>/dev/null)" ]; then
    return 0
  fi
  if [ "$kind" = demo ] && [ -x "$VM_PY" ] && [ "$(cat "$VM_ROOT/scripts/requirements.txt" \
      "$VM_ROOT/scripts/requirements-demo.txt")" = "$(cat "$VM_VENV/.requirements-test" 2>/dev/null)" ]; then
    return 0
  fi
  if [ "$kind" = demo ]; then
    log "installing the demo's Python packages into .venv: milvus-lite, milvus 2.3.5, pymilvus, standardwebhooks (the first time only: about 2 minutes and 1 GB)"
  else
    log "installing the test tools into .venv: the demo's packages, moto, cargo-lambda, cfn-lint, grpcio and the rest (the first time only: about 4 minutes and 1.3 GB)"
  fi
  local started=$SECONDS
  python3 -m venv "$VM_VENV"
  "$VM_PY" -m pip install --quiet --disable-pip-version-check -r "$file"
  printf '%s' "$want" >"$stamp"
  log "installed in $((SECONDS - started)) s"
}

ensure_chromium() {
  if command -v chromium >/dev/null 2>&1; then
    return 0
  fi
  log "installing Debian's chromium (the jobs page's browser test)"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; then
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  fi
}

# The webhook examples' Node package (examples/webhooks: the official `standardwebhooks`), for
# the test that runs them against a real delivery; Node itself from Debian if it is missing.
ensure_node_examples() {
  local dir="$VM_ROOT/examples/webhooks"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "installing Debian's nodejs and npm (the webhook examples' test)"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  if [ "$(cat "$dir/package-lock.json")" != "$(cat "$dir/node_modules/.installed-lock" 2>/dev/null)" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --silent)
    cp "$dir/package-lock.json" "$dir/node_modules/.installed-lock"
  fi
}

# Prints N free loopback ports, distinct from each other.
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# start_milvus lite|standalone NAME: starts a server on free ports and waits until it answers.
# Sets ${NAME}_URI and ${NAME}_TOKEN.
start_milvus() {
  local backend="$1" name="$2" dir="$VM_RUN_DIR/$2" uri token="" signal=TERM
  mkdir -p "$dir"
  case "$backend" in
    lite)
      local port
      port=$(free_ports 1)
      printf 'exec %q server --data-dir %q --host 127.0.0.1 --port %q\n' \
        "$VM_VENV/bin/milvus-lite" "$dir/data" "$port" >"$dir/start.sh"
      uri="http://127.0.0.1:$port"
      ;;
    standalone)
      local p
      read -r -a p <<<"$(free_ports 12)"
      # A second embedded etcd would bind 2379/2380 and panic without its own config.
      cat >"$dir/etcd.yaml" <<EOF
listen-client-urls: http://127.0.0.1:${p[10]}
advertise-client-urls: http://127.0.0.1:${p[10]}
listen-peer-urls: http://127.0.0.1:${p[11]}
initial-advertise-peer-urls: http://127.0.0.1:${p[11]}
initial-cluster: default=http://127.0.0.1:${p[11]}
EOF
      {
        printf 'export ETCD_CONFIG_PATH=%q\n' "$dir/etcd.yaml"
        printf 'exec %q --data %q' "$VM_VENV/bin/milvus-server" "$dir/data"
        printf ' --proxy-port %s --proxy-internal-port %s --etcd-port %s' "${p[0]}" "${p[1]}" "${p[10]}"
        printf ' --root-coord-port %s --query-coord-port %s --query-node-port %s' "${p[2]}" "${p[3]}" "${p[4]}"
        printf ' --index-coord-port %s --index-node-port %s --data-coord-port %s' "${p[5]}" "${p[6]}" "${p[7]}"
        printf ' --data-node-port %s --authorization-enabled true\n' "${p[8]}"
      } >"$dir/start.sh"
      # milvus-server stops cleanly on SIGINT (and stops its etcd and milvus children).
      signal=INT
      uri="http://127.0.0.1:${p[0]}"
      token="$VM_STANDALONE_TOKEN"
      ;;
    *)
      log "unknown backend '$backend' (lite or standalone)"
      return 2
      ;;
  esac
  # start.sh, uri and token stay beside the data, so that scripts/restart_server.sh can kill
  # the server and start it again on the same data and port (the fault tests do).
  printf '%s\n' "$uri" >"$dir/uri"
  printf '%s\n' "$token" >"$dir/token"
  bash "$dir/start.sh" >"$dir/server.log" 2>&1 &
  VM_PIDS+=("$!:$signal")
  disown "$!"
  if ! "$VM_PY" "$VM_ROOT/scripts/wait_milvus.py" "$uri" "$token" 120; then
    log "the $backend server '$name' did not start; its log:"
    tail -n 30 "$dir/server.log" >&2
    return 1
  fi
  log "$backend server '$name' ready at $uri"
  printf -v "${name}_URI" '%s' "$uri"
  printf -v "${name}_TOKEN" '%s' "$token"
  printf -v "${name}_DIR" '%s' "$dir"
}

# start_moto: the moto server (DynamoDB, SQS, Secrets Manager, S3, STS) on a free port. Exports the
# standard AWS_ENDPOINT_URL_* variables and dummy credentials, which is all the SDK needs to
# talk to it: the code under test has no emulator switch.
start_moto() {
  local dir="$VM_RUN_DIR/moto" port
  mkdir -p "$dir"
  port=$(free_ports 1)
  # moto's server with DynamoDB's requests one at a time (see the script: its transactions
  # would otherwise undo concurrent writes).
  "$VM_PY" "$VM_ROOT/scripts/moto_server.py" -H 127.0.0.1 -p "$port" >"$dir/server.log" 2>&1 &
  VM_PIDS+=("$!:TERM")
  disown "$!"
  local url="http://127.0.0.1:$port"
  if ! "$VM_PY" - "$url" <<'EOF'
import sys, time, urllib.request
url = sys.argv[1]
for _ in range(300):
    try:
        # A clean emulator: the state of an earlier run never leaks into this one.
        urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST"), timeout=2)
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit(1)
EOF
  then
    log "moto did not start; its log:"
    tail -n 30 "$dir/server.log" >&2
    return 1
  fi
  export AWS_ENDPOINT_URL_DYNAMODB="$url" AWS_ENDPOINT_URL_SQS="$url" \
    AWS_ENDPOINT_URL_SECRETS_MANAGER="$url" AWS_ENDPOINT_URL_S3="$url" AWS_ENDPOINT_URL_STS="$url" \
    AWS_ACCESS_KEY_ID=testing \
    AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
    AWS_EC2_METADATA_DISABLED=true
  unset AWS_PROFILE AWS_SESSION_TOKEN
  export VECMIGRATE_TEST_MOTO="$url"
  log "moto (DynamoDB, SQS, Secrets Manager, S3, STS) ready at $url"
}

# make_test_certs: the certificates of the TLS tests (scripts/make_certs.py), made fresh.
make_test_certs() {
  export VECMIGRATE_TEST_TLS_DIR="$VM_RUN_DIR/tls"
  "$VM_PY" "$VM_ROOT/scripts/make_certs.py" "$VECMIGRATE_TEST_TLS_DIR"
}

# start_grpc_proxy NAME UPSTREAM_URI [grpc_proxy.py ARGS...]: the test gRPC proxy on a free
# port in front of a server; sets ${NAME}_PORT and ${NAME}_CONTROL (its fault control port).
start_grpc_proxy() {
  local name="$1" upstream="$2" dir="$VM_RUN_DIR/$1"
  shift 2
  mkdir -p "$dir"
  "$VM_PY" "$VM_ROOT/scripts/grpc_proxy.py" --upstream "${upstream#*://}" "$@" \
    >"$dir/port" 2>"$dir/proxy.log" &
  VM_PIDS+=("$!:TERM")
  disown "$!"
  local line="" port control
  for _ in $(seq 1 200); do
    line=$(head -n 1 "$dir/port" 2>/dev/null || true)
    [ -n "$line" ] && break
    sleep 0.1
  done
  if [ -z "$line" ]; then
    log "the gRPC proxy '$name' did not start; its log:"
    tail -n 30 "$dir/proxy.log" >&2
    return 1
  fi
  read -r port control <<<"$line"
  printf -v "${name}_PORT" '%s' "$port"
  printf -v "${name}_CONTROL" '%s' "$control"
}

# start_tls_proxies: what the TLS tests reach (after start_milvus SOURCE and TARGET):
# the source behind one-way TLS, the target behind two-way TLS (a client certificate
# required), and the source again behind an expired certificate. Exports their ports.
start_tls_proxies() {
  make_test_certs
  local d="$VECMIGRATE_TEST_TLS_DIR"
  start_grpc_proxy TLS_SOURCE "$SOURCE_URI" --cert "$d/server.pem" --key "$d/server.key"
  start_grpc_proxy TLS_TARGET "$TARGET_URI" --cert "$d/server.pem" --key "$d/server.key" \
    --client-ca "$d/ca.pem"
  start_grpc_proxy TLS_EXPIRED "$SOURCE_URI" --cert "$d/expired.pem" --key "$d/expired.key"
  export VECMIGRATE_TEST_TLS_SOURCE_PORT="$TLS_SOURCE_PORT" \
    VECMIGRATE_TEST_TLS_TARGET_PORT="$TLS_TARGET_PORT" \
    VECMIGRATE_TEST_TLS_EXPIRED_PORT="$TLS_EXPIRED_PORT"
  log "TLS proxies: source https://localhost:$TLS_SOURCE_PORT, target (two-way) https://localhost:$TLS_TARGET_PORT, expired https://localhost:$TLS_EXPIRED_PORT"
}

# start_fault_proxies: the fault-injecting proxies the fault suite steers (after start_milvus
# SOURCE and TARGET), and the servers' folders for scripts/restart_server.sh. Exports their URIs
# and control ports.
start_fault_proxies() {
  start_grpc_proxy FAULT_SOURCE "$SOURCE_URI"
  start_grpc_proxy FAULT_TARGET "$TARGET_URI"
  export VECMIGRATE_TEST_FAULT_SOURCE_URI="http://127.0.0.1:$FAULT_SOURCE_PORT" \
    VECMIGRATE_TEST_FAULT_SOURCE_CONTROL="http://127.0.0.1:$FAULT_SOURCE_CONTROL" \
    VECMIGRATE_TEST_FAULT_TARGET_URI="http://127.0.0.1:$FAULT_TARGET_PORT" \
    VECMIGRATE_TEST_FAULT_TARGET_CONTROL="http://127.0.0.1:$FAULT_TARGET_CONTROL" \
    VECMIGRATE_TEST_SOURCE_DIR="$SOURCE_DIR" VECMIGRATE_TEST_TARGET_DIR="$TARGET_DIR"
  log "fault proxies: source $VECMIGRATE_TEST_FAULT_SOURCE_URI, target $VECMIGRATE_TEST_FAULT_TARGET_URI"
}

stop_servers() {
  local entry pid
  for entry in "${VM_PIDS[@]}"; do
    kill "-${entry#*:}" "${entry%%:*}" 2>/dev/null || true
  done
  for entry in "${VM_PIDS[@]}"; do
    pid="${entry%%:*}"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  VM_PIDS=()
  # Children of milvus-server that outlived it (milvus, etcd) are found by their data folder.
  pkill -KILL -f "$VM_RUN_DIR" 2>/dev/null || true
  rm -rf "$VM_RUN_DIR"
}

trap stop_servers EXIT
trap 'exit 130' INT TERM
