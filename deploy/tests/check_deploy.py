#!/usr/bin/env python3
"""Structural and security checks of akto-tap's deployment files (run by scripts/test-deploy.sh).

usage: check_deploy.py ROOT RENDERED_DIR
  ROOT          repository root
  RENDERED_DIR  the chart rendered by helm_render.py: default.yaml (chart defaults + ingest
                enabled, release/namespace akto-tap) and custom.yaml (non-default values)
Writes RENDERED_DIR/*.config.toml (the ConfigMaps' config.toml) for `akto-tap config check`.
Prints one line per check and `N passed, N failed`; exits 1 on any failure.
"""
import copy
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(sys.argv[1])
RENDERED = Path(sys.argv[2])
DEPLOY = ROOT / "deploy"
CAPS = {"BPF", "PERFMON", "NET_ADMIN", "NET_RAW", "SYS_PTRACE"}
CONFIG_KEYS = {
    "capture": {"interfaces", "backend", "ports"},
    "kafka": {"brokers", "topic", "spool_dir", "spool_max_mib"},
    "record": {"account_id", "max_body_bytes"},
    "workload": {"mode", "k8s_refresh_secs"},
    "tls": {"mode"},
    "metrics": {"listen"},
    "log": {"format", "level"},
}
SPOOL = "/var/lib/akto-tap/spool"
passed, failed = 0, 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}{': ' + str(detail) if detail else ''}")
    return ok


def load(paths):
    docs = []
    for p in paths:
        for d in yaml.safe_load_all(Path(p).read_text()):
            if d:
                docs.append(d)
    return docs


def find(docs, kind, component=None):
    out = [d for d in docs if d["kind"] == kind]
    if component:
        out = [d for d in out if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component]
    return out


def walk(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, f"{path}[{i}]")
    yield path, obj


def port_of(container, name):
    for p in container.get("ports", []):
        if p.get("name") == name:
            return p["containerPort"]
    return None


def check_config_toml(label, text, metrics_port):
    try:
        cfg = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        check(f"{label}: config.toml parses", False, e)
        return
    check(f"{label}: config.toml parses", True)
    unknown = [f"{s}.{k}" for s, t in cfg.items() for k in (t if isinstance(t, dict) else {"<not a table>": 0})
               if s not in CONFIG_KEYS or k not in CONFIG_KEYS[s]]
    check(f"{label}: config.toml has only known sections/keys", not unknown, unknown)
    check(f"{label}: config.toml spool_dir is the mounted spool", cfg.get("kafka", {}).get("spool_dir") == SPOOL)
    listen = cfg.get("metrics", {}).get("listen", "")
    check(f"{label}: metrics listen port matches the container port",
          listen.rsplit(":", 1)[-1] == str(metrics_port), f"{listen} vs {metrics_port}")
    check(f"{label}: backend value is valid",
          cfg["capture"].get("backend") in ("auto", "ebpf", "pcap"))
    check(f"{label}: TLS capture mode is auto, on or off", cfg.get("tls", {}).get("mode", "auto") in ("auto", "on", "off"),
          cfg.get("tls"))
    check(f"{label}: workload attribution on (auto, the default)", cfg.get("workload", {}).get("mode", "auto") == "auto",
          cfg.get("workload"))
    check(f"{label}: ports are integers 1..65535",
          all(isinstance(p, int) and 0 < p < 65536 for p in cfg["capture"].get("ports", [])))


def check_set(label, docs, expect_caps=CAPS, expect_ingest=True, metrics_port=9464):
    """Security and structure checks of one set of manifests (plain or rendered)."""
    for path, value in walk(docs):
        if path.endswith(".privileged") and value is True:
            check(f"{label}: no privileged: true", False, path)
            break
    else:
        check(f"{label}: no privileged: true", True)
    check(f"{label}: no hostIPC", not any(p.endswith(".hostIPC") and v for p, v in walk(docs)))

    ds_list = find(docs, "DaemonSet")
    if not check(f"{label}: exactly one DaemonSet", len(ds_list) == 1, len(ds_list)):
        return
    ds = ds_list[0]
    pod = ds["spec"]["template"]["spec"]
    check(f"{label}: DaemonSet selector matches the pod labels",
          all(ds["spec"]["template"]["metadata"]["labels"].get(k) == v
              for k, v in ds["spec"]["selector"]["matchLabels"].items()))
    check(f"{label}: hostNetwork", pod.get("hostNetwork") is True)
    check(f"{label}: hostPID", pod.get("hostPID") is True)
    check(f"{label}: dnsPolicy ClusterFirstWithHostNet", pod.get("dnsPolicy") == "ClusterFirstWithHostNet")
    check(f"{label}: tolerations include operator Exists (all taints)",
          any(t.get("operator") == "Exists" and "key" not in t and "effect" not in t for t in pod.get("tolerations", [])))
    pcn = pod.get("priorityClassName")
    check(f"{label}: priorityClassName set", bool(pcn))
    pcs = [d["metadata"]["name"] for d in find(docs, "PriorityClass")]
    check(f"{label}: priorityClassName is defined or built in",
          pcn in pcs or pcn in ("system-node-critical", "system-cluster-critical"), pcn)
    us = ds["spec"].get("updateStrategy", {})
    check(f"{label}: updateStrategy RollingUpdate", us.get("type") == "RollingUpdate" and "rollingUpdate" in us)
    sa = pod.get("serviceAccountName")
    check(f"{label}: serviceAccountName names a ServiceAccount of the set",
          sa in [d["metadata"]["name"] for d in find(docs, "ServiceAccount")], sa)
    # Workload attribution lists pods with the ServiceAccount's token: it must be mounted.
    sa_docs = [d for d in find(docs, "ServiceAccount") if d["metadata"]["name"] == sa]
    check(f"{label}: ServiceAccount token mounted (workload attribution lists pods)",
          pod.get("automountServiceAccountToken", True) is not False
          and all(d.get("automountServiceAccountToken", True) is not False for d in sa_docs))

    containers = pod["containers"]
    check(f"{label}: one capture container", len(containers) == 1)
    c = containers[0]
    sc = c.get("securityContext", {})
    caps = sc.get("capabilities", {})
    check(f"{label}: capabilities drop ALL", caps.get("drop") == ["ALL"], caps.get("drop"))
    check(f"{label}: capabilities add exactly {sorted(expect_caps)}",
          set(caps.get("add", [])) == expect_caps and len(caps.get("add", [])) == len(expect_caps), caps.get("add"))
    check(f"{label}: no SYS_ADMIN", "SYS_ADMIN" not in caps.get("add", []))
    check(f"{label}: privileged false", sc.get("privileged") is False)
    check(f"{label}: allowPrivilegeEscalation false", sc.get("allowPrivilegeEscalation") is False)
    check(f"{label}: readOnlyRootFilesystem", sc.get("readOnlyRootFilesystem") is True)
    check(f"{label}: runAsUser 0 (documented)", sc.get("runAsUser") == 0)
    res = c.get("resources", {})
    check(f"{label}: capture requests and limits (cpu, memory)",
          all(k in res.get(s, {}) for s in ("requests", "limits") for k in ("cpu", "memory")), res)
    mport = port_of(c, "metrics")
    check(f"{label}: metrics port {metrics_port}", mport == metrics_port, mport)
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        p = c.get(probe, {}).get("httpGet", {})
        check(f"{label}: {probe} GET {path} on the metrics port",
              p.get("path") == path and p.get("port") in ("metrics", mport), p)
    args = c.get("args", [])
    check(f"{label}: args run `capture --config /etc/akto-tap/config.toml`",
          args[:3] == ["capture", "--config", "/etc/akto-tap/config.toml"], args)
    env = {e["name"]: e for e in c.get("env", [])}
    check(f"{label}: AKTO_TAP_NODE_NAME from spec.nodeName",
          env.get("AKTO_TAP_NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName")
    check(f"{label}: AKTO_TAP_DAEMONSET_ID set", "AKTO_TAP_DAEMONSET_ID" in env)
    secrets = [e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e]
    check(f"{label}: Kafka credentials from a Secret (envFrom)", len(secrets) == 1)
    kafka_secret = [d for d in find(docs, "Secret") if d["metadata"]["name"] in secrets]
    if kafka_secret:
        check(f"{label}: Kafka Secret has Akto's variable names",
              set(kafka_secret[0].get("stringData", {})) == {"IS_AUTH_IMPLEMENTED", "KAFKA_USERNAME", "KAFKA_PASSWORD"})

    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    for path_, ro in (("/sys/fs/bpf", True), ("/sys/kernel/tracing", True), ("/sys/kernel/btf", True),
                      (SPOOL, False), ("/etc/akto-tap", True)):
        m = mounts.get(path_)
        check(f"{label}: mount {path_} ({'read-only' if ro else 'read-write'})",
              m is not None and bool(m.get("readOnly", False)) == ro, m)
    spool = vols.get(mounts.get(SPOOL, {}).get("name"), {})
    check(f"{label}: spool is a hostPath (survives restarts)", "hostPath" in spool, spool)
    for v in vols.values():
        if "hostPath" in v:
            check(f"{label}: hostPath {v['hostPath']['path']} is one of the expected",
                  v["hostPath"]["path"] in ("/sys/fs/bpf", "/sys/kernel/tracing", "/sys/kernel/btf", SPOOL)
                  or v["name"] == "spool")
    check(f"{label}: no hostPath of / or /proc or the container runtime socket",
          not any(v.get("hostPath", {}).get("path") in ("/", "/proc", "/var/run/docker.sock", "/run/containerd/containerd.sock")
                  for v in vols.values()))
    cm_name = vols.get(mounts.get("/etc/akto-tap", {}).get("name"), {}).get("configMap", {}).get("name")
    cms = [d for d in find(docs, "ConfigMap") if d["metadata"]["name"] == cm_name]
    if check(f"{label}: config ConfigMap {cm_name} exists", len(cms) == 1):
        text = cms[0]["data"]["config.toml"]
        check_config_toml(label, text, mport)
        (RENDERED / f"{label}.config.toml").write_text(text)

    # RBAC: pods get/list/watch, nodes get, bound to the ServiceAccount; nothing more.
    crs = find(docs, "ClusterRole")
    crbs = find(docs, "ClusterRoleBinding")
    if check(f"{label}: one ClusterRole and one ClusterRoleBinding", len(crs) == 1 and len(crbs) == 1):
        rules = {(g, r): set(rule["verbs"]) for rule in crs[0]["rules"]
                 for g in rule["apiGroups"] for r in rule["resources"]}
        check(f"{label}: ClusterRole = pods get/list/watch + nodes get",
              rules == {("", "pods"): {"get", "list", "watch"}, ("", "nodes"): {"get"}}, rules)
        b = crbs[0]
        check(f"{label}: binding refers to the ClusterRole and the ServiceAccount",
              b["roleRef"]["name"] == crs[0]["metadata"]["name"]
              and any(s["kind"] == "ServiceAccount" and s["name"] == sa for s in b["subjects"]))

    if not expect_ingest:
        check(f"{label}: no ingest Deployment when disabled", not find(docs, "Deployment"))
        return
    deps = find(docs, "Deployment", "ingest")
    if not check(f"{label}: one ingest Deployment", len(deps) == 1):
        return
    dep = deps[0]
    dpod = dep["spec"]["template"]["spec"]
    dc = dpod["containers"][0]
    dsc = dc.get("securityContext", {})
    check(f"{label}: ingest runs as non-root",
          dpod.get("securityContext", {}).get("runAsNonRoot") is True
          and dpod.get("securityContext", {}).get("runAsUser", 0) != 0)
    check(f"{label}: ingest drops ALL capabilities and adds none",
          dsc.get("capabilities", {}).get("drop") == ["ALL"] and not dsc.get("capabilities", {}).get("add"))
    check(f"{label}: ingest no privilege escalation, read-only root",
          dsc.get("allowPrivilegeEscalation") is False and dsc.get("readOnlyRootFilesystem") is True)
    check(f"{label}: ingest not on the host network/PID", not dpod.get("hostNetwork") and not dpod.get("hostPID"))
    check(f"{label}: ingest args start with `ingest --listen 0.0.0.0:9090`",
          dc["args"][:3] == ["ingest", "--listen", "0.0.0.0:9090"], dc["args"][:3])
    check(f"{label}: ingest probes /healthz and /readyz",
          dc.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz"
          and dc.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz")
    dres = dc.get("resources", {})
    check(f"{label}: ingest requests and limits",
          all(k in dres.get(s, {}) for s in ("requests", "limits") for k in ("cpu", "memory")))
    svcs = find(docs, "Service", "ingest")
    if check(f"{label}: one ingest Service", len(svcs) == 1):
        svc = svcs[0]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        check(f"{label}: Service selects the ingest pods",
              all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()))
        cports = {p["name"] for p in dc["ports"]}
        check(f"{label}: Service targetPorts exist on the container",
              all(p["targetPort"] in cports for p in svc["spec"]["ports"]))
        check(f"{label}: Service exposes 9090", any(p["port"] == 9090 for p in svc["spec"]["ports"]))


# ---------------------------------------------------------------------------------------------
# Plain manifests.
plain_files = sorted((DEPLOY / "kubernetes").glob("*.yaml")) + sorted((DEPLOY / "kubernetes" / "ingest").glob("*.yaml"))
plain = load(plain_files)
check_set("plain", plain)
ns = find(plain, "Namespace")
check("plain: Namespace akto-tap with Pod Security privileged",
      len(ns) == 1 and ns[0]["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "privileged")
check("plain: namespaced objects are in akto-tap",
      all(d["metadata"].get("namespace") == "akto-tap" for d in plain
          if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass")))

# Rendered chart.
default = load([RENDERED / "default.yaml"])
check_set("chart-default", default)
custom = load([RENDERED / "custom.yaml"])
check_set("chart-custom", custom, expect_caps=CAPS | {"SYS_RESOURCE"}, expect_ingest=False, metrics_port=9500)
cds = find(custom, "DaemonSet")[0]
cpod = cds["spec"]["template"]["spec"]
cenv = {e["name"]: e.get("value") for e in cpod["containers"][0]["env"]}
check("chart-custom: TLS CA mounted and TLS_CA_CERT_PATH set",
      cenv.get("USE_TLS") == "true" and cenv.get("TLS_CA_CERT_PATH") == "/etc/akto-tap/kafka-ca/ca.crt"
      and any(v.get("secret", {}).get("secretName") == "kafka-ca" for v in cpod["volumes"]))
check("chart-custom: existing PriorityClass used, none created",
      cpod.get("priorityClassName") == "system-node-critical" and not find(custom, "PriorityClass"))
ccm = find(custom, "ConfigMap")[0]["data"]["config.toml"]
ccfg = tomllib.loads(ccm)
check("chart-custom: values reach config.toml (brokers, ports, backend, big integers)",
      ccfg["kafka"]["brokers"] == "b1:9093,b2:9093" and ccfg["capture"]["ports"] == [] and
      ccfg["capture"]["backend"] == "pcap" and ccfg["kafka"]["spool_max_mib"] == 5120, ccfg)
check("chart-custom: metrics.port moves container port, probes and config together",
      find(custom, "DaemonSet")[0]["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 9500
      and ccfg["metrics"]["listen"] == "0.0.0.0:9500")
check("chart-custom: fullnameOverride names every object",
      all(d["metadata"]["name"].startswith("tap") for d in custom if d["kind"] != "PriorityClass"))
check("chart-custom: no Kafka Secret created with existingSecret",
      not find(custom, "Secret")
      and cpod["containers"][0]["envFrom"][0]["secretRef"]["name"] == "my-kafka")


# The chart's defaults are the plain manifests: compare object by object, ignoring Helm's labels
# and the config checksum, and comparing config.toml as parsed TOML (comments differ).
def normalize(d):
    d = copy.deepcopy(d)
    for _, v in walk(d):
        if isinstance(v, dict):
            for key in ("labels", "matchLabels"):
                v.pop(key, None)
            ann = v.get("annotations")
            if isinstance(ann, dict):
                ann.pop("checksum/config", None)
                if not ann:
                    v.pop("annotations")
    if d["kind"] == "Service":
        d["spec"].pop("selector", None)
    if d["kind"] == "ConfigMap":
        d["data"] = {k: tomllib.loads(v) for k, v in d["data"].items()}
    return d


def diff(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                yield f"{path}.{k}: {'missing in chart' if k not in b else 'only in chart'}"
            else:
                yield from diff(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from diff(x, y, f"{path}[{i}]")
    elif a != b:
        yield f"{path}: plain {a!r} != chart {b!r}"


chart_by_key = {(d["kind"], d["metadata"]["name"]): d for d in default}
for d in plain:
    key = (d["kind"], d["metadata"]["name"])
    if d["kind"] == "Namespace":
        continue  # helm install --create-namespace / kubectl label (README)
    if not check(f"chart = plain: {key[0]}/{key[1]} rendered by the chart", key in chart_by_key):
        continue
    problems = list(diff(normalize(d), normalize(chart_by_key[key])))
    check(f"chart = plain: {key[0]}/{key[1]} identical", not problems, "; ".join(problems[:5]))
extra = set(chart_by_key) - {(d["kind"], d["metadata"]["name"]) for d in plain}
check("chart = plain: the chart renders nothing the plain manifests lack", not extra, extra)

# ---------------------------------------------------------------------------------------------
# Chart structure: values documented, templates use only defined values, includes defined.
chart = DEPLOY / "helm" / "akto-tap"
for f in ("Chart.yaml", "values.yaml", "templates/_helpers.tpl", "templates/NOTES.txt", ".helmignore"):
    check(f"chart: {f} exists", (chart / f).is_file())
values_text = (chart / "values.yaml").read_text()
values = yaml.safe_load(values_text)

# A key is documented when a comment line sits right above it or above one of its ancestors.
lines = values_text.splitlines()
stack, undocumented = [], []
for i, line in enumerate(lines):
    m = re.match(r"^(\s*)([A-Za-z_][\w-]*):", line)
    if not m:
        continue
    indent = len(m[1])
    while stack and stack[-1][0] >= indent:
        stack.pop()
    doc = i > 0 and lines[i - 1].strip().startswith("#")
    inherited = any(s[2] for s in stack)
    stack.append((indent, m[2], doc or inherited))
    rest = line.split(":", 1)[1].strip()
    is_leaf = rest != "" or not (i + 1 < len(lines) and re.match(r"^\s+\S", lines[i + 1]) and
                                 len(lines[i + 1]) - len(lines[i + 1].lstrip()) > indent)
    if is_leaf and not (doc or inherited):
        undocumented.append(".".join(s[1] for s in stack))
check("chart: every value in values.yaml is documented", not undocumented, undocumented)

used = set()
includes, defines = set(), set()
for t in (chart / "templates").iterdir():
    text = t.read_text()
    used |= set(re.findall(r"\.Values((?:\.[A-Za-z_][\w]*)+)", text))
    includes |= set(re.findall(r'include\s+"([^"]+)"', text))
    defines |= set(re.findall(r'define\s+"([^"]+)"', text))
missing = []
for path_ in sorted(used):
    node = values
    for part in path_.strip(".").split("."):
        if not isinstance(node, dict) or part not in node:
            missing.append(path_)
            break
        node = node[part]
check("chart: templates reference only values defined in values.yaml", not missing, missing)
check("chart: every include has a define", includes <= defines, includes - defines)

# ---------------------------------------------------------------------------------------------
# Dockerfile (structure; hadolint lints it in test-deploy.sh; docker cannot build here).
df = (DEPLOY / "docker" / "Dockerfile").read_text()
check("docker: builder is rust:1.95-bookworm",
      "ARG RUST_VERSION=1.95" in df and re.search(r"^FROM rust:\$\{RUST_VERSION\}-\$\{DEBIAN_RELEASE\} AS builder", df, re.M)
      and "ARG DEBIAN_RELEASE=bookworm" in df)
check("docker: eBPF toolchain (llvm-22, LLVM_PREFIX, bpf-linker llvm-22, nightly rust-src)",
      "ARG LLVM_VERSION=22" in df and "LLVM_PREFIX=/usr/lib/llvm-${LLVM_VERSION}" in df
      and "cargo install bpf-linker" in df and '--features "llvm-${LLVM_VERSION}"' in df
      and "--component rust-src" in df and "nightly" in df)
check("docker: cargo build --locked of the akto-tap package", "cargo build --release --locked -p akto-tap" in df)
stages = re.findall(r"^FROM\s+(\S+)\s+AS\s+(\S+)", df, re.M)
check("docker: stages builder, runtime-base (debian slim), capture, ingest",
      [s[1] for s in stages] == ["builder", "runtime-base", "capture", "ingest"]
      and stages[1][0].startswith("debian:${DEBIAN_RELEASE}-slim"), stages)
ingest_stage = df.split("AS ingest", 1)[1]
check("docker: ingest image runs as a non-root user", re.search(r"^USER 65532:65532", ingest_stage, re.M))
check("docker: runtime has libssl3 and libpcap, no compiler",
      "libssl3" in df.split("AS runtime-base", 1)[1] and "libpcap0.8" in df
      and "clang" not in df.split("AS runtime-base", 1)[1])
for src in re.findall(r"^COPY (?!--from)(\S+) ", df, re.M):
    if src != ".":
        check(f"docker: COPY source {src} exists", (ROOT / src).exists())
ign = (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text().split()
check("docker: Dockerfile.dockerignore excludes target/ and .git/", "**/target/" in ign and ".git/" in ign)

# systemd unit (systemd-analyze verify and capsh run in test-deploy.sh).
unit = (DEPLOY / "systemd" / "akto-tap.service").read_text()
kv = {}
for line in unit.splitlines():
    if "=" in line and not line.lstrip().startswith("#"):
        k, v = line.split("=", 1)
        kv[k.strip()] = v.strip()
want_caps = {f"CAP_{c}" for c in CAPS}
check("systemd: CapabilityBoundingSet is exactly the capture set",
      set(kv.get("CapabilityBoundingSet", "").split()) == want_caps, kv.get("CapabilityBoundingSet"))
check("systemd: AmbientCapabilities is exactly the capture set",
      set(kv.get("AmbientCapabilities", "").split()) == want_caps, kv.get("AmbientCapabilities"))
for k, v in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
             ("PrivateTmp", "yes"), ("Restart", "on-failure"), ("LimitMEMLOCK", "infinity")):
    check(f"systemd: {k}={v}", kv.get(k) == v, kv.get(k))
check("systemd: ReadWritePaths covers the spool",
      any(SPOOL.startswith(p.lstrip("-")) for p in kv.get("ReadWritePaths", "").split()))
check("systemd: RestartSec, StartLimitIntervalSec, StartLimitBurst set",
      all(k in kv for k in ("RestartSec", "StartLimitIntervalSec", "StartLimitBurst")))
check("systemd: EnvironmentFile is /etc/akto-tap/akto-tap.env",
      kv.get("EnvironmentFile", "").lstrip("-") == "/etc/akto-tap/akto-tap.env")
check("systemd: ExecStart runs capture with /etc/akto-tap/config.toml",
      kv.get("ExecStart") == "/usr/local/bin/akto-tap capture --config /etc/akto-tap/config.toml")
env_names = {l.lstrip("#").split("=", 1)[0] for l in (DEPLOY / "systemd" / "akto-tap.env").read_text().splitlines()
             if re.match(r"^#?[A-Z_]+=", l)}
akto_env = {"AKTO_KAFKA_BROKER_MAL", "AKTO_TRAFFIC_BATCH_SIZE", "AKTO_TRAFFIC_BATCH_TIME_SECS", "USE_TLS",
            "TLS_CA_CERT_PATH", "IS_AUTH_IMPLEMENTED", "KAFKA_USERNAME", "KAFKA_PASSWORD",
            "AKTO_IGNORE_IP_TRAFFIC", "AKTO_IGNORE_CLOUD_METADATA_CALLS", "MIRRORING_INTERFACE"}
check("systemd: akto-tap.env shows Akto's variables (and only known ones)",
      akto_env <= env_names and env_names <= akto_env | {"AKTO_TAP_DAEMONSET_ID", "AKTO_TAP_NODE_NAME"},
      env_names ^ akto_env)
check_config_toml("systemd", (DEPLOY / "systemd" / "config.toml").read_text(), 9464)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
