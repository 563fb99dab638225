//! Runs a component again after it fails, as its error's kind says:
//! retry after an exponential backoff, wait for an operator (retry slowly,
//! loudly), or stop.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use headwater_core::error::{Classify, ErrorKind};
use headwater_core::Result;
use tokio_util::sync::CancellationToken;

use crate::health::{ComponentState, Health};
use crate::metrics::{Metrics, COMPONENT_UP, ERRORS, RETRIES};

const FIRST_DELAY: Duration = Duration::from_millis(500);
const MAX_DELAY: Duration = Duration::from_secs(30);
const OPERATOR_DELAY: Duration = Duration::from_secs(30);
/// An attempt that ran this long was healthy: the backoff starts over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

pub struct Supervised {
    pub component: String,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
}

impl Supervised {
    fn set(&self, state: ComponentState) {
        let up = matches!(state, ComponentState::Running);
        self.metrics.set(
            COMPONENT_UP,
            &[("component", &self.component)],
            f64::from(u8::from(up)),
        );
        self.health.set(&self.component, state);
    }

    /// Runs `attempt` until it returns `Ok` or shutdown is requested.
    pub async fn run<F, Fut>(self, mut attempt: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let mut delay = FIRST_DELAY;
        loop {
            self.set(ComponentState::Running);
            let started = Instant::now();
            let result = attempt().await;
            if self.shutdown.is_cancelled() {
                if let Err(e) = &result {
                    tracing::warn!(component = %self.component, error = %e, "failed while shutting down");
                }
                self.set(ComponentState::Stopped { error: None });
                return;
            }
            let error = match result {
                Ok(()) => {
                    self.set(ComponentState::Stopped { error: None });
                    return;
                }
                Err(e) => e,
            };
            if started.elapsed() > HEALTHY_RUN {
                delay = FIRST_DELAY;
            }
            let kind = error.kind();
            self.metrics.add(
                ERRORS,
                &[("component", &self.component), ("kind", kind_name(kind))],
                1,
            );
            let wait = match kind {
                ErrorKind::Retry => {
                    tracing::warn!(component = %self.component, error = %error, retry_in = ?delay, "failed; retrying");
                    self.set(ComponentState::Retrying {
                        error: error.to_string(),
                    });
                    let wait = delay;
                    delay = (delay * 2).min(MAX_DELAY);
                    wait
                }
                ErrorKind::WaitForOperator => {
                    tracing::error!(component = %self.component, error = %error, retry_in = ?OPERATOR_DELAY, "needs an operator; retrying slowly until fixed");
                    self.set(ComponentState::WaitingForOperator {
                        error: error.to_string(),
                    });
                    OPERATOR_DELAY
                }
                ErrorKind::Stop => {
                    tracing::error!(component = %self.component, error = %error, "stopped; retrying cannot help");
                    self.set(ComponentState::Stopped {
                        error: Some(error.to_string()),
                    });
                    return;
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.shutdown.cancelled() => {
                    self.set(ComponentState::Stopped { error: None });
                    return;
                }
            }
            self.metrics
                .add(RETRIES, &[("component", &self.component)], 1);
        }
    }
}

pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Retry => "retry",
        ErrorKind::WaitForOperator => "wait_for_operator",
        ErrorKind::Stop => "stop",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    use headwater_source::postgres::PgError;

    use super::*;

    /// A source whose reader task died: the supervisor shows the error in
    /// `/status` and runs it again (it used to end as a clean stop).
    #[tokio::test]
    async fn a_dead_helper_task_is_shown_and_retried() {
        let health = Arc::new(Health::default());
        let supervised = Supervised {
            component: "source.shop".into(),
            health: health.clone(),
            metrics: Arc::new(Metrics::default()),
            shutdown: CancellationToken::new(),
        };
        let attempts = Arc::new(AtomicU32::new(0));
        let seen = Arc::new(Mutex::new(None));
        let run = {
            let (attempts, seen, health) = (attempts.clone(), seen.clone(), health.clone());
            supervised.run(move || {
                let n = attempts.fetch_add(1, Ordering::SeqCst);
                let (seen, health) = (seen.clone(), health.clone());
                async move {
                    if n == 0 {
                        return Err(PgError::HelperEnded {
                            task: "reader",
                            reason: "panicked: connection reset".into(),
                        }
                        .into());
                    }
                    *seen.lock().unwrap_or_else(|p| p.into_inner()) =
                        health.snapshot().get("source.shop").cloned();
                    Ok(())
                }
            })
        };
        let shown = {
            let health = health.clone();
            async move {
                loop {
                    if let Some(state @ ComponentState::Retrying { .. }) =
                        health.snapshot().get("source.shop").cloned()
                    {
                        return state;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        let (shown, ()) = tokio::join!(shown, run);
        let ComponentState::Retrying { error } = shown else {
            unreachable!()
        };
        assert!(error.contains("reader"), "{error}");
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            2,
            "run again after the backoff"
        );
        assert_eq!(
            *seen.lock().unwrap_or_else(|p| p.into_inner()),
            Some(ComponentState::Running)
        );
    }
}
