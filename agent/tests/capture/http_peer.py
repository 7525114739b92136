#!/usr/bin/env python3
"""Real HTTP/1.1 peers for the live-capture tests (agent/tests/capture.rs).

  http_peer.py serve HOST PORT
      A threading HTTP/1.1 server (keep-alive) with:
        GET  /small/ID            short JSON, Content-Length
        POST /echo/ID             echoes the request body
        GET  /big/ID?n=N          N bytes (deterministic), Content-Length
        GET  /chunked/ID?n=N      N bytes in 7 chunks, Transfer-Encoding: chunked
        GET  /gzip/ID             gzip-compressed JSON, Content-Encoding: gzip
      Prints "ready" once listening.

  http_peer.py client HOST PORT SCENARIO TAG
      Runs a scenario and prints one JSON line per exchange it completed:
      {"method","path","status","req_sha","resp_sha","resp_len"} where resp_sha is over the
      decoded body (de-chunked, gunzipped), which is what the agent records.
      Scenarios: keepalive, pipelined, concurrent, large, all.

  TLS (agent/tests/tls.rs): with PEER_TLS_CERT and PEER_TLS_KEY set the server speaks HTTPS;
  with PEER_TLS=1 the client does (certificate not verified: a test certificate).
"""
import gzip
import hashlib
import http.client
import json
import os
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def body_for(ident, n):
    seed = hashlib.sha256(ident.encode()).hexdigest().encode()
    return (seed * (n // len(seed) + 1))[:n]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body, ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urlparse(self.path)
        q = parse_qs(u.query)
        n = int(q.get("n", ["1000"])[0])
        parts = u.path.split("/")
        kind = parts[1] if len(parts) > 1 else ""
        if kind == "small":
            self._send(200, json.dumps({"id": u.path, "ok": True}).encode())
        elif kind == "big":
            self._send(200, body_for(u.path, n), "application/octet-stream")
        elif kind == "gzip":
            self._send(200, gzip.compress(json.dumps({"id": u.path, "gz": True}).encode()), extra=[("Content-Encoding", "gzip")])
        elif kind == "chunked":
            data = body_for(u.path, n)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            step = max(1, len(data) // 7 + 1)
            for i in range(0, len(data), step):
                c = data[i:i + step]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(404, b'{"error":"not found"}')

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self._send(200, body)


def serve(host, port):
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 512
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    if os.environ.get("PEER_TLS_CERT"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.environ["PEER_TLS_CERT"], os.environ["PEER_TLS_KEY"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("ready", flush=True)
    srv.serve_forever()


TLS = os.environ.get("PEER_TLS") == "1"


def client_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connection(host, port, timeout):
    if TLS:
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=client_ctx())
    return http.client.HTTPConnection(host, port, timeout=timeout)


def sha(b):
    return hashlib.sha256(b).hexdigest()


OUT_LOCK = threading.Lock()


def emit(method, path, status, req, resp):
    with OUT_LOCK:
        print(json.dumps({"method": method, "path": path, "status": status, "req_sha": sha(req),
                          "resp_sha": sha(resp), "resp_len": len(resp)}), flush=True)


def request(conn, method, path, body=b""):
    headers = {"Content-Type": "application/json"} if body else {}
    conn.request(method, path, body=body if body else None, headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.getheader("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    emit(method, path, r.status, body, data)


def keepalive(host, port, tag):
    c = connection(host, port, 20)
    for i in range(20):
        k = i % 5
        if k == 0:
            request(c, "GET", f"/small/{tag}-ka{i}")
        elif k == 1:
            request(c, "POST", f"/echo/{tag}-ka{i}", json.dumps({"i": i, "tag": tag}).encode())
        elif k == 2:
            request(c, "GET", f"/chunked/{tag}-ka{i}?n=3000")
        elif k == 3:
            request(c, "GET", f"/gzip/{tag}-ka{i}")
        else:
            request(c, "GET", f"/big/{tag}-ka{i}?n=20000")
    c.close()


def pipelined(host, port, tag):
    paths = [f"/small/{tag}-pl{i}" for i in range(6)]
    s = socket.create_connection((host, port), timeout=20)
    if TLS:
        s = client_ctx().wrap_socket(s, server_hostname=host)
    s.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for p in paths))
    f = s.makefile("rb")
    for p in paths:
        status = int(f.readline().split()[1])
        length = 0
        while True:
            line = f.readline()
            if line in (b"\r\n", b""):
                break
            k, v = line.decode().split(":", 1)
            if k.lower() == "content-length":
                length = int(v)
        emit("GET", p, status, b"", f.read(length))
    s.close()


def concurrent(host, port, tag):
    def worker(w):
        c = connection(host, port, 20)
        for i in range(8):
            request(c, "POST", f"/echo/{tag}-cc{w}-{i}", (f"worker {w} request {i} " * 20).encode())
        c.close()
    ts = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def large(host, port, tag):
    c = connection(host, port, 30)
    request(c, "POST", f"/echo/{tag}-lg-post", body_for(tag + "post", 300_000))
    request(c, "GET", f"/big/{tag}-lg-get?n=500000")
    request(c, "GET", f"/chunked/{tag}-lg-chunked?n=200000")
    c.close()


def paused(host, port, tag):
    """One keep-alive connection: 2 requests, then `{"paused": 1}` and a wait for a line on stdin
    (the test starts the agent meanwhile), then 10 more on the same connection."""
    c = connection(host, port, 30)
    for i in range(2):
        request(c, "GET", f"/small/{tag}-pre{i}")
    print(json.dumps({"paused": 1}), flush=True)
    sys.stdin.readline()
    for i in range(10):
        if i % 2:
            request(c, "POST", f"/echo/{tag}-post{i}", json.dumps({"i": i}).encode())
        else:
            request(c, "GET", f"/big/{tag}-post{i}?n=30000")
    c.close()


def main():
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
        return
    _, _, host, port, scenario, tag = sys.argv
    port = int(port)
    runs = {"keepalive": [keepalive], "pipelined": [pipelined], "concurrent": [concurrent], "large": [large],
            "all": [keepalive, pipelined, concurrent, large], "paused": [paused]}[scenario]
    for run in runs:
        run(host, port, tag)


if __name__ == "__main__":
    main()
