//! `text/event-stream` parsing (WHATWG HTML, "Server-sent events", §9.2.6): lines end with CRLF,
//! LF or CR; a blank line dispatches the event; `data` lines are joined with LF; lines starting
//! with `:` are comments. MCP streamable HTTP sends each JSON-RPC message as one event.

use crate::exchange::SseEvent;

/// Splits a complete event-stream body into events. An unterminated last event is dispatched too
/// (the stream ended), as a recorder wants every message that was sent.
pub fn parse(body: &[u8]) -> Vec<SseEvent> {
    let text = String::from_utf8_lossy(body);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut events = Vec::new();
    let mut cur = SseEvent::default();
    let mut has_data = false;
    let mut any_field = false;
    for line in lines(text) {
        if line.is_empty() {
            if has_data || any_field {
                if has_data {
                    events.push(std::mem::take(&mut cur));
                } else {
                    cur = SseEvent::default();
                }
            }
            has_data = false;
            any_field = false;
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        any_field = true;
        match field {
            "event" => cur.event = value.to_string(),
            "data" => {
                if has_data {
                    cur.data.push('\n');
                }
                cur.data.push_str(value);
                has_data = true;
            }
            "id" if !value.contains('\0') => cur.id = Some(value.to_string()),
            _ => {}
        }
    }
    if has_data {
        events.push(cur);
    }
    events
}

/// Lines terminated by CRLF, LF or CR (a CRLF pair is one terminator).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.find(['\r', '\n']) {
            Some(i) => {
                let line = &rest[..i];
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
                Some(line)
            }
            None => {
                let line = rest;
                rest = "";
                Some(line)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_multiline_data_comments_and_line_endings() {
        let body = b": ping\r\nevent: message\r\nid: 7\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\ndata: two\n\ndata:three\rretry: 5\r\r";
        let ev = parse(body);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].event, "message");
        assert_eq!(ev[0].id.as_deref(), Some("7"));
        assert_eq!(ev[0].data, "{\"a\":\n1}");
        assert_eq!(ev[1].data, "two");
        assert_eq!(ev[2].data, "three");
    }

    #[test]
    fn unterminated_last_event_is_kept_and_empty_events_dropped() {
        let ev = parse(b"event: x\n\ndata: last");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].data, "last");
        assert_eq!(ev[0].event, "");
    }
}
