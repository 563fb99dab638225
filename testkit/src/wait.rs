use std::time::{Duration, Instant};

/// Polls `condition` until it holds or `deadline` passes; panics with
/// `what` on timeout. For conditions with no notification to wait on.
pub fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    while !condition() {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// The async twin of [`wait_until`]. `condition` may be an async closure
/// that borrows from the test (`async || sink.flush().await.is_ok()`), or
/// a closure returning a future.
pub async fn wait_until_async(
    what: &str,
    deadline: Duration,
    mut condition: impl AsyncFnMut() -> bool,
) {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    while !condition().await {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
