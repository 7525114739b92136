//! Which Zeek baseline belongs to which trace.
//!
//! Source: `shared/corpus/INDEX.md` §1.1 (trace → baseline test dirs), completed from the btest
//! scripts' `@TEST-EXEC: zeek -r $TRACES/…` lines for the baselines that table doesn't list
//! (teredo, teredo_bubble_with_payload, ascii-escape-odd-url, http-filename). Every baseline here
//! is produced by one run of Zeek over one trace. Paths: baseline under
//! `zeek/testing/btest/Baseline/`, trace under `zeek/testing/btest/Traces/`.
//!
//! When several baselines come from the same trace, the suite scores the first one listed for the
//! trace and scores another only if its rows differ from it (see `zeek::same_rows`), so a trace
//! isn't counted twice.

/// (baseline, trace)
pub const ZEEK: &[(&str, &str)] = &[
    ("core.nflog/http.log", "nflog-http.pcap"),
    ("core.tcp-padding/http.log", "tcp-http-with-padding.pcap"),
    ("core.tcp.reassembly-known-ports/http.log", "http/get.pcap"),
    // JSON-lines rendering of the same get.pcap transaction.
    ("javascript.http-uri-sha256/http.log", "http/get.pcap"),
    ("core.tunnels.analyzer-confirmation/http.log", "tunnels/vxlan-encapsulated-http.pcap"),
    ("core.tunnels.ayiya/http.log", "tunnels/ayiya3.pcap"),
    ("core.tunnels.gre-over-udp/http.log", "tunnels/gre-over-udp-4754.pcap"),
    ("core.tunnels.teredo/http.log", "tunnels/Teredo.pcap"),
    ("core.tunnels.teredo_bubble_with_payload/http.log", "tunnels/teredo_bubble_with_payload.pcap"),
    ("core.vlan-mpls/http.log", "mixed-vlan-mpls.pcap"),
    ("opt.basic/http.log", "wikipedia.pcap"),
    ("scripts.base.frameworks.analyzer.request-analyzer/http.log", "wikipedia.pcap"),
    ("scripts.policy.protocols.http.header-names/http.log", "wikipedia.pcap"),
    (
        "scripts.base.files.mime.vnd.ms-cab-compressed-multi-conn/http.log.cut",
        "http/vnd.ms-cab-compressed-multi-conn.pcap",
    ),
    ("scripts.base.frameworks.logging.ascii-escape-odd-url/http.log", "www-odd-url.pcap"),
    ("scripts.base.protocols.http.100-continue/http.log", "http/100-continue.pcap"),
    ("scripts.base.protocols.http.101-switching-protocols/http.log", "http/websocket.pcap"),
    (
        "scripts.base.protocols.http.261.chunk-2pow64-overflow/http.log",
        "http/261/variant-01-chunk_2pow64_overflow.pcap",
    ),
    ("scripts.base.protocols.http.261.cl-uint64max/http.log", "http/261/variant-02-cl_uint64max.pcap"),
    ("scripts.base.protocols.http.261.cl-negative/http.log", "http/261/variant-03-cl_negative.pcap"),
    ("scripts.base.protocols.http.261.te-cl-desync/http.log", "http/261/variant-04-te_cl_desync.pcap"),
    ("scripts.base.protocols.http.261.cl-0-expect-100/http.log", "http/261/variant-07-expect_100_cl0.pcap"),
    ("scripts.base.protocols.http.261.cl-leading-zeros/http.log", "http/261/variant-08-leading_zeros.pcap"),
    ("scripts.base.protocols.http.261.obsolete-line-fold/http.log", "http/261/variant-09-te_obs_fold.pcap"),
    ("scripts.base.protocols.http.261.chunked-rest/http.log", "http/261/variant-10-multi_value_te.pcap"),
    ("scripts.base.protocols.http.bad-content-range/http.log", "http/http-bad-content-range-01.pcap"),
    ("scripts.base.protocols.http.concurrent-range-requests/http.log", "http/concurrent-range-requests.pcap"),
    (
        "scripts.base.protocols.http.content-length-in-request-body/http.log.cut",
        "http/content-length-in-request-body.pcap",
    ),
    ("scripts.base.protocols.http.content-length-overflow/http.log", "http/content-length-overflow.pcap"),
    ("scripts.base.protocols.http.content-range-less-than-len/http.log", "http/content-range-less-than-len.pcap"),
    ("scripts.base.protocols.http.ctu-agent-tesla/http.log.cut", "http/ctu-62604-80.pcap"),
    ("scripts.base.protocols.http.curl-http-09/http.log", "http/curl_http_09.pcap"),
    ("scripts.base.protocols.http.deeply-nested-mime/http.log", "http/deeply-nested-mime.pcap"),
    ("scripts.base.protocols.http.fake-content-length/http.log", "http/fake-content-length.pcap"),
    ("scripts.base.protocols.http.flip-content-line-orig/http.log.cut", "http/zeek-image-post-1080-8000-x.pcap"),
    ("scripts.base.protocols.http.flip-content-line-resp/http.log.cut", "http/zeek-image-1080-80-x.pcapng"),
    ("scripts.base.protocols.http.http-09/http.log", "http/http_09.pcap"),
    (
        "scripts.base.protocols.http.http-09-content-length-confusion/http.log",
        "http/http-09-content-length-confusion.pcap",
    ),
    ("scripts.base.protocols.http.http-11-request-then-cruft/http.log", "http/http-11-request-then-cruft.pcap"),
    ("scripts.base.protocols.http.http-bad-request-with-version/http.log", "http/http-bad-request-with-version.pcap"),
    ("scripts.base.protocols.http.http-basic-auth-colon/http.log", "http/basic-auth-with-colon.pcap"),
    ("scripts.base.protocols.http.http-basic-auth-extra-space/http.log", "http/basic-auth-with-extra-space.pcap"),
    ("scripts.base.protocols.http.http-connect/http.log", "http/connect-with-smtp.pcap"),
    ("scripts.base.protocols.http.http-connect-with-header/http.log", "http/connect-with-header.pcap"),
    ("scripts.base.protocols.http.http-desynched/http.log", "http/http-desync-request-response-5.pcap"),
    ("scripts.base.protocols.http.http-filename/http.log", "http/http-filename.pcap"),
    // One btest, two Zeek runs: each file comes from one trace.
    ("scripts.base.protocols.http.http-lower-case/http.log.standard", "http/http-lower-case.pcap"),
    ("scripts.base.protocols.http.http-lower-case/http.log.nonstandard", "http/http-lower-case-nonstandard-port.pcap"),
    ("scripts.base.protocols.http.http-methods/http.log", "http/methods.pcap"),
    ("scripts.base.protocols.http.http-no-crlf/http.log", "http/no_crlf.pcap"),
    ("scripts.base.protocols.http.http-pipelining/http.log", "http/pipelined-requests.pcap"),
    (
        "scripts.base.protocols.http.inner-transfer-encoding-ossfuzz/http.log.cut",
        "http/http-inner-transfer-encoding-ossfuzz.pcap",
    ),
    (
        "scripts.base.protocols.http.inner-transfer-encoding-reproducer/http.log.cut",
        "http/http-inner-transfer-encoding-reproducer.pcap",
    ),
    ("scripts.base.protocols.http.invalid-content-ranges/http.log", "http/invalid-content-ranges.pcap"),
    ("scripts.base.protocols.http.m57-long-download-windowsupdate-1/http.log.cut", "http/m57-long-49583-80.pcap"),
    ("scripts.base.protocols.http.m57-long-download-windowsupdate-2/http.log.cut", "http/m57-long-49600-80.pcap"),
    ("scripts.base.protocols.http.missing-http-entity/http.log", "http/interleaved-http-entity.pcap"),
    ("scripts.base.protocols.http.missing-zlib-header/http.log", "http/missing-zlib-header.pcap"),
    ("scripts.base.protocols.http.multipart-body-length/http.log", "http/multipart-form-data.pcap"),
    ("scripts.base.protocols.http.multipart-extract/http.log", "http/multipart.pcap"),
    // Three runs over the same trace with different file limits; same rows.
    ("scripts.base.protocols.http.multipart-file-limit/http.log", "http/multipart.pcap"),
    ("scripts.base.protocols.http.multipart-file-limit/http-limited.log", "http/multipart.pcap"),
    ("scripts.base.protocols.http.multipart-file-limit/http-limit-ignored.log", "http/multipart.pcap"),
    ("scripts.base.protocols.http.no-uri/http.log", "http/no-uri.pcap"),
    ("scripts.base.protocols.http.no-version/http.log", "http/no-version.pcap"),
    ("scripts.base.protocols.http.percent-end-of-line/http.log", "http/percent-end-of-line.pcap"),
    ("scripts.base.protocols.http.query-method/http.log", "http/query-method.pcap"),
    ("scripts.base.protocols.http.query-method-non-standard-port/http.log", "http/query-method-non-standard-port.pcap"),
    ("scripts.base.protocols.http.smuggle-http-request/http.log.cut", "http/smuggle-http-request.pcap"),
    ("scripts.base.protocols.http.upgrade-to-tcp/http.log.cut", "http/docker-http-upgrade.pcap"),
    ("scripts.base.protocols.http.version-mismatch/http.log", "http/version-mismatch.pcap"),
    ("scripts.base.protocols.http.x-gzip/http.log", "http/x-gzip.pcap"),
    ("scripts.base.protocols.snap.snap-tcp/http.log", "snap-tcp.pcap"),
    ("scripts.base.protocols.ssh.http-port-22/http.log", "http/http-single-conn-22.pcap"),
    ("scripts.policy.frameworks.analyzer.detect-protocols-violation/http.log", "http/get-to-ssh-server.pcap"),
    (
        "scripts.policy.frameworks.analyzer.detect-protocols-violation-ssl-to-http/http.log",
        "tls/ssl-to-http-server.pcap",
    ),
    ("scripts.policy.protocols.http.sql-injection-plus-dvwa2/http.log.cut", "http/cooper-grill-dvwa.pcapng"),
];

/// http.log-like baselines that are not scored, and why.
pub const ZEEK_EXCLUDED: &[(&str, &str)] = &[
    (
        "scripts.base.frameworks.logging.json-non-printable-escaping/http.log.tsv",
        "trace http/http-non-printable-characters.pcap is not in the corpus",
    ),
    (
        "scripts.base.frameworks.logging.json-non-printable-escaping/http.log.json",
        "trace http/http-non-printable-characters.pcap is not in the corpus",
    ),
    ("javascript.log-delay/http.log.cut", "keeps only ts/uid/addresses and a JS-added column: nothing to compare"),
    (
        "scripts.policy.protocols.http.var-extraction-uri/http-reduced.log",
        "script-reduced output (uri|header names, no column header); trace not identified",
    ),
    (
        "scripts.base.protocols.websocket.wstunnel-http/http.log",
        "rows mix the WebSocket upgrade with HTTP carried inside WebSocket frames (wstunnel), \
         which an HTTP/1.x-over-TCP reassembler does not unwrap",
    ),
];

/// Body lengths where the Zeek value is an artefact of Zeek's own accounting and the capture
/// proves a different entity length: (baseline, row line, column, verified length, evidence).
/// When the replay produces exactly the verified length the comparison is listed as "Zeek
/// artefact" and left out of the body-length score; any other value is scored as usual.
pub const ZEEK_BODY_ARTEFACTS: &[(&str, usize, &str, u64, &str)] = &[
    ("scripts.base.protocols.http.http-no-crlf/http.log", 10, "request_body_len", 6084, NO_CRLF),
    ("scripts.base.protocols.http.http-no-crlf/http.log", 11, "request_body_len", 7556, NO_CRLF),
    ("scripts.base.protocols.http.http-no-crlf/http.log", 12, "request_body_len", 8212, NO_CRLF),
    ("scripts.base.protocols.http.http-no-crlf/http.log", 13, "request_body_len", 6276, NO_CRLF),
    ("scripts.base.protocols.http.http-no-crlf/http.log", 14, "request_body_len", 6228, NO_CRLF),
    (
        "scripts.base.protocols.ssh.http-port-22/http.log",
        10,
        "response_body_len",
        12630,
        "close-delimited body: the server sends 12649 bytes, 19 of them the head \
         `HTTP/1.1 200 OK\\r\\n\\r\\n`; Zeek adds 2 for the unterminated last line",
    ),
    (
        "scripts.base.protocols.http.inner-transfer-encoding-reproducer/http.log.cut",
        3,
        "request_body_len",
        72,
        "message/rfc822 body, Content-Encoding gzip, Content-Length 87: gunzips to 72 bytes; \
         Zeek logs its MIME analyzer's count of the nested message (63)",
    ),
    (
        "scripts.base.protocols.http.inner-transfer-encoding-reproducer/http.log.cut",
        3,
        "response_body_len",
        35,
        "close-delimited body of 35 bytes (`POST request received successfully!`); Zeek adds 2 \
         for the unterminated last line",
    ),
    (
        "scripts.base.protocols.http.smuggle-http-request/http.log.cut",
        3,
        "request_body_len",
        65,
        "message/rfc822 body, Content-Encoding gzip, Content-Length 80: gunzips to 65 bytes; \
         Zeek logs its MIME analyzer's count of the nested message (57)",
    ),
];

const NO_CRLF: &str = "multipart/form-data body with bare-LF lines: the request's Content-Length equals \
                       this value; Zeek's MIME analyzer counts 2 more";

/// Exchanges that are real HTTP in the capture but that Zeek does not log, for a reason that is
/// Zeek's policy rather than the traffic: (trace, client address, evidence). Not counted as
/// extras when present.
pub const ZEEK_UNLOGGED: &[(&str, &str, &str)] = &[(
    "wikipedia.pcap",
    "141.142.220.118:35634",
    "GET / answered 304 on a connection whose handshake is not in the capture; opt.basic/conn.log \
     has it as conn_state OTH, history DdA, service '-': Zeek attached no HTTP analyzer",
)];
