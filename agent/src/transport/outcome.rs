//! The outcome of a gRPC call as it leaves the server: the status of a trailers-only
//! response is in its headers, that of any other in its trailers (a streaming call can fail
//! after it started). The audit log and the metrics both need it.

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::body::Body;

/// The code name of a `grpc-status` header value, for the audit log and metrics.
pub fn code_name(v: Option<&http::HeaderValue>) -> String {
    let n = v.and_then(|v| v.to_str().ok()).and_then(|s| s.parse::<i32>().ok()).unwrap_or(0);
    format!("{:?}", tonic::Code::from_i32(n))
}

/// The gRPC status in a header map (headers of a trailers-only response, or trailers).
pub fn status_of(h: &http::HeaderMap) -> Option<(String, String)> {
    let code = h.get("grpc-status")?;
    let message = h.get("grpc-message").and_then(|v| v.to_str().ok()).map(percent_decode).unwrap_or_default();
    Some((code_name(Some(code)), message))
}

/// Called once with the outcome of a call: (code name, message), or `None` when the body
/// ended without trailers (the status then is in the response headers, or the client left).
pub type OnEnd = Box<dyn FnOnce(Option<(String, String)>) + Send>;

/// A response body that reports the call's status when its trailers (or its end) pass.
pub struct Outcome {
    inner: Body,
    on_end: Option<OnEnd>,
}

impl Outcome {
    /// Wraps `inner`; `on_end` runs once, when the outcome is known or the body is dropped.
    pub fn new(inner: Body, on_end: OnEnd) -> Outcome {
        Outcome { inner, on_end: Some(on_end) }
    }

    fn finish(&mut self, outcome: Option<(String, String)>) {
        if let Some(f) = self.on_end.take() {
            f(outcome);
        }
    }
}

impl HttpBody for Outcome {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(t) = f.trailers_ref() {
                    let outcome = status_of(t);
                    this.finish(outcome);
                }
            }
            Poll::Ready(Some(Err(e))) => {
                let outcome = Some((format!("{:?}", e.code()), e.message().to_string()));
                this.finish(outcome);
            }
            Poll::Ready(None) => this.finish(None),
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        // Not polled to its end: a trailers-only response (its status is in the headers,
        // which the callback falls back to), or a client that went away mid-stream.
        if let Some(f) = self.on_end.take() {
            f(None);
        }
    }
}

/// grpc-message is percent-encoded on the wire.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
