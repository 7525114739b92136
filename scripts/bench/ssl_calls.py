#!/usr/bin/env python3
"""SSL call cost for scripts/bench-tls.sh: a TLS client and server in one process over memory BIOs
(no sockets, no syscalls), N x (SSL_write_ex of 100 bytes + SSL_read_ex); prints microseconds per
write+read pair. Run with and without probes on libssl to see what a probed call costs.

  ssl_calls.py CERT KEY [N]
"""
import ssl
import sys
import time

cert, key = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 50000
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(cert, key)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
cctx.check_hostname = False
cctx.verify_mode = ssl.CERT_NONE
ci, co, si, so = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
c = cctx.wrap_bio(ci, co)
s = sctx.wrap_bio(si, so, server_side=True)


def pump():
    si.write(co.read())
    ci.write(so.read())


for _ in range(10):
    for end in (c, s):
        try:
            end.do_handshake()
        except ssl.SSLWantReadError:
            pass
        pump()
msg = b"x" * 100
t = time.perf_counter()
for _ in range(N):
    c.write(msg)
    si.write(co.read())
    s.read(200)
dt = time.perf_counter() - t
print(f"{dt / N * 1e6:.2f}")
