//! HTTP/1.x over a reassembled TCP connection.

mod body;
mod conn;
mod content;
mod framing;
mod head;
mod onepass;
pub mod sse;

pub(crate) use conn::{Ctx, Dir, HttpConn};
pub use head::{looks_like_request, looks_like_response};
