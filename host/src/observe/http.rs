//! The HTTP endpoint: `/metrics` for Prometheus, `/healthz` for probes, `/status` as JSON.
//!
//! It serves until the host's background work stops, which is after the pool has drained, so
//! a scrape during a drain still sees the workers finishing.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::telemetry::{CONTENT_TYPE, Health, Telemetry};

/// The endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(
        "failed to listen on {addr} for /metrics: choose a free address with metrics.listen or \
         --metrics-listen, or set it to \"off\""
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running endpoint.
#[derive(Debug)]
pub struct Endpoint {
    /// The address it listens on (the real port when asked for port 0).
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
}

/// Binds `listen` and serves `telemetry` until `stop`.
pub async fn serve(
    listen: SocketAddr,
    telemetry: Arc<Telemetry>,
    stop: CancellationToken,
) -> Result<Endpoint, EndpointError> {
    let bind = |source| EndpointError::Bind {
        addr: listen,
        source,
    };
    let listener = TcpListener::bind(listen).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the metrics endpoint is reachable from other machines");
    }
    let server =
        axum::serve(listener, router(telemetry)).with_graceful_shutdown(stop.cancelled_owned());
    let task = tokio::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(%error, "the metrics endpoint stopped");
        }
    });
    tracing::info!(%addr, "serving /metrics, /healthz and /status");
    Ok(Endpoint { addr, task })
}

/// The endpoint's routes.
pub fn router(telemetry: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/status", get(status))
        .with_state(telemetry)
}

async fn metrics(State(telemetry): State<Arc<Telemetry>>) -> Response {
    match telemetry.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => {
            let message = "failed to encode the metrics\n";
            (StatusCode::INTERNAL_SERVER_ERROR, message).into_response()
        }
    }
}

/// 200 while ticks keep coming (or the host has just started), 503 once they stop.
async fn healthz(State(telemetry): State<Arc<Telemetry>>) -> Response {
    match telemetry.health() {
        Health::Ticking => (StatusCode::OK, "ok\n").into_response(),
        Health::Starting => (StatusCode::OK, "starting\n").into_response(),
        Health::Stale(since) => {
            let message = format!("stale: no tick for {}s\n", since.as_secs());
            (StatusCode::SERVICE_UNAVAILABLE, message).into_response()
        }
    }
}

/// The last tick's status JSON, the same that goes to Redis; 503 before the first tick.
async fn status(State(telemetry): State<Arc<Telemetry>>) -> Response {
    match telemetry.status_json() {
        Some(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        None => {
            let body = r#"{"error":"no tick yet"}"#;
            let json = [(header::CONTENT_TYPE, "application/json")];
            (StatusCode::SERVICE_UNAVAILABLE, json, body).into_response()
        }
    }
}
