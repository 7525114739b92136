//! The output of the engine: one [`HttpExchange`] per request.

use crate::Timestamp;
use std::net::SocketAddr;

/// HTTP version of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Version {
    /// HTTP/0.9: request line without version, response without status line.
    Http09,
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

impl Version {
    /// `"0.9"`, `"1.0"`, `"1.1"`.
    pub fn number(self) -> &'static str {
        match self {
            Version::Http09 => "0.9",
            Version::Http10 => "1.0",
            Version::Http11 => "1.1",
        }
    }
    /// `"HTTP/1.1"` etc., the spelling of Akto's `type` field.
    pub fn protocol(self) -> &'static str {
        match self {
            Version::Http09 => "HTTP/0.9",
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// One header field, borrowed from its message's [`Headers`]. Values that are not UTF-8 were
/// converted lossily.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// Field name as sent.
    pub name: &'a str,
    /// Field value, surrounding whitespace removed.
    pub value: &'a str,
}

/// The header fields of one message, in wire order (trailers after the head's fields).
///
/// All names and values live in one text buffer, so a message's fields cost two allocations
/// instead of two per field: per-field `String`s were the engine's largest source of
/// allocations (~24 per exchange). A parsed head is that text whole ([`Headers::from_head`]):
/// one copy of the head instead of two per field, with each field's name and value found by
/// offsets into it.
#[derive(Clone, Default)]
pub struct Headers {
    /// The names and values: pushed back to back, or the head they were parsed from.
    text: String,
    /// Per field: where its name starts and ends and where its value starts and ends in
    /// `text`. Offsets are `u32`: the text of one message's fields is kept under 4 GiB.
    spans: Vec<[u32; 4]>,
}

impl Headers {
    /// No fields.
    pub fn new() -> Self {
        Headers::default()
    }

    /// No fields, with room for `fields` fields of `bytes` bytes of names and values in all.
    pub fn with_capacity(fields: usize, bytes: usize) -> Self {
        Headers { text: String::with_capacity(bytes), spans: Vec::with_capacity(fields) }
    }

    /// The fields at `spans` (name start and end, value start and end) of `head`, which
    /// becomes the text. `None` when a span is outside `head` or not on character boundaries,
    /// or `head` is 4 GiB or more.
    pub fn from_head<I>(head: &str, spans: I) -> Option<Headers>
    where
        I: IntoIterator<Item = [usize; 4]>,
        I::IntoIter: ExactSizeIterator,
    {
        u32::try_from(head.len()).ok()?;
        let spans = spans.into_iter();
        let mut checked = Vec::with_capacity(spans.len());
        for [ns, ne, vs, ve] in spans {
            // In bounds and on boundaries: what `field` relies on.
            head.get(ns..ne)?;
            head.get(vs..ve)?;
            // All at most `head.len()` (checked by `get`), so none of these truncates.
            checked.push([ns as u32, ne as u32, vs as u32, ve as u32]);
        }
        Some(Headers { text: head.to_owned(), spans: checked })
    }

    /// [`Headers::from_head`] with the spans as `u32` offsets already, kept as they are.
    pub(crate) fn from_head_spans(head: &str, spans: Vec<[u32; 4]>) -> Option<Headers> {
        u32::try_from(head.len()).ok()?;
        for &[ns, ne, vs, ve] in &spans {
            // In bounds and on boundaries: what `field` relies on.
            head.get(ns as usize..ne as usize)?;
            head.get(vs as usize..ve as usize)?;
        }
        Some(Headers { text: head.to_owned(), spans })
    }

    /// Appends a field. A field that would take the text to 4 GiB or more is not kept.
    pub fn push(&mut self, name: &str, value: &str) {
        let start = self.text.len();
        let Ok(end) = u32::try_from(start + name.len() + value.len()) else {
            return;
        };
        self.text.push_str(name);
        self.text.push_str(value);
        let name_end = (start + name.len()) as u32;
        self.spans.push([start as u32, name_end, name_end, end]);
    }

    /// Appends every field of `other`.
    pub fn extend_from(&mut self, other: &Headers) {
        for h in other {
            self.push(h.name, h.value);
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Bytes of the text the fields are held in: their names and values, and for a parsed
    /// head the rest of the head (for sizing buffers).
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Whether there is no field.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Removes every field.
    pub fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
    }

    /// The field at `index`.
    pub fn get(&self, index: usize) -> Option<Header<'_>> {
        Some(field(&self.text, *self.spans.get(index)?))
    }

    /// The last field.
    pub fn last(&self) -> Option<Header<'_>> {
        self.get(self.len().checked_sub(1)?)
    }

    /// The fields in order.
    pub fn iter(&self) -> HeaderIter<'_> {
        HeaderIter { text: &self.text, spans: self.spans.iter() }
    }

    /// Value of the first field named `name` (case-insensitive).
    pub fn find(&self, name: &str) -> Option<&str> {
        self.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
    }
}

/// The field whose name and value are at `[name_start, name_end, value_start, value_end]` in
/// `text`.
///
/// Unchecked, because these offsets are in bounds and on char boundaries by construction:
/// [`Headers::push`] records `text.len()` before and after appending whole `&str`s, and
/// [`Headers::from_head`] checks each span against the head that becomes the text; `text` only
/// ever grows by `push` or is cleared together with the spans. Checked slicing (bounds and four
/// boundary tests per field) made iterating the fields cost more than the allocations this type
/// removes: the engine scans a message's fields about ten times (framing, content coding, host,
/// the record's header maps).
#[allow(unsafe_code)]
fn field(text: &str, [ns, ne, vs, ve]: [u32; 4]) -> Header<'_> {
    let [ns, ne, vs, ve] = [ns, ne, vs, ve].map(|i| i as usize);
    debug_assert!(ns <= ne && vs <= ve && ne <= text.len() && ve <= text.len());
    debug_assert!([ns, ne, vs, ve].iter().all(|&i| text.is_char_boundary(i)));
    // SAFETY: in bounds and on char boundaries, as argued above.
    unsafe { Header { name: text.get_unchecked(ns..ne), value: text.get_unchecked(vs..ve) } }
}

/// Equal when the fields are, in order, however their text is laid out.
impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(|h| (h.name, h.value))).finish()
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for Headers {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (name, value) in iter {
            headers.push(name, value);
        }
        headers
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = Header<'a>;
    type IntoIter = HeaderIter<'a>;
    fn into_iter(self) -> HeaderIter<'a> {
        self.iter()
    }
}

/// The fields of a [`Headers`], in order.
#[derive(Debug, Clone)]
pub struct HeaderIter<'a> {
    text: &'a str,
    spans: std::slice::Iter<'a, [u32; 4]>,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = Header<'a>;
    fn next(&mut self) -> Option<Header<'a>> {
        Some(field(self.text, *self.spans.next()?))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for HeaderIter<'_> {}

/// A content coding the engine decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentCoding {
    /// gzip / x-gzip.
    Gzip,
    /// deflate (zlib-wrapped or raw).
    Deflate,
    /// Brotli.
    Br,
    /// Zstandard.
    Zstd,
}

/// One server-sent event of a `text/event-stream` body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` field, empty when absent (the type is then `message`).
    pub event: String,
    /// `data:` lines joined with `\n`.
    pub data: String,
    /// `id:` field, when present.
    pub id: Option<String>,
}

/// A message body after de-chunking and content decoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    /// The body as the application sees it, at most the configured caps.
    pub data: Vec<u8>,
    /// Bytes of the body on the wire after de-chunking, before content decoding (counted even
    /// past the cap).
    pub wire_len: u64,
    /// Length of the entity after content decoding; equals `wire_len` when not encoded.
    /// When `truncated`, this is a lower bound.
    pub decoded_len: u64,
    /// `data` is not the whole body (a cap was hit or bytes were lost).
    pub truncated: bool,
    /// Events when the body is `text/event-stream`.
    pub sse: Option<Vec<SseEvent>>,
}

/// A request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Capture time of the request's first byte.
    pub ts: Timestamp,
    /// Method as sent (case preserved).
    pub method: String,
    /// Request-target as sent, including the query string.
    pub target: String,
    /// Version.
    pub version: Version,
    /// Header fields in wire order (trailers of a chunked body appended).
    pub headers: Headers,
    /// Body.
    pub body: Body,
}

/// A final response (1xx interim responses are listed in `interim`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Capture time of the response's first byte.
    pub ts: Timestamp,
    /// Version (`Http09` when the server sent no status line).
    pub version: Version,
    /// Status code (0 for HTTP/0.9).
    pub status: u16,
    /// Reason phrase as sent.
    pub reason: String,
    /// Header fields in wire order (trailers appended).
    pub headers: Headers,
    /// Body.
    pub body: Body,
    /// Status codes of interim (1xx) responses that preceded this one, in order.
    pub interim: Vec<u16>,
}

/// Something unusual about an exchange, mostly RFC 9112 ambiguities and how they were resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Anomaly {
    /// Both Transfer-Encoding and Content-Length: Transfer-Encoding wins (RFC 9112 §6.3 ¶3).
    ContentLengthAndChunked,
    /// Content-Length repeated with the same value.
    DuplicateContentLength,
    /// Content-Length values that disagree, or a value that is not a number: the length is
    /// unrecoverable (RFC 9112 §6.3 ¶5).
    BadContentLength,
    /// Content-Length with leading zeros (valid, but a known smuggling vector).
    ContentLengthLeadingZeros,
    /// A chunk size line that is not hex or overflows.
    BadChunkSize,
    /// Transfer-Encoding whose final coding is not `chunked`.
    ChunkedNotFinal,
    /// A header field continued with obsolete line folding; unfolded with SP (RFC 9112 §5.2).
    ObsoleteLineFolding,
    /// `Expect: 100-continue` on a request with `Content-Length: 0`.
    ExpectContinueWithoutBody,
    /// Start line or header block that could not be parsed strictly; parsed leniently.
    MalformedHead,
    /// Head larger than the head cap.
    HeadTooLarge,
    /// Lines ended by a bare LF.
    BareLf,
    /// A server answered with something that is not an HTTP/1.x status line.
    NonHttpResponse,
    /// Request or response without a version (HTTP/0.9).
    Http09,
    /// A content coding that is unknown or failed to decode; the body is kept as received.
    UndecodableContent,
    /// Decompressed output reached the cap.
    DecompressionCapped,
    /// The body ended before its declared length (connection closed or gap).
    IncompleteBody,
    /// A request-target that is empty.
    MissingUri,
    /// A response with no request to pair with (the capture missed the client's side, or the
    /// server answered more than was asked).
    ResponseWithoutRequest,
}

/// Flags of an exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// No response was seen.
    pub pending: bool,
    /// Bytes of the request or response were lost in capture (a TCP gap).
    pub gap: bool,
    /// A body was cut at a cap or by a gap.
    pub truncated: bool,
    /// Content codings decoded (request and response).
    pub decoded_with: Vec<ContentCoding>,
    /// Anomalies, each at most once.
    pub anomalies: Vec<Anomaly>,
    /// The connection switched protocols (101) or became a tunnel (CONNECT) after this exchange.
    pub upgraded: bool,
}

impl Flags {
    /// Records an anomaly once.
    pub fn add(&mut self, a: Anomaly) {
        if !self.anomalies.contains(&a) {
            self.anomalies.push(a);
        }
    }
}

/// The connection an exchange belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// The side that sent the request.
    pub client: SocketAddr,
    /// The side that answered.
    pub server: SocketAddr,
    /// VXLAN network identifier, 0 when not tunnelled.
    pub vni: u32,
}

/// One request and, when seen, its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpExchange {
    /// Connection.
    pub conn: ConnInfo,
    /// 1-based index of this request within its connection.
    pub depth: u32,
    /// The request.
    pub request: Request,
    /// The final response, when seen.
    pub response: Option<Response>,
    /// Flags.
    pub flags: Flags,
}

impl HttpExchange {
    /// Value of the first header named `name` (case-insensitive) of the request.
    pub fn request_header(&self, name: &str) -> Option<&str> {
        self.request.headers.find(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_fields_and_names_keep_their_boundaries() {
        let h: Headers = [("", ""), ("A", ""), ("", "v"), ("Host", "x:1"), ("host", "y")].into_iter().collect();
        let pairs: Vec<_> = h.iter().map(|h| (h.name, h.value)).collect();
        assert_eq!(pairs, [("", ""), ("A", ""), ("", "v"), ("Host", "x:1"), ("host", "y")]);
        assert_eq!(h.find("HOST"), Some("x:1"), "the first match, whatever the case");
        assert_eq!(h.find("missing"), None);
        assert_eq!(h.last(), Some(Header { name: "host", value: "y" }));
        assert_eq!(h.get(5), None);
        assert_eq!(h.iter().len(), 5);
        assert_eq!(format!("{h:?}"), r#"[("", ""), ("A", ""), ("", "v"), ("Host", "x:1"), ("host", "y")]"#);
        let mut c = h.clone();
        c.clear();
        assert!(c.is_empty() && c.last().is_none() && c.iter().next().is_none());
    }

    proptest! {
        /// A head's fields are the slices its spans name; a span out of bounds, reversed or
        /// inside a character gives `None`. Pushing after that appends to the head's text.
        #[test]
        fn fields_of_a_head_are_its_slices(
            head in "[a-z:é😀 ]{0,24}",
            spans in proptest::collection::vec(proptest::array::uniform4(0usize..30), 0..6),
        ) {
            let want: Option<Vec<(&str, &str)>> =
                spans.iter().map(|&[a, b, c, d]| Some((head.get(a..b)?, head.get(c..d)?))).collect();
            let got = Headers::from_head(&head, spans.iter().copied());
            prop_assert_eq!(got.is_some(), want.is_some());
            if let (Some(mut h), Some(want)) = (got, want) {
                prop_assert_eq!(h.iter().map(|h| (h.name, h.value)).collect::<Vec<_>>(), want.clone());
                h.push("Trailer", "t");
                prop_assert_eq!(h.len(), want.len() + 1);
                prop_assert_eq!(h.last(), Some(Header { name: "Trailer", value: "t" }));
                let pushed: Headers = want.iter().copied().chain([("Trailer", "t")]).collect();
                prop_assert_eq!(h, pushed, "equal to the same fields pushed one by one");
            }
        }

        /// Fields come back as they were pushed, in order, also after appending trailers.
        #[test]
        fn fields_round_trip(
            head in proptest::collection::vec((".{0,8}", ".{0,12}"), 0..12),
            trailers in proptest::collection::vec((".{0,8}", ".{0,12}"), 0..4),
        ) {
            let mut h: Headers = head.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let t: Headers = trailers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            h.extend_from(&t);
            let all: Vec<_> = head.iter().chain(&trailers).map(|(n, v)| (n.as_str(), v.as_str())).collect();
            prop_assert_eq!(h.len(), all.len());
            prop_assert_eq!(h.iter().map(|h| (h.name, h.value)).collect::<Vec<_>>(), all.clone());
            for (i, (n, v)) in all.iter().enumerate() {
                prop_assert_eq!(h.get(i), Some(Header { name: n, value: v }));
                let first = all.iter().find(|(m, _)| m.eq_ignore_ascii_case(n)).map(|(_, v)| *v);
                prop_assert_eq!(h.find(n), first);
            }
        }
    }
}
