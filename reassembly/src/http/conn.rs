//! One HTTP/1.x connection: the client's stream is parsed into requests, the server's into
//! responses, and responses are paired with requests in order (RFC 9112 §9.3.2: responses come
//! in the order of the requests, which makes pipelining pairable).
//!
//! Each direction is a small state machine:
//!
//! ```text
//!  Seek ──start line found──▶ Head ──blank line──▶ Body ──framing complete──▶ Head …
//!   ▲                          │  ▲                  │
//!   └──── gap / bad framing ───┘  └── 1xx interim ───┘   101 / CONNECT 2xx ──▶ Tunnel
//! ```
//!
//! `Seek` is where a stream starts when it was picked up mid-way, and where it goes after a gap
//! or broken framing: it discards bytes until a line that starts a message. That is also how
//! the requests smuggled behind ambiguous framing become visible as exchanges of their own.

use super::body::{BodyAcc, BodyReader, Framing, Step};
use super::content;
use super::framing::{request_framing, response_framing};
use super::head::{self, RequestHead, ResponseHead};
use super::onepass;
use super::sse;
use crate::config::HttpConfig;
use crate::exchange::{Anomaly, Body, ConnInfo, Flags, Headers, HttpExchange, Request, Response, Version};
use crate::stats::Stats;
use crate::Timestamp;
use std::collections::VecDeque;

/// Direction of a stream within the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Client to server: requests.
    Request,
    /// Server to client: responses.
    Response,
}

/// What the connection needs from the engine for each call.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a HttpConfig,
    pub stats: &'a mut Stats,
    pub out: &'a mut Vec<HttpExchange>,
}

#[derive(Debug)]
enum State {
    Seek,
    Head,
    Body(BodyReader),
    /// After a CONNECT request: hold the client's bytes until the response says tunnel or not.
    AwaitConnect,
    Tunnel,
}

/// A message whose body is being read.
#[derive(Debug)]
struct Msg {
    acc: BodyAcc,
    trailers: Headers,
    gap: bool,
    /// Body bytes of this message counted in the engine-wide budget.
    held: usize,
    /// Depth of the exchange it belongs to; `None` for a response without a request.
    depth: Option<u32>,
    /// The response head, while its body is read (responses only).
    response: Option<Response>,
}

#[derive(Debug)]
struct Side {
    state: State,
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for the end of the head.
    scanned: usize,
    head_ts: Timestamp,
    msg: Option<Msg>,
}

#[derive(Debug)]
struct Slot {
    ex: HttpExchange,
    req_done: bool,
    resp_done: bool,
    /// The client sent something that is not a request: reported only if a response answers it.
    junk: bool,
    /// Body bytes of this exchange counted in the engine-wide budget, released when emitted.
    held: usize,
}

/// HTTP state of one TCP connection.
#[derive(Debug)]
pub(crate) struct HttpConn {
    conn: ConnInfo,
    req: Side,
    resp: Side,
    queue: VecDeque<Slot>,
    next_depth: u32,
    /// Depth of the request the next final response answers.
    resp_depth: u32,
    /// A CONNECT tunnel was established: the client's first bytes decide whether it carries
    /// HTTP (parsed on) or anything else (tunnel, not parsed).
    probe_tunnel: bool,
}

impl HttpConn {
    /// A connection; `*_synced` says whether each stream starts at a message boundary.
    pub(crate) fn new(conn: ConnInfo, req_synced: bool, resp_synced: bool) -> Self {
        let side = |synced| Side {
            state: if synced { State::Head } else { State::Seek },
            buf: Vec::new(),
            scanned: 0,
            head_ts: Timestamp::default(),
            msg: None,
        };
        HttpConn {
            conn,
            req: side(req_synced),
            resp: side(resp_synced),
            queue: VecDeque::new(),
            next_depth: 1,
            resp_depth: 1,
            probe_tunnel: false,
        }
    }

    /// In-order bytes of one direction.
    pub(crate) fn data(&mut self, dir: Dir, now: Timestamp, mut input: &[u8], cx: &mut Ctx<'_>) {
        // Fast path: body bytes go straight from the segment into the body, without a copy
        // into the head buffer.
        loop {
            let side = self.side(dir);
            if !side.buf.is_empty() {
                break;
            }
            match &mut side.state {
                State::Tunnel => {
                    cx.stats.tunnel_bytes += input.len() as u64;
                    return;
                }
                State::Body(_) => {
                    let used = self.feed_body(dir, input, cx);
                    input = &input[used..];
                    if input.is_empty() {
                        return;
                    }
                }
                _ => break,
            }
        }
        let side = self.side(dir);
        if side.buf.is_empty() {
            // Parse straight from the segment; only an incomplete head is copied.
            side.head_ts = now;
            let used = self.process(dir, now, input, cx);
            self.keep(dir, &input[used..], cx);
        } else {
            let mut buf = std::mem::take(&mut side.buf);
            buf.extend_from_slice(input);
            let used = self.process(dir, now, &buf, cx);
            buf.drain(..used);
            let side = self.side(dir);
            if side.buf.is_empty() {
                side.buf = buf;
            } else {
                // A tunnel or a state change cleared the buffer meanwhile: keep the order.
                buf.extend_from_slice(&side.buf);
                side.buf = buf;
            }
            self.cap_buf(dir, cx);
        }
    }

    /// Stores unparsed bytes for the next segment.
    fn keep(&mut self, dir: Dir, rest: &[u8], cx: &mut Ctx<'_>) {
        if !rest.is_empty() {
            self.side(dir).buf.extend_from_slice(rest);
            self.cap_buf(dir, cx);
        }
    }

    /// Holding bytes for a CONNECT answer is bounded by the head cap; beyond it the bytes are
    /// taken for tunnel data.
    fn cap_buf(&mut self, dir: Dir, cx: &mut Ctx<'_>) {
        let side = self.side(dir);
        if matches!(side.state, State::AwaitConnect) && side.buf.len() > cx.cfg.max_head_bytes {
            cx.stats.tunnel_bytes += side.buf.len() as u64;
            side.buf.clear();
            side.state = State::Tunnel;
        }
    }

    fn side(&mut self, dir: Dir) -> &mut Side {
        match dir {
            Dir::Request => &mut self.req,
            Dir::Response => &mut self.resp,
        }
    }

    /// Feeds body bytes to the message being read; returns how many were used.
    fn feed_body(&mut self, dir: Dir, input: &[u8], cx: &mut Ctx<'_>) -> usize {
        let side = self.side(dir);
        let (State::Body(reader), Some(msg)) = (&mut side.state, side.msg.as_mut()) else {
            side.state = State::Head;
            return 0;
        };
        let before = msg.acc.data.len();
        let (used, step) = reader.feed(input, &mut msg.acc, &mut msg.trailers);
        cx.stats.body_bytes_over_cap += std::mem::take(&mut reader.over_cap);
        // The engine-wide budget for body bytes held by unfinished exchanges: what does not
        // fit is counted and not kept, like the per-message cap.
        let grown = msg.acc.data.len() - before;
        if grown > 0 {
            let room = cx.cfg.max_total_body_bytes.saturating_sub(cx.stats.body_bytes_held_now as usize);
            let keep = grown.min(room);
            if keep < grown {
                msg.acc.data.truncate(before + keep);
                msg.acc.missing += (grown - keep) as u64;
                cx.stats.body_bytes_over_budget += (grown - keep) as u64;
            }
            msg.held += keep;
            cx.stats.body_bytes_held_now += keep as u64;
        }
        match step {
            Step::NeedMore => {}
            Step::Done => self.finish_msg(dir, None, cx),
            Step::Error(a) => {
                self.finish_msg(dir, Some(a), cx);
                self.side(dir).state = State::Seek;
            }
        }
        used
    }

    /// Parses `buf` message after message with a cursor (no recursion, no copy per message,
    /// however many pipelined messages one segment holds). Returns the bytes consumed; the rest
    /// is an incomplete head (or held CONNECT data).
    fn process(&mut self, dir: Dir, now: Timestamp, buf: &[u8], cx: &mut Ctx<'_>) -> usize {
        let mut pos = 0;
        while pos < buf.len() {
            let rest = &buf[pos..];
            let side = self.side(dir);
            match side.state {
                State::AwaitConnect => break,
                State::Tunnel => {
                    cx.stats.tunnel_bytes += rest.len() as u64;
                    pos = buf.len();
                }
                State::Body(_) => pos += self.feed_body(dir, rest, cx),
                State::Seek => {
                    let found = match dir {
                        Dir::Request => head::find_resync(rest, |l| head::looks_like_request(l, true)),
                        Dir::Response => head::find_resync(rest, head::looks_like_response),
                    };
                    let skip = match found {
                        Ok(at) => {
                            side.state = State::Head;
                            side.head_ts = now;
                            at
                        }
                        Err(keep_from) => keep_from,
                    };
                    cx.stats.resync_skipped_bytes += skip as u64;
                    pos += skip;
                    if matches!(self.side(dir).state, State::Seek) {
                        break;
                    }
                }
                State::Head => {
                    // RFC 9112 §2.2: empty lines before a start line are ignored.
                    let lead = rest.iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
                    if lead > 0 {
                        pos += lead;
                        side.scanned = 0;
                        continue;
                    }
                    match self.try_head(dir, rest, cx) {
                        Some(used) => {
                            pos += used;
                            self.side(dir).head_ts = now;
                        }
                        None => break,
                    }
                }
            }
        }
        if pos > 0 {
            self.side(dir).scanned = 0;
        }
        pos
    }

    /// Tries to complete a head at the start of `rest`. `Some(bytes used)` when the state
    /// moved on, `None` when more bytes are needed.
    fn try_head(&mut self, dir: Dir, rest: &[u8], cx: &mut Ctx<'_>) -> Option<usize> {
        if dir == Dir::Request && self.probe_tunnel {
            // Plain HTTP through the tunnel is parsed on; anything else (TLS, SMTP) is not.
            match head::looks_like_request(rest, true)? {
                true => {
                    // Held server bytes are parsed with the server's next segment or at its end.
                    self.probe_tunnel = false;
                    self.resp.state = State::Head;
                }
                false => {
                    self.probe_tunnel = false;
                    for side in [&mut self.req, &mut self.resp] {
                        side.state = State::Tunnel;
                        cx.stats.tunnel_bytes += side.buf.len() as u64;
                        side.buf.clear();
                    }
                    return Some(0);
                }
            }
        }
        let start = match dir {
            Dir::Request => head::looks_like_request(rest, false),
            Dir::Response => {
                // A response to an HTTP/0.9 request has no status line, whatever it starts with.
                let depth = self.resp_depth;
                if self.slot(depth).is_some_and(|s| s.ex.request.version == Version::Http09) {
                    Some(false)
                } else {
                    head::looks_like_response(rest)
                }
            }
        };
        match (start?, dir) {
            (false, Dir::Request) => return self.junk_request(rest, false, cx),
            (false, Dir::Response) => {
                self.headless_response(cx);
                return Some(0);
            }
            (true, _) => {}
        }
        let side = self.side(dir);
        // A head looked at for the first time: a plain one is parsed in one pass (and a head
        // still arriving is left to the general path, which resumes its search where it left).
        if side.scanned == 0 {
            let (ts, max) = (side.head_ts, cx.cfg.max_headers);
            let end = match dir {
                Dir::Request => onepass::request(rest, max).map(|(h, end)| {
                    self.on_request_head(h, ts, cx);
                    end
                }),
                Dir::Response => onepass::response(rest, max).map(|(h, end)| {
                    self.on_response_head(h, ts, cx);
                    end
                }),
            };
            if let Some(end) = end {
                if end > cx.cfg.max_head_bytes {
                    cx.stats.head_too_large += 1;
                }
                return Some(end);
            }
        }
        let side = self.side(dir);
        let from = side.scanned.saturating_sub(3).min(rest.len());
        let mut found = head::find_end_with_endings(rest, from);
        if found.is_none() && dir == Dir::Request {
            found = head::http09_request_line(rest).map(|end| (end, None));
        }
        let Some((end, endings)) = found else {
            side.scanned = rest.len();
            if rest.len() > cx.cfg.max_head_bytes {
                cx.stats.head_too_large += 1;
                side.scanned = 0;
                return match dir {
                    Dir::Request => self.junk_request(rest, true, cx),
                    Dir::Response => {
                        side.state = State::Seek;
                        Some(rest.len())
                    }
                };
            }
            return None;
        };
        side.scanned = 0;
        let ts = side.head_ts;
        if end > cx.cfg.max_head_bytes {
            cx.stats.head_too_large += 1;
        }
        let raw = &rest[..end];
        match dir {
            Dir::Request => match head::parse_request(raw, cx.cfg.max_headers, endings) {
                Some(h) => self.on_request_head(h, ts, cx),
                None => return self.junk_request(rest, true, cx),
            },
            Dir::Response => match head::parse_response(raw, cx.cfg.max_headers, endings) {
                Some(h) => self.on_response_head(h, ts, cx),
                None => {
                    cx.stats.malformed_heads += 1;
                    self.resp.state = State::Seek;
                }
            },
        }
        Some(end)
    }

    /// The client sent something that is not a request where a request should start. It is
    /// kept as a request without method or target, reported only when the server answers it
    /// (as Zeek does for malformed request lines); `force` takes what there is without waiting
    /// for the end of the head.
    fn junk_request(&mut self, rest: &[u8], force: bool, cx: &mut Ctx<'_>) -> Option<usize> {
        let end = match head::find_end(rest, 0) {
            Some(e) => e,
            None if force || rest.len() > cx.cfg.max_head_bytes => rest.len(),
            None => {
                self.req.scanned = rest.len();
                return None;
            }
        };
        cx.stats.malformed_heads += 1;
        let ts = self.req.head_ts;
        self.push_junk(ts, cx);
        Some(end)
    }

    fn push_junk(&mut self, ts: Timestamp, cx: &mut Ctx<'_>) {
        let mut flags = Flags::default();
        flags.add(Anomaly::MalformedHead);
        self.push_slot(
            Request {
                ts,
                method: String::new(),
                target: String::new(),
                version: Version::Http11,
                headers: Headers::new(),
                body: Body::default(),
            },
            flags,
            true,
            cx,
        );
        self.req.state = State::Head;
    }

    /// Appends a completed request to the queue (evicting the oldest when full).
    fn push_slot(&mut self, request: Request, flags: Flags, junk: bool, cx: &mut Ctx<'_>) -> u32 {
        self.make_room(cx);
        let depth = self.next_depth;
        self.next_depth += 1;
        self.queue.push_back(Slot {
            ex: HttpExchange { conn: self.conn, depth, request, response: None, flags },
            req_done: true,
            resp_done: false,
            junk,
            held: 0,
        });
        depth
    }

    fn make_room(&mut self, cx: &mut Ctx<'_>) {
        if self.queue.len() >= cx.cfg.max_pending_requests {
            cx.stats.drop_pending_requests += 1;
            if let Some(slot) = self.queue.pop_front() {
                if self.resp_depth <= slot.ex.depth {
                    self.resp_depth = slot.ex.depth + 1;
                }
                emit(slot, cx);
            }
        }
    }

    /// A response arrived with no request to answer: the client's unparsed bytes (a request line
    /// cut short, junk) become its request; with none, it is reported as a response without a
    /// request (seen when the capture misses the client side).
    fn adopt_request_for_response(&mut self, ts: Timestamp, cx: &mut Ctx<'_>) {
        if self.slot(self.resp_depth).is_some() {
            return;
        }
        let pending = std::mem::take(&mut self.req.buf);
        self.req.scanned = 0;
        if !pending.is_empty() && matches!(self.req.state, State::Head | State::Seek) {
            let line_end = pending.iter().position(|b| matches!(b, b'\r' | b'\n')).unwrap_or(pending.len());
            let mut line = pending[..line_end].to_vec();
            line.extend_from_slice(b"\r\n");
            match head::parse_request(&line, cx.cfg.max_headers, None).filter(|h| !h.target.is_empty()) {
                Some(h) => {
                    let mut flags = Flags::default();
                    for a in &h.anomalies {
                        flags.add(*a);
                    }
                    let ts = self.req.head_ts;
                    self.push_slot(
                        Request {
                            ts,
                            method: h.method,
                            target: h.target,
                            version: h.version,
                            headers: h.headers,
                            body: Body::default(),
                        },
                        flags,
                        false,
                        cx,
                    );
                }
                None => {
                    cx.stats.malformed_heads += 1;
                    self.push_junk(self.req.head_ts, cx);
                }
            }
            self.req.state = State::Head;
            return;
        }
        if !pending.is_empty() {
            self.req.buf = pending;
        }
        let mut flags = Flags::default();
        flags.add(Anomaly::ResponseWithoutRequest);
        cx.stats.orphan_responses += 1;
        let depth = self.push_slot(
            Request {
                ts,
                method: String::new(),
                target: String::new(),
                version: Version::Http11,
                headers: Headers::new(),
                body: Body::default(),
            },
            flags,
            false,
            cx,
        );
        // Requests are numbered by arrival; a response-only exchange takes the next number.
        let _ = depth;
    }

    fn slot(&mut self, depth: u32) -> Option<&mut Slot> {
        let front = self.queue.front()?.ex.depth;
        let idx = depth.checked_sub(front)? as usize;
        self.queue.get_mut(idx)
    }

    fn on_request_head(&mut self, h: RequestHead, ts: Timestamp, cx: &mut Ctx<'_>) {
        self.make_room(cx);
        let mut flags = Flags::default();
        for a in &h.anomalies {
            flags.add(*a);
        }
        if h.version == Version::Http09 {
            flags.add(Anomaly::Http09);
        }
        let framing = request_framing(&h.headers, &mut flags);
        let connect = h.method.eq_ignore_ascii_case("CONNECT");
        let depth = self.next_depth;
        self.next_depth += 1;
        self.queue.push_back(Slot {
            ex: HttpExchange {
                conn: self.conn,
                depth,
                request: Request {
                    ts,
                    method: h.method,
                    target: h.target,
                    version: h.version,
                    headers: h.headers,
                    body: Body::default(),
                },
                response: None,
                flags,
            },
            req_done: false,
            resp_done: false,
            junk: false,
            held: 0,
        });
        let msg = Msg {
            acc: BodyAcc::new(cx.cfg.max_body_bytes),
            trailers: Headers::new(),
            gap: false,
            held: 0,
            depth: Some(depth),
            response: None,
        };
        self.req.msg = Some(msg);
        if let (Ok(Framing::Length(n)), Some(m)) = (framing, self.req.msg.as_mut()) {
            m.acc.expect(n);
        }
        match framing {
            Ok(f) => {
                let reader = BodyReader::new(f);
                if reader.is_done() {
                    self.finish_msg(Dir::Request, None, cx);
                    if connect {
                        self.req.state = State::AwaitConnect;
                    }
                } else {
                    self.req.state = State::Body(reader);
                }
            }
            Err(a) => {
                // Unrecoverable length (RFC 9112 §6.3 ¶4–5): the server would reject it; we
                // report the request and look for the next one.
                self.finish_msg(Dir::Request, Some(a), cx);
                self.req.state = State::Seek;
            }
        }
    }

    fn on_response_head(&mut self, h: ResponseHead, ts: Timestamp, cx: &mut Ctx<'_>) {
        if !(100..200).contains(&h.status) || h.status == 101 {
            self.adopt_request_for_response(ts, cx);
        }
        let depth = self.resp_depth;
        let (method_head, method_connect) = match self.slot(depth) {
            Some(s) => {
                let m = &s.ex.request.method;
                (m.eq_ignore_ascii_case("HEAD"), m.eq_ignore_ascii_case("CONNECT"))
            }
            None => (false, false),
        };
        let has_slot = self.slot(depth).is_some();
        // Interim responses (RFC 9110 §15.2) precede the final one; 101 is final for us.
        if (100..200).contains(&h.status) && h.status != 101 {
            if let Some(s) = self.slot(depth) {
                s.ex.response.get_or_insert_with(|| placeholder(ts)).interim.push(h.status);
            }
            self.resp.state = State::Head;
            return;
        }
        let interim = self.slot(depth).and_then(|s| s.ex.response.take()).map(|r| r.interim).unwrap_or_default();
        let mut anomalies = h.anomalies;
        let tunnel = h.status == 101 || (method_connect && (200..300).contains(&h.status));
        let framing =
            if tunnel { Framing::Empty } else { response_framing(method_head, h.status, &h.headers, &mut anomalies) };
        let response = Response {
            ts,
            version: h.version,
            status: h.status,
            reason: h.reason,
            headers: h.headers,
            body: Body::default(),
            interim,
        };
        if has_slot {
            self.resp_depth += 1;
        }
        let mut msg = Msg {
            acc: BodyAcc::new(cx.cfg.max_body_bytes),
            trailers: Headers::new(),
            gap: false,
            held: 0,
            depth: has_slot.then_some(depth),
            response: Some(response),
        };
        if let Some(s) = self.slot(depth).filter(|_| has_slot) {
            for a in anomalies {
                s.ex.flags.add(a);
            }
            if tunnel {
                s.ex.flags.upgraded = true;
            }
        }
        if let Framing::Length(n) = framing {
            msg.acc.expect(n);
        }
        self.resp.msg = Some(msg);
        let reader = BodyReader::new(framing);
        if reader.is_done() {
            self.finish_msg(Dir::Response, None, cx);
        } else {
            self.resp.state = State::Body(reader);
        }
        if tunnel && method_connect {
            // What the client sends first decides (see `probe_tunnel`); the server's bytes wait.
            self.probe_tunnel = true;
            self.req.state = State::Head;
            self.resp.state = State::AwaitConnect;
            let held = std::mem::take(&mut self.req.buf);
            if !held.is_empty() {
                let ts = self.req.head_ts;
                let used = self.process(Dir::Request, ts, &held, cx);
                self.keep(Dir::Request, &held[used..], cx);
            }
        } else if tunnel {
            for side in [&mut self.req, &mut self.resp] {
                side.state = State::Tunnel;
                cx.stats.tunnel_bytes += side.buf.len() as u64;
                side.buf.clear();
            }
        } else if method_connect && matches!(self.req.state, State::AwaitConnect) {
            // The proxy refused the tunnel: what the client sent meanwhile is HTTP again.
            self.req.state = State::Head;
        }
    }

    /// The server sent bytes that are not a status line: an HTTP/0.9-style response that runs
    /// until the connection closes, when there is a request to answer.
    fn headless_response(&mut self, cx: &mut Ctx<'_>) {
        let ts = self.resp.head_ts;
        // Bytes that are not a status line and answer nothing are not a response.
        if self.slot(self.resp_depth).is_none() && !self.req.buf.is_empty() {
            self.adopt_request_for_response(ts, cx);
        }
        let depth = self.resp_depth;
        let Some(slot) = self.slot(depth) else {
            cx.stats.orphan_responses += 1;
            self.resp.state = State::Seek;
            return;
        };
        if slot.junk {
            // Neither side speaks HTTP here (TLS on port 80, a binary protocol): stop parsing.
            for side in [&mut self.req, &mut self.resp] {
                side.state = State::Tunnel;
                cx.stats.tunnel_bytes += side.buf.len() as u64;
                side.buf.clear();
            }
            return;
        }
        let anomaly =
            if slot.ex.request.version == Version::Http09 { Anomaly::Http09 } else { Anomaly::NonHttpResponse };
        slot.ex.flags.add(anomaly);
        let interim = slot.ex.response.take().map(|r| r.interim).unwrap_or_default();
        self.resp_depth += 1;
        self.resp.msg = Some(Msg {
            acc: BodyAcc::new(cx.cfg.max_body_bytes),
            trailers: Headers::new(),
            gap: false,
            held: 0,
            depth: Some(depth),
            response: Some(Response {
                ts,
                version: Version::Http09,
                status: 0,
                reason: String::new(),
                headers: Headers::new(),
                body: Body::default(),
                interim,
            }),
        });
        self.resp.state = State::Body(BodyReader::new(Framing::Close));
        // The buffered bytes are body: `process` feeds them.
    }

    /// Completes the message being read in `dir`.
    fn finish_msg(&mut self, dir: Dir, anomaly: Option<Anomaly>, cx: &mut Ctx<'_>) {
        let side = self.side(dir);
        side.state = State::Head;
        let Some(msg) = side.msg.take() else { return };
        let Some(depth) = msg.depth else {
            cx.stats.orphan_responses += 1;
            cx.stats.body_bytes_held_now -= msg.held as u64;
            return;
        };
        let cfg = cx.cfg;
        let Some(slot) = self.slot(depth) else {
            cx.stats.body_bytes_held_now -= msg.held as u64;
            return;
        };
        slot.held += msg.held;
        if let Some(a) = anomaly {
            slot.ex.flags.add(a);
        }
        if msg.gap {
            slot.ex.flags.gap = true;
        }
        match dir {
            Dir::Request => {
                let mut headers = std::mem::take(&mut slot.ex.request.headers);
                let body = finish_body(msg.acc, &headers, cfg, &mut slot.ex.flags, cx.stats);
                headers.extend_from(&msg.trailers);
                slot.ex.request.headers = headers;
                slot.ex.request.body = body;
                slot.req_done = true;
            }
            Dir::Response => {
                let Some(mut r) = msg.response else { return };
                r.body = finish_body(msg.acc, &r.headers, cfg, &mut slot.ex.flags, cx.stats);
                r.headers.extend_from(&msg.trailers);
                slot.ex.response = Some(r);
                slot.resp_done = true;
            }
        }
        self.try_emit(cx);
    }

    fn try_emit(&mut self, cx: &mut Ctx<'_>) {
        while self.queue.front().is_some_and(|s| s.req_done && s.resp_done) {
            if let Some(slot) = self.queue.pop_front() {
                emit(slot, cx);
            }
        }
    }

    /// Bytes of one direction were lost.
    pub(crate) fn gap(&mut self, dir: Dir, len: u64, cx: &mut Ctx<'_>) {
        let side = self.side(dir);
        match &mut side.state {
            State::Body(reader) => {
                if let Some(msg) = side.msg.as_mut() {
                    msg.gap = true;
                    if reader.gap(len, &mut msg.acc).is_some() {
                        if reader.is_done() {
                            self.finish_msg(dir, Some(Anomaly::IncompleteBody), cx);
                        }
                        return;
                    }
                }
                self.finish_msg(dir, Some(Anomaly::IncompleteBody), cx);
                self.side(dir).state = State::Seek;
            }
            State::Head | State::Seek => {
                side.buf.clear();
                side.scanned = 0;
                side.state = State::Seek;
            }
            State::AwaitConnect | State::Tunnel => {}
        }
    }

    /// One direction ended (FIN reached).
    pub(crate) fn end(&mut self, dir: Dir, cx: &mut Ctx<'_>) {
        // Bytes still held (a head without its blank line, data held for a CONNECT answer)
        // get a last chance to parse.
        let side = self.side(dir);
        if !side.buf.is_empty() && matches!(side.state, State::Head | State::Seek | State::AwaitConnect) {
            if matches!(side.state, State::AwaitConnect) && !self.probe_tunnel {
                self.side(dir).state = State::Head;
            }
            let held = std::mem::take(&mut self.side(dir).buf);
            let ts = self.side(dir).head_ts;
            let used = self.process(dir, ts, &held, cx);
            self.side(dir).buf = held[used..].to_vec();
        }
        let side = self.side(dir);
        match &mut side.state {
            State::Body(reader) => {
                let complete = reader.end();
                self.finish_msg(dir, (!complete).then_some(Anomaly::IncompleteBody), cx);
            }
            State::Head if dir == Dir::Response && !side.buf.is_empty() => {
                // A response head that never completed, or a short headless response ("ok").
                if head::looks_like_response(&side.buf) != Some(true) {
                    self.headless_response(cx);
                    let rest = std::mem::take(&mut self.resp.buf);
                    if let State::Body(reader) = &mut self.resp.state {
                        if let Some(msg) = self.resp.msg.as_mut() {
                            let _ = reader.feed(&rest, &mut msg.acc, &mut msg.trailers);
                        }
                    }
                    self.finish_msg(dir, None, cx);
                } else {
                    cx.stats.malformed_heads += 1;
                }
            }
            _ => {}
        }
        // A message still open here (a request body cut by a 101 or a tunnel) ends incomplete.
        if self.side(dir).msg.is_some() {
            self.finish_msg(dir, Some(Anomaly::IncompleteBody), cx);
        }
        let side = self.side(dir);
        side.buf.clear();
        side.state = State::Tunnel;
    }

    /// The connection is gone: completes what can be completed and emits everything.
    pub(crate) fn finish(&mut self, cx: &mut Ctx<'_>) {
        for dir in [Dir::Request, Dir::Response] {
            if !matches!(self.side(dir).state, State::Tunnel) || self.side(dir).msg.is_some() {
                self.end(dir, cx);
            }
        }
        while let Some(slot) = self.queue.pop_front() {
            emit(slot, cx);
        }
    }
}

fn placeholder(ts: Timestamp) -> Response {
    Response {
        ts,
        version: Version::Http11,
        status: 0,
        reason: String::new(),
        headers: Headers::new(),
        body: Body::default(),
        interim: Vec::new(),
    }
}

fn emit(mut slot: Slot, cx: &mut Ctx<'_>) {
    cx.stats.body_bytes_held_now -= slot.held as u64;
    let ex = &mut slot.ex;
    if !slot.resp_done {
        // A placeholder holding only interim statuses is not a response.
        ex.response = None;
        if slot.junk {
            return;
        }
    }
    ex.flags.pending = ex.response.is_none();
    let truncated = ex.request.body.truncated || ex.response.as_ref().is_some_and(|r| r.body.truncated);
    ex.flags.truncated |= truncated;
    cx.stats.exchanges += 1;
    cx.stats.exchanges_pending += u64::from(ex.flags.pending);
    cx.stats.exchanges_with_gap += u64::from(ex.flags.gap);
    cx.stats.exchanges_truncated += u64::from(ex.flags.truncated);
    cx.out.push(slot.ex);
}

/// Turns the collected bytes into a [`Body`]: content decoding and SSE splitting.
fn finish_body(acc: BodyAcc, headers: &Headers, cfg: &HttpConfig, flags: &mut Flags, stats: &mut Stats) -> Body {
    let mut truncated = acc.missing > 0;
    let wire_len = acc.wire_len;
    let mut data = acc.data;
    let mut decoded_len = wire_len;
    if cfg.decode_content && !data.is_empty() {
        if let Some(ce) = headers.find("content-encoding").filter(|v| !v.trim().eq_ignore_ascii_case("identity")) {
            let d = content::decode(data, ce, cfg.max_decoded_body_bytes);
            if d.failed {
                flags.add(Anomaly::UndecodableContent);
                stats.decode_errors += 1;
            }
            if d.capped {
                flags.add(Anomaly::DecompressionCapped);
                stats.decode_capped += 1;
                truncated = true;
            }
            truncated |= d.partial;
            for c in &d.codings {
                if !flags.decoded_with.contains(c) {
                    flags.decoded_with.push(*c);
                }
            }
            if !d.codings.is_empty() {
                decoded_len = d.data.len() as u64;
            }
            data = d.data;
        }
    }
    const SSE: &[u8] = b"text/event-stream";
    let sse = (cfg.split_sse
        && headers.find("content-type").is_some_and(|ct| {
            ct.trim_start().as_bytes().get(..SSE.len()).is_some_and(|t| t.eq_ignore_ascii_case(SSE))
        }))
    .then(|| sse::parse(&data));
    Body { data, wire_len, decoded_len, truncated, sse }
}
