use super::*;
use crate::exchange::{Anomaly, ContentCoding, Version};
use crate::testutil::{run, run_with, Conv, Frame};
use proptest::prelude::*;
use std::io::Write;

/// A conversation: handshake, then each (client bytes, server bytes) turn, then close.
fn conversation(turns: &[(&[u8], &[u8])], mss: usize) -> Vec<Frame> {
    let mut c = Conv::new(40000);
    let mut f = c.handshake();
    for (req, resp) in turns {
        f.extend(c.send_segments(true, req, mss));
        f.extend(c.send_segments(false, resp, mss));
    }
    f.extend(c.close());
    f
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).ok();
    e.finish().unwrap_or_default()
}

fn body(ex: &HttpExchange) -> &[u8] {
    ex.response.as_ref().map_or(&[][..], |r| &r.body.data)
}

#[test]
fn simple_exchange_fields() {
    let (ex, stats) = run(&conversation(
        &[(
            b"POST /api/v1/items?x=1 HTTP/1.1\r\nHost: api.test\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        )],
        1460,
    ));
    assert_eq!(ex.len(), 1);
    let e = &ex[0];
    assert_eq!((e.request.method.as_str(), e.request.target.as_str()), ("POST", "/api/v1/items?x=1"));
    assert_eq!(e.request.body.data, b"{\"a\":1}");
    let r = e.response.as_ref().expect("response");
    assert_eq!((r.status, r.reason.as_str(), r.body.data.as_slice()), (201, "Created", &b"{}"[..]));
    assert_eq!(e.conn.client.to_string(), "10.0.0.1:40000");
    assert_eq!(e.depth, 1);
    assert!(!e.flags.pending && !e.flags.gap && e.flags.anomalies.is_empty());
    assert_eq!(stats.flows_closed, 1);
    assert!(e.request.ts < r.ts);
}

#[test]
fn keep_alive_sequence_split_in_one_byte_segments() {
    let turns: Vec<(Vec<u8>, Vec<u8>)> = (0..3)
        .map(|i| {
            (
                format!("GET /r{i} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes(),
                format!("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nr{i}!").into_bytes(),
            )
        })
        .collect();
    let refs: Vec<(&[u8], &[u8])> = turns.iter().map(|(a, b)| (a.as_slice(), b.as_slice())).collect();
    let (ex, _) = run(&conversation(&refs, 1));
    assert_eq!(ex.len(), 3);
    for (i, e) in ex.iter().enumerate() {
        assert_eq!(e.request.target, format!("/r{i}"));
        assert_eq!(body(e), format!("r{i}!").as_bytes());
        assert_eq!(e.depth, i as u32 + 1);
    }
}

#[test]
fn pipelined_requests_pair_in_order() {
    let reqs =
        b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\nHEAD /c HTTP/1.1\r\nHost: h\r\n\r\n";
    let resps = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nAHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nBBHTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n";
    let (ex, _) = run(&conversation(&[(reqs, resps)], 1460));
    let got: Vec<_> =
        ex.iter().map(|e| (e.request.target.as_str(), e.response.as_ref().map(|r| r.status), body(e).len())).collect();
    assert_eq!(got, vec![("/a", Some(200), 1), ("/b", Some(404), 2), ("/c", Some(200), 0)]);
}

#[test]
fn chunked_gzip_trailers_and_extensions() {
    let gz = gzip(b"{\"hello\":\"world\"}");
    let (a, b) = gz.split_at(5);
    let mut resp =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\nTrailer: X-Sum\r\n\r\n".to_vec();
    resp.extend(format!("{:x};ext=1\r\n", a.len()).as_bytes());
    resp.extend(a);
    resp.extend(format!("\r\n{:X}\r\n", b.len()).as_bytes());
    resp.extend(b);
    resp.extend(b"\r\n0\r\nX-Sum: 42\r\n\r\n");
    for mss in [1, 7, 1460] {
        let (ex, _) = run(&conversation(&[(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &resp)], mss));
        assert_eq!(ex.len(), 1, "mss {mss}");
        let r = ex[0].response.as_ref().expect("response");
        assert_eq!(r.body.data, b"{\"hello\":\"world\"}");
        assert_eq!(r.body.decoded_len, 17);
        assert_eq!(r.body.wire_len, gz.len() as u64);
        assert_eq!(ex[0].flags.decoded_with, vec![ContentCoding::Gzip]);
        assert_eq!(r.headers.last().map(|h| h.name), Some("X-Sum"));
    }
}

#[test]
fn interim_and_bodyless_statuses() {
    let reqs: &[u8] = b"POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc";
    let resps: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n";
    let (ex, _) = run(&conversation(
        &[
            (reqs, resps),
            (b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"),
        ],
        1460,
    ));
    assert_eq!(ex.len(), 2);
    let r = ex[0].response.as_ref().expect("response");
    assert_eq!((r.status, r.interim.clone()), (204, vec![100, 103]));
    assert_eq!(ex[0].request.body.data, b"abc");
    assert_eq!(ex[1].response.as_ref().map(|r| r.status), Some(304));
}

#[test]
fn connect_tunnel_and_websocket_upgrade_stop_parsing() {
    let (ex, stats) = run(&conversation(
        &[
            (
                b"CONNECT db.test:443 HTTP/1.1\r\nHost: db.test:443\r\n\r\n",
                b"HTTP/1.1 200 Connection Established\r\n\r\n",
            ),
            (b"\x16\x03\x01 GET /not-http HTTP/1.1\r\n\r\n", b"\x16\x03\x03 HTTP/1.1 200 OK\r\n\r\n"),
        ],
        1460,
    ));
    assert_eq!(ex.len(), 1);
    assert!(ex[0].flags.upgraded);
    assert_eq!(ex[0].request.method, "CONNECT");
    assert!(stats.tunnel_bytes > 0);

    let (ex, _) = run(&conversation(
        &[
            (
                b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
            ),
            (b"\x81\x85abcdGET / HTTP/1.1\r\n\r\n", b"\x81\x02hi"),
        ],
        1460,
    ));
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].response.as_ref().map(|r| r.status), Some(101));
}

#[test]
fn refused_connect_goes_back_to_http() {
    let (ex, _) = run(&conversation(
        &[
            (b"CONNECT x:443 HTTP/1.1\r\n\r\n", b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 0\r\n\r\n"),
            (b"GET /after HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ],
        1460,
    ));
    let t: Vec<_> = ex.iter().map(|e| e.request.target.as_str()).collect();
    assert_eq!(t, vec!["x:443", "/after"]);
}

#[test]
fn close_delimited_and_http09() {
    let (ex, _) = run(&conversation(&[(b"GET /old HTTP/1.0\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\nuntil the end")], 1460));
    assert_eq!(body(&ex[0]), b"until the end");
    let (ex, _) = run(&conversation(&[(b"GET /zeek.html\r\n", b"<html>raw</html>")], 1460));
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].request.version, Version::Http09);
    let r = ex[0].response.as_ref().expect("response");
    assert_eq!((r.status, r.body.data.as_slice()), (0, &b"<html>raw</html>"[..]));
}

#[test]
fn midstream_pickup_without_syn_and_reversed_first_packet() {
    let mut c = Conv::new(40001);
    // The capture starts in the middle of a response body, then a clean exchange follows.
    let mut f = vec![c.send(false, b"tail of an earlier body\r\n")];
    f.push(c.send(true, b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"));
    f.push(c.send(false, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    let (ex, _) = run(&f);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].request.target, "/next");
    assert_eq!(body(&ex[0]), b"ok");
    assert_eq!(ex[0].conn.server.port(), 80);
}

#[test]
fn reordered_and_retransmitted_segments() {
    let mut c = Conv::new(40002);
    let mut f = c.handshake();
    f.push(c.send(true, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
    let head = resp.len() - 10;
    f.push(c.send_at(false, head as u32 + 5, &resp[head + 5..]));
    f.push(c.send_at(false, 0, &resp[..head + 5]));
    f.push(c.send_at(false, 0, &resp[..head + 5]));
    c.advance(false, resp.len() as u32);
    f.extend(c.close());
    let (ex, stats) = run(&f);
    assert_eq!(body(&ex[0]), b"0123456789");
    assert!(stats.retransmitted_bytes > 0);
    assert_eq!(stats.gaps, 0);
}

#[test]
fn lost_segment_marks_exchange_and_next_exchange_survives() {
    let mut c = Conv::new(40003);
    let mut f = c.handshake();
    f.push(c.send(true, b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"));
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n01234567890123456789";
    let head = resp.len() - 20;
    f.push(c.send_at(false, 0, &resp[..head + 5]));
    // bytes head+5..head+10 are never captured
    f.push(c.send_at(false, head as u32 + 10, &resp[head + 10..]));
    c.advance(false, resp.len() as u32);
    f.push(c.ack(true));
    f.push(c.send(true, b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n"));
    f.push(c.send(false, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    f.extend(c.close());
    let (ex, stats) = run(&f);
    assert_eq!(ex.len(), 2);
    assert!(ex[0].flags.gap && ex[0].flags.truncated);
    assert_eq!(ex[0].response.as_ref().map(|r| r.body.wire_len), Some(20));
    assert_eq!(body(&ex[1]), b"ok");
    assert!(!ex[1].flags.gap);
    assert_eq!(stats.gap_bytes, 5);
}

#[test]
fn smuggling_ambiguities_are_flagged_and_hidden_requests_seen() {
    // CL + TE: chunked wins.
    let (ex, _) = run(&conversation(
        &[(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")],
        1460,
    ));
    let t: Vec<_> = ex.iter().map(|e| e.request.target.as_str()).collect();
    assert_eq!(t, vec!["/", "/smuggled"]);
    assert!(ex[0].flags.anomalies.contains(&Anomaly::ContentLengthAndChunked));
    // Conflicting Content-Length: unrecoverable, request reported, next one found.
    let (ex, _) = run(&conversation(
        &[(
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello\r\nGET /hidden HTTP/1.1\r\n\r\n",
            b"",
        )],
        1460,
    ));
    assert!(ex[0].flags.anomalies.contains(&Anomaly::BadContentLength));
    assert!(ex.iter().any(|e| e.request.target == "/hidden"));
    // Bad chunk size (2^64).
    let (ex, _) = run(&conversation(
        &[(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nGET /x HTTP/1.1\r\n\r\n", b"")],
        1460,
    ));
    assert!(ex[0].flags.anomalies.contains(&Anomaly::BadChunkSize));
    assert_eq!(ex.len(), 2);
    // Obsolete line folding.
    let (ex, _) = run(&conversation(
        &[(b"GET / HTTP/1.1\r\nX-A: a\r\n  b\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")],
        1460,
    ));
    assert!(ex[0].flags.anomalies.contains(&Anomaly::ObsoleteLineFolding));
    assert_eq!(ex[0].request.headers.get(0).map(|h| h.value), Some("a b"));
}

#[test]
fn sse_response_is_split_into_events() {
    let resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n2f\r\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1}\n\n\r\n0\r\n\r\n";
    let (ex, _) = run(&conversation(&[(b"POST /mcp HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", resp)], 1460));
    let ev = ex[0].response.as_ref().and_then(|r| r.body.sse.clone()).unwrap_or_default();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].data, "{\"jsonrpc\":\"2.0\",\"id\":1}");
    // The media type in any case, after spaces, with parameters; anything else is not split.
    for (content_type, split) in [
        ("  Text/Event-Stream; charset=utf-8", true),
        ("TEXT/EVENT-STREAM", true),
        ("text/event", false),
        ("application/json", false),
    ] {
        let resp =
            format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: 10\r\n\r\ndata: {{}}\n\n");
        let (ex, _) = run(&conversation(&[(b"GET /sse HTTP/1.1\r\n\r\n", resp.as_bytes())], 1460));
        let r = ex[0].response.as_ref().expect("response");
        assert!(!r.body.truncated);
        assert_eq!(r.body.sse.as_ref().map(|e| e.len()), split.then_some(1), "{content_type}");
    }
}

#[test]
fn pending_request_reported_and_rst_closes() {
    let mut c = Conv::new(40004);
    let mut f = c.handshake();
    f.push(c.send(true, b"GET /never HTTP/1.1\r\nHost: h\r\n\r\n"));
    f.push(c.rst(false));
    let (ex, stats) = run(&f);
    assert_eq!(ex.len(), 1);
    assert!(ex[0].flags.pending && ex[0].response.is_none());
    assert_eq!((stats.flows_closed, stats.exchanges_pending), (1, 1));
}

#[test]
fn body_cap_truncates_and_counts() {
    let mut cfg = crate::Config::default();
    cfg.http.max_body_bytes = 4;
    let (ex, stats) = run_with(
        cfg,
        &conversation(&[(b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")], 1460),
    );
    let r = ex[0].response.as_ref().expect("response");
    assert_eq!((r.body.data.as_slice(), r.body.wire_len, r.body.truncated), (&b"0123"[..], 10, true));
    assert_eq!(stats.body_bytes_over_cap, 6);
    assert!(ex[0].flags.truncated);
}

#[test]
fn flow_cap_evicts_and_idle_flows_expire() {
    let mut cfg = crate::Config::default();
    cfg.tcp.max_flows = 4;
    cfg.tcp.idle_timeout_secs = 10;
    let mut frames = Vec::new();
    for i in 0..10u16 {
        let mut c = Conv::new(41000 + i);
        c.ts += u64::from(i) * 1000;
        frames.extend(c.handshake());
        frames.push(c.send(true, b"GET / HTTP/1.1\r\n\r\n"));
    }
    let (ex, stats) = run_with(cfg.clone(), &frames);
    assert_eq!(ex.len(), 10, "evicted flows still report their requests");
    assert!(stats.flows_evicted_cap >= 6);
    assert_eq!(stats.flows_now, 0);

    let mut c = Conv::new(42000);
    let mut f = c.handshake();
    f.push(c.send(true, b"GET /idle HTTP/1.1\r\n\r\n"));
    let mut later = Conv::new(42001);
    later.ts = c.ts + 60_000_000;
    f.extend(later.handshake());
    let mut e = Engine::new(cfg);
    let mut out = Vec::new();
    for fr in &f {
        e.on_frame(fr.ts, LinkType::Ethernet, &fr.bytes, &mut out);
    }
    assert_eq!(out.len(), 1, "idle flow flushed by capture time alone");
    assert_eq!(e.stats().flows_idle_expired, 1);
}

#[test]
fn port_reuse_after_close_is_a_new_connection() {
    let mut c = Conv::new(43000);
    let mut f = c.handshake();
    f.push(c.send(true, b"GET /one HTTP/1.1\r\n\r\n"));
    f.push(c.send(false, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    f.extend(c.close());
    c.cseq = 90_000;
    c.sseq = 70_000;
    f.extend(c.handshake());
    f.push(c.send(true, b"GET /two HTTP/1.1\r\n\r\n"));
    f.push(c.send(false, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    let (ex, _) = run(&f);
    let t: Vec<_> = ex.iter().map(|e| (e.request.target.as_str(), e.depth)).collect();
    assert_eq!(t, vec![("/one", 1), ("/two", 1)]);
}

#[test]
fn garbage_and_non_http_flows_do_not_panic_or_emit() {
    let (ex, stats) = run(&conversation(&[(b"\x16\x03\x01\x00\xa5\x01\x00\x00", b"\x16\x03\x03\x00\x5a\x02")], 1460));
    assert!(ex.is_empty());
    assert_eq!(stats.flows_created, 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Oracle: segmentation never changes what is reconstructed.
    #[test]
    fn segmentation_does_not_change_exchanges(mss in 1usize..200) {
        let gz = gzip(b"compressed body");
        let mut resp2 = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ".to_vec();
        resp2.extend(format!("{}\r\n\r\n", gz.len()).as_bytes());
        resp2.extend(&gz);
        let turns: [(&[u8], &[u8]); 3] = [
            (b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"),
            (b"GET /b HTTP/1.1\r\n\r\n", &resp2),
            (b"GET /c HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\nclose-delimited"),
        ];
        let (reference, _) = run(&conversation(&turns, 100_000));
        let (got, _) = run(&conversation(&turns, mss));
        prop_assert_eq!(reference.len(), 3);
        let strip = |v: Vec<HttpExchange>| v.into_iter().map(|mut e| {
            e.request.ts = Timestamp(0);
            if let Some(r) = e.response.as_mut() { r.ts = Timestamp(0); }
            e
        }).collect::<Vec<_>>();
        prop_assert_eq!(strip(reference), strip(got));
    }

    /// No input makes the engine panic, on any link type.
    #[test]
    fn arbitrary_frames_never_panic(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..30), link in 0usize..7) {
        let links = [LinkType::Ethernet, LinkType::Raw, LinkType::Null, LinkType::Loop, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::Nflog];
        let mut e = Engine::new(crate::Config::default());
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            e.on_frame(Timestamp(i as u64), links[link], f, &mut out);
        }
        e.flush_all(&mut out);
    }

    /// Arbitrary TCP payloads on a real connection never panic and respect the caps.
    #[test]
    fn arbitrary_streams_never_panic(client in proptest::collection::vec(any::<u8>(), 0..2000), server in proptest::collection::vec(any::<u8>(), 0..2000), mss in 1usize..300) {
        let mut c = Conv::new(44000);
        let mut f = c.handshake();
        let mut req = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        req.extend(&client);
        let mut resp = b"HTTP/1.1 200 OK\r\n".to_vec();
        resp.extend(&server);
        f.extend(c.send_segments(true, &req, mss));
        f.extend(c.send_segments(false, &resp, mss));
        let (_, stats) = run(&f);
        prop_assert_eq!(stats.buffered_bytes_now, 0);
        prop_assert_eq!(stats.body_bytes_held_now, 0);
    }
}

#[test]
fn engine_wide_body_budget_truncates_counts_and_is_released() {
    let mut cfg = crate::Config::default();
    cfg.http.max_total_body_bytes = 100;
    let mut frames = Vec::new();
    // Two connections each start a 80-byte upload; only 100 bytes fit at once.
    let mut a = Conv::new(45000);
    let mut b = Conv::new(45001);
    frames.extend(a.handshake());
    frames.extend(b.handshake());
    frames.push(a.send(true, &[b"POST /a HTTP/1.1\r\nContent-Length: 80\r\n\r\n".as_slice(), &[b'a'; 80]].concat()));
    frames.push(b.send(true, &[b"POST /b HTTP/1.1\r\nContent-Length: 80\r\n\r\n".as_slice(), &[b'b'; 80]].concat()));
    let mut e = Engine::new(cfg);
    let mut out = Vec::new();
    for f in &frames {
        e.on_frame(f.ts, LinkType::Ethernet, &f.bytes, &mut out);
    }
    assert_eq!(e.stats().body_bytes_held_now, 100);
    assert_eq!(e.stats().body_bytes_over_budget, 60);
    // Once both are answered, the budget is free again and new bodies are kept whole.
    let mut tail = vec![
        a.send(false, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        b.send(false, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ];
    tail.push(a.send(true, &[b"POST /c HTTP/1.1\r\nContent-Length: 90\r\n\r\n".as_slice(), &[b'c'; 90]].concat()));
    for f in &tail {
        e.on_frame(f.ts, LinkType::Ethernet, &f.bytes, &mut out);
    }
    e.flush_all(&mut out);
    let bodies: Vec<_> =
        out.iter().map(|x| (x.request.target.clone(), x.request.body.data.len(), x.flags.truncated)).collect();
    assert_eq!(bodies, vec![("/a".into(), 80, false), ("/b".into(), 20, true), ("/c".into(), 90, false)]);
    assert_eq!(e.stats().body_bytes_held_now, 0);
}

#[test]
fn upgrade_during_request_body_releases_the_budget() {
    let mut c = Conv::new(46000);
    let mut f = c.handshake();
    f.push(c.send(true, b"POST /ws HTTP/1.1\r\nContent-Length: 100\r\nUpgrade: x\r\n\r\nonly part"));
    f.push(c.send(false, b"HTTP/1.1 101 Switching Protocols\r\n\r\n"));
    f.extend(c.close());
    let (ex, stats) = run(&f);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].request.body.data, b"only part");
    assert!(ex[0].flags.anomalies.contains(&Anomaly::IncompleteBody));
    assert_eq!(stats.body_bytes_held_now, 0);
}
