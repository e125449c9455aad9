#!/usr/bin/env bash
# azure-iot-sdk-node's own provisioning e2e tests, run unchanged against this repository's built
# dps-emulator: provisioning/e2e/_service_create_delete.js (the service client's enrollment CRUD) and
# _provisioning_e2e.js --grep "Symmetric Key|x509" (enroll, register over Http, Amqp, AmqpWs, Mqtt and
# MqttWs, read the twin from the linked hub's registry). See apps/emulator/README.md, "azure-iot-sdk-node's
# own service tests".
#
#   packages/e2e/scripts/sdk-node-e2e.sh [--keep] [path/to/azure-iot-sdk-node]   # as root
#
# Not part of `npm test` or .ci/run: it needs root (the emulator listens on the ports the SDK always
# dials, 8883, 443 and 5671, and the registry dials e2e-hub.azure-devices.net:443, so it runs in a
# private network, mount and PID namespace with its own /etc/hosts), the SDK's source and the npm
# registry. Without a checkout it fetches the pinned commit from GitHub. Build first
# (`npx turbo run build --filter=@dpskit/emulator`). Exit status 0 only when both files ran and every
# test passed; --keep keeps the temporary folder (mocha's JSON results, the emulator's log and state).
set -euo pipefail

# The commit the README's results are of. Another checkout runs too; its commit is printed.
readonly PINNED_COMMIT=e940876ef0d4704ddc28fb7b198ab8b4ff85dfbe
readonly SDK_GIT_URL=https://github.com/Azure/azure-iot-sdk-node.git
readonly GREP='Symmetric Key|x509'
readonly HUB=e2e-hub.azure-devices.net
readonly ID_SCOPE=0ne00000E2E
# The suite's dependencies. Exact versions so that runs compare; the SDK's main branch pins
# versions that were never published (provisioning-device 1.9.2 …), so these are the newest
# published ones (npm, 2026-12-03), provisioning-service as dpskit's own tests use it.
readonly PACKAGES=(
  azure-iot-common@1.13.3
  azure-iot-provisioning-device@1.9.1
  azure-iot-provisioning-device-http@1.9.1
  azure-iot-provisioning-device-amqp@1.9.1
  azure-iot-provisioning-device-mqtt@1.8.1
  azure-iot-security-symmetric-key@1.8.2
  azure-iot-security-x509@1.7.12
  azure-iot-provisioning-service@1.11.2
  azure-iothub@1.16.6
  async@3.2.6
  chai@4.5.0
  debug@4.4.3
  mocha@10.8.2
  pem@1.14.8
  uuid@8.3.2
)

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The emulator's whole log with its keys masked: the banner prints the service and registry
# connection strings and every enrollment's keys. For the failures before the suite runs, where a
# plain-text error line (a port in use, a bad config) may be the only clue; after it, the JSON
# log lines alone are shown.
masked_log() {
  sed -E 's/(SharedAccessKey=)[^{;[:space:]][^;[:space:]]*/\1<redacted>/g; s/^( +(primary|secondary)Key +)[^ ]+/\1<redacted>/' "$1"
}

# ---- inside the namespaces: start the emulator, run both files, print the counts ----------------
in_namespace() {
  local work=$1 repo=$2
  local suite=$work/suite state=$work/state ready=$work/ready.json
  ip link set lo up
  # The registry client connects to the hub's name on 443; only this namespace sees the mapping.
  printf '127.0.0.1 localhost\n127.0.0.1 %s\n' "$HUB" >"$work/hosts"
  mount --bind "$work/hosts" /etc/hosts

  node "$repo/apps/emulator/dist/cli.js" start --config "$work/config.yaml" --state-dir "$state" \
    --mqtt-port 8883 --https-port 443 --amqp-port 5671 --tls-name "$HUB" --no-web \
    --log-format json --ready-file "$ready" >"$work/emulator.log" 2>&1 &
  local emulator=$!
  local waited=0
  until [[ -s $ready ]]; do
    if ! kill -0 "$emulator" 2>/dev/null || ((waited >= 600)); then
      echo "sdk-node-e2e: the emulator did not start; its log (keys masked):" >&2
      masked_log "$work/emulator.log" >&2
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done

  # The connection strings as the banner prints them (the keys are the state folder's own).
  local service registry
  service=$(sed -n 's/^ *Service API  \([^ ]*\).*/\1/p' "$work/emulator.log" | head -n1)
  registry=$(sed -n 's/^ *registry  \([^ ]*\).*/\1/p' "$work/emulator.log" | head -n1)
  if [[ -z $service || -z $registry ]]; then
    echo "sdk-node-e2e: no service or registry connection string in the emulator's banner (keys masked):" >&2
    masked_log "$work/emulator.log" >&2
    return 1
  fi
  export NODE_EXTRA_CA_CERTS
  NODE_EXTRA_CA_CERTS=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).caCertPath' "$ready")
  export IOT_PROVISIONING_DEVICE_ENDPOINT=localhost
  export IOT_PROVISIONING_DEVICE_IDSCOPE=$ID_SCOPE
  export IOT_PROVISIONING_SERVICE_CONNECTION_STRING=$service
  export IOTHUB_CONNECTION_STRING=$registry
  export IOT_PROVISIONING_ROOT_CERT IOT_PROVISIONING_ROOT_CERT_KEY
  IOT_PROVISIONING_ROOT_CERT=$(base64 -w0 "$work/root-ca.pem")
  IOT_PROVISIONING_ROOT_CERT_KEY=$(base64 -w0 "$work/root-ca.key")

  local status=0
  cd "$suite"
  echo "== _service_create_delete.js"
  timeout 600 node_modules/.bin/mocha --reporter json --reporter-option "output=$work/create-delete.json" \
    _service_create_delete.js >"$work/create-delete.out" 2>&1 || status=1
  echo "== _provisioning_e2e.js --grep \"$GREP\" (its before hook waits 60 s for clock skew)"
  timeout 1200 node_modules/.bin/mocha --reporter json --reporter-option "output=$work/provisioning.json" \
    --grep "$GREP" _provisioning_e2e.js >"$work/provisioning.out" 2>&1 || status=1

  kill "$emulator" 2>/dev/null || true
  wait "$emulator" 2>/dev/null || true
  node "$repo/packages/e2e/scripts/sdk-node-e2e-summary.mjs" \
    "_service_create_delete.js=$work/create-delete.json" "_provisioning_e2e.js=$work/provisioning.json" ||
    status=1
  if ((status != 0)); then
    for out in create-delete provisioning; do
      if [[ -s $work/$out.out ]]; then
        echo "-- mocha's output besides the results ($out):"
        tail -n 40 "$work/$out.out"
      fi
    done
    # Its log lines only: the banner before them holds the emulator's keys.
    echo "-- the emulator's last log lines:"
    grep '^{' "$work/emulator.log" | tail -n 40 || true
  fi
  return "$status"
}

if [[ ${1:-} == --in-namespace ]]; then
  shift
  in_namespace "$@"
  exit
fi

# ---- outside: the checkout, the suite's dependencies, a root CA, the config --------------------
keep=false
sdk=
for arg in "$@"; do
  case $arg in
    --keep) keep=true ;;
    -h | --help) usage ;;
    -*) usage ;;
    *) [[ -z $sdk ]] || usage; sdk=$arg ;;
  esac
done

if [[ $(id -u) != 0 ]]; then
  echo "sdk-node-e2e: needs root (unshare --net --mount --pid, ports 443/5671/8883, a private /etc/hosts)" >&2
  exit 2
fi
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/../../.." && pwd)
if [[ ! -f $repo/apps/emulator/dist/cli.js ]]; then
  echo "sdk-node-e2e: $repo/apps/emulator/dist/cli.js is missing: npx turbo run build --filter=@dpskit/emulator" >&2
  exit 2
fi

work=$(mktemp -d /tmp/sdk-node-e2e.XXXXXX)
cleanup() {
  if $keep; then echo "sdk-node-e2e: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

if [[ -z $sdk ]]; then
  echo "sdk-node-e2e: fetching azure-iot-sdk-node $PINNED_COMMIT"
  sdk=$work/azure-iot-sdk-node
  git init -q "$sdk"
  git -C "$sdk" fetch -q --depth 1 "$SDK_GIT_URL" "$PINNED_COMMIT"
  git -C "$sdk" checkout -q FETCH_HEAD
fi
e2e=$sdk/provisioning/e2e
if [[ ! -f $e2e/_provisioning_e2e.js || ! -f $e2e/_service_create_delete.js ]]; then
  echo "sdk-node-e2e: $sdk is not an azure-iot-sdk-node checkout (no provisioning/e2e/_provisioning_e2e.js)" >&2
  exit 2
fi
commit=$(git -C "$sdk" rev-parse HEAD 2>/dev/null || echo "unknown (not a git checkout)")
echo "sdk-node-e2e: azure-iot-sdk-node at $commit$([[ $commit == "$PINNED_COMMIT" ]] || echo " (pinned: $PINNED_COMMIT)")"
echo "sdk-node-e2e: dpskit at $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown), node $(node --version)"

# The test files as they are (copied, not edited), with their dependencies beside them.
mkdir "$work/suite"
cp "$e2e"/*.js "$work/suite/"
printf '{ "name": "sdk-node-e2e-run", "private": true }\n' >"$work/suite/package.json"
echo "sdk-node-e2e: npm install ${PACKAGES[*]}"
# --ignore-scripts: nothing here needs an install script.
(cd "$work/suite" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error "${PACKAGES[@]}" >/dev/null)
# _provisioning_e2e.js requires the TPM packages at load time, but its TPM tests are commented out
# upstream and tss.js's native part does not build on current Node: empty modules stand in.
for module in tss.js azure-iot-security-tpm; do
  mkdir -p "$work/suite/node_modules/$module"
  printf '{ "name": "%s", "version": "0.0.0-stub", "main": "index.js" }\n' "$module" \
    >"$work/suite/node_modules/$module/package.json"
  echo '// Stub: the TPM tests of _provisioning_e2e.js are commented out upstream.' \
    >"$work/suite/node_modules/$module/index.js"
done

# Any self-signed CA: the X.509 group tests sign device and intermediate certificates with it.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sdk-node-e2e root CA" \
  -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout "$work/root-ca.key" -out "$work/root-ca.pem" 2>/dev/null
# One linked hub: the tests read each device's twin from the hub IOTHUB_CONNECTION_STRING names.
printf 'idScope: %s\niotHubs: [{ hostName: %s }]\n' "$ID_SCOPE" "$HUB" >"$work/config.yaml"

# --pid --fork: when the run ends, every process it started ends with it.
unshare --net --mount --pid --fork --mount-proc "$script_dir/sdk-node-e2e.sh" --in-namespace "$work" "$repo"
