//! The local HTTP endpoint: `/health` (200 or 503), `/metrics`
//! (Prometheus text), `/status` (JSON: every component's state).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use headwater_core::{Error, Result};

use crate::runtime::Daemon;

pub async fn serve(
    listen: SocketAddr,
    daemon: Arc<Daemon>,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        Error::io(
            "listening for the HTTP API (change api.listen, or stop what uses the port)",
            listen.to_string(),
            e,
        )
    })?;
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(daemon);
    Ok(tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
        if let Err(e) = server.await {
            tracing::error!(error = %e, "the HTTP API stopped");
        }
    }))
}

async fn health(State(daemon): State<Arc<Daemon>>) -> impl IntoResponse {
    if daemon.health.healthy() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy: see /status\n")
    }
}

async fn metrics(State(daemon): State<Arc<Daemon>>) -> impl IntoResponse {
    daemon.metrics.set_log_stats(daemon.log.stats());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        daemon.metrics.render(),
    )
}

async fn status(State(daemon): State<Arc<Daemon>>) -> impl IntoResponse {
    Json(serde_json::json!({
        "healthy": daemon.health.healthy(),
        "components": daemon.health.snapshot(),
        "topics": daemon.log.topics().iter().map(|t| serde_json::json!({
            "name": t.name,
            "partitions": t.partitions,
        })).collect::<Vec<_>>(),
    }))
}
