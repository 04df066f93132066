//! The calls that follow what happens (`logs -f`, `events`, `attach`, the CRI's
//! GetContainerEvents) hold one of `[limits] max_followers` slots, over every connection and
//! listener, for as long as their response stream lives: one more is refused with
//! ResourceExhausted naming the limit, so clients that pile up cannot grow the agent's tasks
//! and buffers without bound.

use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_stream::{Stream, StreamExt};
use tonic::Status;

/// The slots of followers.
#[derive(Debug)]
pub struct Followers {
    slots: Arc<Semaphore>,
    max: usize,
}

/// What every listener's router shares of `[limits]`: the settings and the followers' slots.
pub struct Clients {
    pub limits: crate::transport::limits::Limits,
    pub followers: Arc<Followers>,
}

/// A follower's slot, given back when dropped.
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Followers {
    pub fn new(max: usize) -> Arc<Followers> {
        Arc::new(Followers { slots: Arc::new(Semaphore::new(max)), max })
    }

    /// A slot for a `what` call, or ResourceExhausted naming the limit.
    pub fn admit(&self, what: &str) -> Result<Slot, Status> {
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(p) => Ok(Slot(p)),
            Err(_) => {
                tracing::warn!(max_followers = self.max, call = what, "refusing a follower: the limit is reached");
                Err(Status::resource_exhausted(format!(
                    "{what}: {} calls are following already ([limits] max_followers = {}); \
                     try again when one ends",
                    self.max, self.max
                )))
            }
        }
    }

    /// Followers now.
    pub fn active(&self) -> usize {
        self.max - self.slots.available_permits()
    }
}

impl Slot {
    /// `s`, holding this slot until the stream is dropped (the call ends or the client goes).
    pub fn hold<T: 'static>(self, s: impl Stream<Item = T> + Send + 'static) -> Pin<Box<dyn Stream<Item = T> + Send>> {
        Box::pin(s.map(move |x| {
            let _slot = &self;
            x
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_follower_past_the_limit_is_refused_by_name_until_one_ends() {
        let f = Followers::new(2);
        let a = f.admit("logs -f").unwrap().hold(tokio_stream::pending::<u8>());
        let b = f.admit("events").unwrap();
        let e = f.admit("events").err().expect("refused");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(e.message().contains("[limits] max_followers = 2"), "{}", e.message());
        assert_eq!(f.active(), 2);
        drop(a);
        assert_eq!(f.active(), 1, "a dropped stream gives its slot back");
        drop(b);
        assert!(f.admit("attach").is_ok());
    }
}
