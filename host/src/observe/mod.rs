//! Seeing what the pool does and why: Prometheus metrics and the endpoint that serves them.
//!
//! - [`config`]: `[metrics]`, where the endpoint listens (loopback by default, or off).
//! - [`telemetry`]: [`Telemetry`], the registry; the scaler hands it every tick.
//! - [`gauges`]: what a scrape reads when it runs (the last tick, the task totals).
//! - [`decision`]: a decision's bounded labels, its direction and reason kind.
//! - [`calls`]: [`ApiCalls`], the solver client's calls by call and result.
//! - [`http`]: `/metrics`, `/healthz` and `/status`.
//!
//! Metric names are listed in the README's "Metrics" section.

pub mod calls;
pub mod config;
pub mod decision;
pub mod gauges;
pub mod http;
pub mod telemetry;

#[cfg(test)]
mod tests;

pub use calls::{ApiCall, ApiCalls, CallResult};
pub use config::{DEFAULT_METRICS_LISTEN, MetricsConfig, MetricsListen};
pub use http::{Endpoint, EndpointError, serve};
pub use telemetry::{Health, Telemetry};

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

/// Serves `telemetry` on `config.listen` until `stop`; nothing when the endpoint is off.
///
/// An address the operator chose must be free, or the start fails. The default address is
/// only a convenience: when it is taken (a second host on the same machine), the host warns
/// and runs without the endpoint.
pub async fn start(
    config: &MetricsConfig,
    telemetry: &Arc<Telemetry>,
    stop: &CancellationToken,
) -> Result<Option<Endpoint>, EndpointError> {
    let Some(listen) = config.listen else {
        return Ok(None);
    };
    match serve(listen, telemetry.clone(), stop.clone()).await {
        Ok(endpoint) => Ok(Some(endpoint)),
        Err(EndpointError::Bind { source, .. }) if listen == DEFAULT_METRICS_LISTEN => {
            tracing::warn!(
                %listen, error = %source,
                "the default metrics address is taken: running without /metrics; \
                 set metrics.listen or --metrics-listen to serve it elsewhere"
            );
            Ok(None)
        }
        Err(error) => Err(error),
    }
}
