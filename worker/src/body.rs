//! Reading bodies without holding more than a cap, and building streamed responses.
//!
//! Every read here is bounded: [`read_capped`] keeps at most `cap` bytes and cancels its stream
//! (a tee branch, so the client's copy is unaffected) as soon as it knows the body is longer, or
//! when its deadline passes.

use futures_util::future::{select, Either};
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStream, ReadableStreamDefaultReader};

/// A captured (possibly partial) body.
#[derive(Debug, Default)]
pub struct Captured {
    /// The first bytes of the body, at most the cap.
    pub bytes: Vec<u8>,
    /// The body was longer than the cap (or the capture stopped early).
    pub truncated: bool,
    /// The capture stopped because its deadline passed.
    pub timed_out: bool,
}

/// A stream reader that yields chunks.
#[derive(Debug)]
pub struct Reader(ReadableStreamDefaultReader);

impl Reader {
    /// Locks `stream` for reading.
    pub fn new(stream: &ReadableStream) -> Reader {
        Reader(stream.get_reader().unchecked_into())
    }

    /// The next chunk, `Ok(None)` at the end.
    pub async fn next(&self) -> Result<Option<Uint8Array>, JsValue> {
        let result = JsFuture::from(self.0.read()).await?;
        if Reflect::get(&result, &JsValue::from_str("done"))?.as_bool().unwrap_or(true) {
            return Ok(None);
        }
        let value = Reflect::get(&result, &JsValue::from_str("value"))?;
        match value.dyn_into::<Uint8Array>() {
            Ok(a) => Ok(Some(a)),
            // A string chunk (a JS stream of text): encode it.
            Err(v) => Ok(v.as_string().map(|s| Uint8Array::from(s.as_bytes()))),
        }
    }

    /// Cancels the stream (the other tee branch keeps flowing).
    pub fn cancel(&self) {
        let _ = self.0.cancel();
    }
}

fn sleep(ms: u64) -> worker::Delay {
    worker::Delay::from(std::time::Duration::from_millis(ms))
}

/// Reads `stream`, keeping at most `cap` bytes; stops (and cancels) when the body is longer or
/// after `max_ms`.
pub async fn read_capped(stream: &ReadableStream, cap: usize, max_ms: u64) -> Captured {
    let reader = Reader::new(stream);
    let mut out = Captured::default();
    let mut deadline = sleep(max_ms);
    loop {
        let next = Box::pin(reader.next());
        match select(next, &mut deadline).await {
            Either::Left((Ok(Some(chunk)), _)) => {
                let len = chunk.length() as usize;
                let room = cap - out.bytes.len();
                if len > room {
                    if room > 0 {
                        append(&mut out.bytes, &chunk.subarray(0, room as u32));
                    }
                    out.truncated = true;
                    reader.cancel();
                    break;
                }
                append(&mut out.bytes, &chunk);
            }
            Either::Left((Ok(None), _)) => break,
            Either::Left((Err(_), _)) => {
                // The stream errored (client or server went away): keep what arrived.
                out.truncated = true;
                break;
            }
            Either::Right(((), _)) => {
                out.truncated = true;
                out.timed_out = true;
                reader.cancel();
                break;
            }
        }
    }
    out
}

/// Appends a JS byte array to `buf` with one copy.
pub fn append(buf: &mut Vec<u8>, chunk: &Uint8Array) {
    let start = buf.len();
    buf.resize(start + chunk.length() as usize, 0);
    chunk.copy_to(&mut buf[start..]);
}

/// A body as text: valid UTF-8 is used as is, a cut inside a UTF-8 sequence is backed off,
/// anything else is converted lossily (the record's payload is text).
pub fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(e) if e.error_len().is_none() => {
            std::borrow::Cow::Borrowed(std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default())
        }
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// A JS byte array holding `bytes`.
pub fn js_bytes(bytes: &[u8]) -> Uint8Array {
    Uint8Array::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_backs_off_a_cut_sequence() {
        let s = "héllo".as_bytes();
        assert_eq!(text(&s[..2]), "h");
        assert_eq!(text(s), "héllo");
        assert_eq!(text(&[0xff, b'a']), "\u{fffd}a");
    }
}
