//! `[limits]`: how much of the agent one client (or all of them together) may hold. Every
//! knob is explicit here rather than left to tonic's and hyper's defaults, because tonic's
//! defaults are not hyper's: unset, tonic passes `max_concurrent_streams(None)` (unlimited,
//! where hyper alone says 200) and `max_local_error_reset_streams(None)`, which turns off
//! hyper's guard against clients that make the server reset streams for them (RUSTSEC-2024-0003).
//!
//! The unix listener's [`super::authority::AuthorityFix`] decodes every header block before
//! h2 sees it, so it bounds the same header list size itself (h2's check would come too late:
//! an HPACK block of one-byte references to a 4 KiB table entry decodes 4096 times larger).

use serde::Deserialize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The `[limits]` section; every field has a default (see README, "Limits").
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Client connections served at once, over every listener; more are closed at accept.
    pub max_connections: usize,
    /// HTTP/2 streams (calls) open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams: u32,
    /// Largest header list (metadata) of a call, in HPACK's accounting (SETTINGS_MAX_HEADER_LIST_SIZE):
    /// a larger one is answered 431 / REFUSED_STREAM; four times larger closes the connection.
    pub max_header_list_size: u32,
    /// How much a client may send ahead on one call before the agent reads it (bytes).
    pub initial_stream_window_size: u32,
    /// … and on one connection, over all its calls.
    pub initial_connection_window_size: u32,
    /// Seconds between HTTP/2 pings on a connection; 0: no pings.
    pub keepalive_interval_secs: u64,
    /// A connection whose ping is not answered in this many seconds is closed.
    pub keepalive_timeout_secs: u64,
    /// Streams a client opened and reset before the agent accepted them, at once, before the
    /// connection is closed (GOAWAY ENHANCE_YOUR_CALM): the HTTP/2 rapid-reset guard.
    pub max_pending_accept_reset_streams: usize,
    /// Streams the agent had to reset for a client's protocol errors before it closes the
    /// connection (GOAWAY ENHANCE_YOUR_CALM).
    pub max_local_error_reset_streams: usize,
    /// Largest gRPC message received or sent (bytes).
    pub max_message_size: usize,
    /// Calls that follow what happens (`logs -f`, `events`, `attach`, CRI events) at once,
    /// over every connection; one more is refused with ResourceExhausted naming this limit.
    pub max_followers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            max_concurrent_streams: 1024,
            max_header_list_size: 16 * 1024,
            initial_stream_window_size: 1024 * 1024,
            initial_connection_window_size: 2 * 1024 * 1024,
            keepalive_interval_secs: 60,
            keepalive_timeout_secs: 20,
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 1024,
            max_message_size: 16 * 1024 * 1024,
            max_followers: 4096,
        }
    }
}

/// RFC 9113's smallest and largest flow-control windows.
const MIN_WINDOW: u32 = 65_535;
const MAX_WINDOW: u32 = (1 << 31) - 1;

impl Limits {
    /// Refuses values that would disable a guard or that HTTP/2 does not allow, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        let positive: [(&str, u64); 7] = [
            ("max_connections", self.max_connections as u64),
            ("max_concurrent_streams", u64::from(self.max_concurrent_streams)),
            ("max_pending_accept_reset_streams", self.max_pending_accept_reset_streams as u64),
            ("max_local_error_reset_streams", self.max_local_error_reset_streams as u64),
            ("max_followers", self.max_followers as u64),
            ("keepalive_timeout_secs", self.keepalive_timeout_secs),
            ("max_message_size", self.max_message_size as u64),
        ];
        for (k, v) in positive {
            if v == 0 {
                return Err(format!("[limits] {k} must be at least 1"));
            }
        }
        if self.max_header_list_size < 1024 {
            return Err(format!("[limits] max_header_list_size {} is below 1024", self.max_header_list_size));
        }
        for (k, v) in [
            ("initial_stream_window_size", self.initial_stream_window_size),
            ("initial_connection_window_size", self.initial_connection_window_size),
        ] {
            if !(MIN_WINDOW..=MAX_WINDOW).contains(&v) {
                return Err(format!("[limits] {k} {v} is outside {MIN_WINDOW}..={MAX_WINDOW}"));
            }
        }
        Ok(())
    }

    /// A tonic server with every HTTP/2 limit set.
    pub fn server(&self) -> tonic::transport::Server {
        let ping = (self.keepalive_interval_secs > 0).then(|| Duration::from_secs(self.keepalive_interval_secs));
        tonic::transport::Server::builder()
            .max_concurrent_streams(self.max_concurrent_streams)
            .http2_max_header_list_size(self.max_header_list_size)
            .initial_stream_window_size(self.initial_stream_window_size)
            .initial_connection_window_size(self.initial_connection_window_size)
            .http2_keepalive_interval(ping)
            .http2_keepalive_timeout(Some(Duration::from_secs(self.keepalive_timeout_secs)))
            .http2_max_pending_accept_reset_streams(Some(self.max_pending_accept_reset_streams))
            .http2_max_local_error_reset_streams(Some(self.max_local_error_reset_streams))
    }
}

/// The connections being served, over every listener.
#[derive(Clone, Debug)]
pub struct Connections {
    slots: Arc<Semaphore>,
    max: usize,
}

impl Connections {
    pub fn new(max: usize) -> Connections {
        Connections { slots: Arc::new(Semaphore::new(max)), max }
    }

    /// Connections served now.
    pub fn active(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// Wraps every connection of `incoming` with a slot; one arriving when none is free is
    /// closed at once (logged), so the clients already served keep their share.
    pub fn limit<S, E>(
        &self,
        incoming: impl futures::Stream<Item = Result<S, E>>,
    ) -> impl futures::Stream<Item = Result<Counted<S>, E>> {
        use futures::StreamExt;
        let this = self.clone();
        incoming.filter_map(move |c| {
            let r = match c {
                Err(e) => Some(Err(e)),
                Ok(s) => match Arc::clone(&this.slots).try_acquire_owned() {
                    Ok(slot) => Some(Ok(Counted { inner: s, _slot: slot })),
                    Err(_) => {
                        tracing::warn!(
                            max_connections = this.max,
                            "[limits] max_connections reached: closing a new connection"
                        );
                        None
                    }
                },
            };
            std::future::ready(r)
        })
    }
}

/// A connection holding one of [`Connections`]' slots until it is dropped.
pub struct Counted<S> {
    inner: S,
    _slot: OwnedSemaphorePermit,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected for Counted<S> {
    type ConnectInfo = S::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zeros_are_refused_by_name() {
        assert!(Limits::default().validate().is_ok());
        let e = Limits { max_followers: 0, ..Default::default() }.validate().unwrap_err();
        assert!(e.contains("max_followers"), "{e}");
        let e = Limits { initial_stream_window_size: 10, ..Default::default() }.validate().unwrap_err();
        assert!(e.contains("initial_stream_window_size 10"), "{e}");
        let e = Limits { max_header_list_size: 10, ..Default::default() }.validate().unwrap_err();
        assert!(e.contains("max_header_list_size 10"), "{e}");
    }

    #[tokio::test]
    async fn a_connection_beyond_the_limit_is_closed_and_a_freed_slot_is_reused() {
        use futures::StreamExt;
        let c = Connections::new(2);
        let items: Vec<Result<u8, ()>> = vec![Ok(1), Ok(2), Ok(3), Err(())];
        let got: Vec<_> = c.limit(futures::stream::iter(items)).collect().await;
        assert_eq!(got.len(), 3, "the third connection is closed, the error passes");
        assert!(got[2].is_err());
        drop(got);
        let again: Vec<_> = c.limit(futures::stream::iter(vec![Ok::<u8, ()>(4)])).collect().await;
        assert!(again[0].is_ok(), "slots come back when connections end");
    }
}
