//! Create and start as transactions: each step that changes the host or the store registers
//! how to take it back; if a later step fails, the registered clean-ups run in reverse
//! order. A clean-up that fails is logged (it cannot change the caller's error, and must
//! not be silently dropped).

type Step<'a> = Box<dyn FnOnce() -> Result<(), String> + Send + 'a>;

/// Clean-ups registered so far; they run (last first) when the stack is dropped armed.
pub(super) struct Undo<'a> {
    what: &'static str,
    steps: Vec<(&'static str, Step<'a>)>,
}

impl<'a> Undo<'a> {
    /// An empty stack for the operation `what` (named in logs).
    pub(super) fn new(what: &'static str) -> Undo<'a> {
        Undo { what, steps: Vec::new() }
    }

    /// Registers how to take back the step `step` that just succeeded.
    pub(super) fn push(&mut self, step: &'static str, f: impl FnOnce() -> Result<(), String> + Send + 'a) {
        self.steps.push((step, Box::new(f)));
    }

    /// The operation succeeded: nothing is taken back.
    pub(super) fn commit(mut self) {
        self.steps.clear();
    }

    /// Takes everything back now.
    pub(super) fn rollback(self) {
        drop(self)
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        while let Some((step, f)) = self.steps.pop() {
            if let Err(e) = f() {
                tracing::warn!(operation = self.what, step, error = %e, "clean-up after a failure failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn steps_are_taken_back_last_first_unless_committed() {
        let log = Mutex::new(Vec::new());
        {
            let mut u = Undo::new("test");
            u.push("a", || {
                log.lock().unwrap().push("a");
                Ok(())
            });
            u.push("b", || {
                log.lock().unwrap().push("b");
                Err("b failed".into())
            });
            u.push("c", || {
                log.lock().unwrap().push("c");
                Ok(())
            });
        }
        assert_eq!(*log.lock().unwrap(), ["c", "b", "a"], "a failing clean-up does not stop the others");
        let mut u = Undo::new("test");
        u.push("x", || {
            log.lock().unwrap().push("x");
            Ok(())
        });
        u.commit();
        assert_eq!(log.lock().unwrap().len(), 3);
    }
}
