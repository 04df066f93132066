//! The agent's event log as a stream that survives its connection: when the stream breaks
//! (the connection drops, the agent restarts, or the agent ends a follower that lagged) it
//! is opened again with `since` = the last sequence number delivered, after the retry
//! policy's back-off. Sequence numbers only grow on one agent (they are stored with the
//! events and kept across restarts), and anything at or below the last one delivered is
//! dropped, so each event arrives once and none is lost.

use crate::retry::{Idempotency, RetryPolicy};
use crate::{pb, Client, Error, Event};
use futures::Stream;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// What to read of the event log.
#[derive(Debug, Clone, Default)]
pub struct EventsOptions {
    /// Events after this sequence number (0: from the oldest the agent keeps).
    pub since: u64,
    /// Keep streaming new events (else: end after the log as it is).
    pub follow: bool,
    /// docker's `--filter KEY=VALUE` (type, container, event, image, label).
    pub filters: Vec<String>,
}

/// The stream [`Client::events`] returns. Ends with an error when the agent stays away for
/// longer than the retry policy allows, or refuses the request (a bad filter).
pub struct EventStream {
    inner: Pin<Box<dyn Stream<Item = Result<Event, Error>> + Send>>,
    last: Arc<AtomicU64>,
}

impl EventStream {
    /// The sequence number of the last event delivered (where a new stream would resume).
    pub fn last_seq(&self) -> u64 {
        self.last.load(Ordering::SeqCst)
    }
}

impl Stream for EventStream {
    type Item = Result<Event, Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

struct Reader {
    client: Client,
    opts: EventsOptions,
    retry: RetryPolicy,
    last: Arc<AtomicU64>,
    stream: Option<tonic::Streaming<pb::Event>>,
    /// Failed opens and breaks in a row, and when the first of them happened.
    failures: u32,
    first_failure: Option<Instant>,
    done: bool,
}

impl Reader {
    /// The next event, or None at the end; reopens the stream as needed.
    async fn next(&mut self) -> Option<Result<Event, Error>> {
        loop {
            if self.done {
                return None;
            }
            if self.stream.is_none() {
                let req = pb::EventsRequest {
                    since: self.last.load(Ordering::SeqCst),
                    follow: self.opts.follow,
                    filters: self.opts.filters.clone(),
                };
                match self.client.system().events(req).await {
                    Ok(r) => self.stream = Some(r.into_inner()),
                    Err(s) => match self.back_off(s.into()).await {
                        Ok(()) => continue,
                        Err(e) => return Some(Err(e)),
                    },
                }
            }
            let Some(stream) = self.stream.as_mut() else { continue };
            match stream.message().await {
                Ok(Some(e)) => {
                    if e.seq <= self.last.load(Ordering::SeqCst) {
                        continue;
                    }
                    self.last.store(e.seq, Ordering::SeqCst);
                    self.failures = 0;
                    self.first_failure = None;
                    return Some(Ok(e.into()));
                }
                Ok(None) if !self.opts.follow => {
                    self.done = true;
                    return None;
                }
                // A follower's stream ends when it lagged or the agent shuts down: resume
                // (after a pause if it keeps ending without events).
                Ok(None) => {
                    self.stream = None;
                    if let Err(e) = self.back_off(Error::Unavailable("the event stream ended".into())).await {
                        return Some(Err(e));
                    }
                }
                Err(s) => {
                    self.stream = None;
                    if let Err(e) = self.back_off(s.into()).await {
                        return Some(Err(e));
                    }
                }
            }
        }
    }

    /// Waits before the next open, or gives up with `err` (then the stream ends).
    async fn back_off(&mut self, err: Error) -> Result<(), Error> {
        self.failures += 1;
        let since = *self.first_failure.get_or_insert_with(Instant::now);
        match self.retry.next(Idempotency::Idempotent, &err, self.failures, since.elapsed()) {
            Some(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            None => {
                self.done = true;
                Err(err)
            }
        }
    }
}

impl Client {
    /// The event log from `opts.since`, resumed after breaks (see the module doc).
    pub fn events(&self, opts: EventsOptions) -> EventStream {
        let last = Arc::new(AtomicU64::new(opts.since));
        let reader = Reader {
            client: self.clone(),
            retry: self.retry,
            opts,
            last: last.clone(),
            stream: None,
            failures: 0,
            first_failure: None,
            done: false,
        };
        let inner = futures::stream::unfold(reader, |mut r| async move { r.next().await.map(|item| (item, r)) });
        EventStream { inner: Box::pin(inner), last }
    }
}
