//! Fault injection at a source's helper tasks, for tests of what a crash
//! there does (feature `fault-injection`; without it [`killed`] never
//! resolves and costs nothing).
//!
//! A test calls [`kill`] with the source's name and a helper; that
//! helper's task panics at its next wakeup.

/// A helper task a source runs beside its main loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Helper {
    /// Reads the upstream connection and hands changes to the loop.
    Reader,
    /// Awaits each batch's durability and acknowledges it.
    Acknowledger,
}

#[cfg(feature = "fault-injection")]
mod armed {
    use std::sync::Mutex;

    use tokio::sync::Notify;

    use super::Helper;

    static ARMED: Mutex<Vec<(String, Helper)>> = Mutex::new(Vec::new());
    static NOTIFY: Notify = Notify::const_new();

    fn take(source: &str, helper: Helper) -> bool {
        let mut armed = ARMED.lock().unwrap_or_else(|p| p.into_inner());
        match armed.iter().position(|(s, h)| s == source && *h == helper) {
            Some(i) => {
                armed.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Makes `helper` of source `source` panic (once).
    pub fn kill(source: &str, helper: Helper) {
        ARMED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((source.to_owned(), helper));
        NOTIFY.notify_waiters();
    }

    pub async fn killed(source: &str, helper: Helper) {
        loop {
            let notified = NOTIFY.notified();
            if take(source, helper) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(feature = "fault-injection")]
pub use armed::kill;

/// Resolves when a test kills `helper` of `source`.
pub async fn killed(source: &str, helper: Helper) {
    #[cfg(feature = "fault-injection")]
    armed::killed(source, helper).await;
    #[cfg(not(feature = "fault-injection"))]
    {
        let _ = (source, helper);
        std::future::pending::<()>().await;
    }
}
