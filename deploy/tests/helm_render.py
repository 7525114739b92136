#!/usr/bin/env python3
"""Render and lint the Helm chart with the real Helm library, offline.

The Helm CLI is not installable from the registries this project can reach, but PyPI's
`helm-sdkpy` ships Helm v4's Go library as a shared object. It has no `template` action, so
`render` runs a real `helm install` against a tiny in-process stand-in for the Kubernetes API
server (discovery, release storage, object creation) and writes the release's rendered manifest:
the same text `helm template` prints. `lint` runs `helm lint` on the chart.

usage: helm_render.py lint CHART
       helm_render.py render CHART RELEASE NAMESPACE OUT.yaml [VALUES.json]
The stand-in API server reports Kubernetes 1.$KUBE_MINOR.0 (default 1.33).
"""
import asyncio
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("HELM_DRIVER", "memory")

RESOURCES = {
    ("", "v1"): [("namespaces", "Namespace", False), ("serviceaccounts", "ServiceAccount", True),
                 ("configmaps", "ConfigMap", True), ("secrets", "Secret", True),
                 ("services", "Service", True), ("pods", "Pod", True), ("nodes", "Node", False)],
    ("apps", "v1"): [("daemonsets", "DaemonSet", True), ("deployments", "Deployment", True)],
    ("rbac.authorization.k8s.io", "v1"): [("clusterroles", "ClusterRole", False),
                                          ("clusterrolebindings", "ClusterRoleBinding", False),
                                          ("roles", "Role", True), ("rolebindings", "RoleBinding", True)],
    ("scheduling.k8s.io", "v1"): [("priorityclasses", "PriorityClass", False)],
}
NOT_FOUND = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}


def resource_list(group, version):
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": [{"name": n, "singularName": "", "namespaced": ns, "kind": k,
                           "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
                          for n, k, ns in RESOURCES[(group, version)]]}


class FakeApiServer(BaseHTTPRequestHandler):
    def send(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0]
        if path == "/version":
            minor = os.environ.get("KUBE_MINOR", "33")
            return self.send(200, {"major": "1", "minor": minor, "gitVersion": f"v1.{minor}.0", "platform": "linux/amd64"})
        if path == "/api":
            return self.send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if path == "/apis":
            return self.send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}}
                for (g, v) in RESOURCES if g]})
        if path == "/api/v1":
            return self.send(200, resource_list("", "v1"))
        m = re.fullmatch(r"/apis/([^/]+)/([^/]+)", path)
        if m and (m[1], m[2]) in RESOURCES:
            return self.send(200, resource_list(m[1], m[2]))
        if self.headers.get("Content-Type", "").startswith("application/vnd.kubernetes.protobuf"):
            # Helm's release record (typed client, protobuf): acknowledge it.
            name = re.search(rb"sh\.helm\.release\.v1\.[A-Za-z0-9.-]+", body)
            return self.send(201 if self.command == "POST" else 200, {
                "kind": "Secret", "apiVersion": "v1",
                "metadata": {"name": name.group(0).decode() if name else "release",
                             "uid": "0", "resourceVersion": "1"}})
        if self.command == "POST":
            obj = json.loads(body)
            obj.setdefault("metadata", {})["uid"] = "0"
            return self.send(201, obj)
        return self.send(404, NOT_FOUND)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def log_message(self, *args):
        pass


def lint(chart):
    from helm_sdkpy import Configuration
    from helm_sdkpy.chart import Lint
    result = asyncio.run(Lint(Configuration(namespace="default")).run(chart))
    # Severity: 1 info, 2 warning, 3 error (helm's support.Severity).
    bad = [m for m in result.get("Messages") or [] if m.get("Severity", 0) >= 2]
    for m in result.get("Messages") or []:
        print(f"helm lint: severity {m.get('Severity')} at {m.get('Path')}")
    if bad or result.get("Errors"):
        print(f"helm lint: FAILED ({len(bad)} warnings/errors)")
        return 1
    print(f"helm lint: {result.get('TotalChartsLinted')} chart linted, no warnings or errors")
    return 0


def render(chart, release, namespace, out, values_file=None):
    values = json.load(open(values_file)) if values_file else None
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = (
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: fake, cluster: {{server: 'http://127.0.0.1:{server.server_address[1]}'}}}}]\n"
        "users: [{name: fake, user: {token: fake}}]\n"
        f"contexts: [{{name: fake, context: {{cluster: fake, user: fake, namespace: {namespace}}}}}]\n"
        "current-context: fake\n")
    from helm_sdkpy import Configuration, Install
    try:
        result = asyncio.run(Install(Configuration(namespace=namespace, kubeconfig=kubeconfig)).run(
            release, chart, values=values, wait=False, timeout=30))
    except Exception as e:  # noqa: BLE001 - report whatever Helm said
        print(f"helm install (render) FAILED: {e}")
        return 1
    finally:
        server.shutdown()
    with open(out, "w") as f:
        f.write(result["manifest"])
    with open(out + ".NOTES.txt", "w") as f:
        f.write(result.get("info", {}).get("notes", ""))
    print(f"helm render: {out} ({result['manifest'].count('kind:')} kind: lines)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "lint":
        sys.exit(lint(sys.argv[2]))
    if len(sys.argv) in (6, 7) and sys.argv[1] == "render":
        sys.exit(render(*sys.argv[2:]))
    print(__doc__)
    sys.exit(2)
