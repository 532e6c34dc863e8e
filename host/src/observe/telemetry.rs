//! The host's Prometheus registry: fed by every tick, read by every scrape.
//!
//! [`Telemetry`] is the scaler's [`TickObserver`]: each tick it counts the decision (by
//! direction and bounded reason kind) and any policy failure (by class), and keeps the tick's
//! status and snapshot for the gauges, `/status` and `/healthz`. Task totals and the solve
//! latency histogram come from the [`Recorder`] the workers write to, and API calls from the
//! [`ApiCalls`] the solver client counts into.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};
use tokio::time::Instant;

use super::calls::ApiCalls;
use super::decision::{self, Direction, KindCap};
use super::gauges::{Latest, TaskCounts, TickGauges, TickView};
use crate::metrics::Recorder;
use crate::policy::Snapshot;
use crate::scaler::{TickObserver, TickReport};
use crate::status::HostStatus;

/// The `Content-Type` of `/metrics`: Prometheus text, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;
/// Ticks without a new one before the host counts as stuck (the status key's TTL, too).
const STALE_TICKS: u32 = 3;
/// Shortest time without a tick before the host counts as stuck, for very short ticks.
const STALE_FLOOR: Duration = Duration::from_secs(10);

/// Labels of `autoscaler_decisions_total`: `direction` and `kind`.
type DecisionLabels = [(&'static str, String); 2];
/// Labels of `autoscaler_policy_failures_total`: `class`.
type FailureLabels = [(&'static str, &'static str); 1];

/// Whether the host is ticking, as `/healthz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Started less than the stale limit ago and not ticked yet.
    Starting,
    /// Ticked within the stale limit.
    Ticking,
    /// No tick for this long (since the start when there was none).
    Stale(Duration),
}

/// The metrics of one host.
#[derive(Debug)]
pub struct Telemetry {
    registry: Registry,
    latest: Arc<Latest>,
    decisions: Family<DecisionLabels, Counter>,
    policy_failures: Family<FailureLabels, Counter>,
    kinds: KindCap,
    started: Instant,
    stale_after: Duration,
}

impl Telemetry {
    /// A registry over the workers' `recorder` and the client's `calls`, for ticks of `tick`.
    pub fn new(recorder: Arc<Recorder>, calls: &ApiCalls, tick: Duration) -> Self {
        let latest = Arc::new(Latest::default());
        let decisions = Family::<DecisionLabels, Counter>::default();
        let policy_failures = Family::<FailureLabels, Counter>::default();
        let mut registry = Registry::default();
        let help = "Scaling decisions by direction (up, down, hold) and reason kind";
        registry.register("autoscaler_decisions", help, decisions.clone());
        let help = "Policy calls that failed (the pool kept its size), by failure class";
        registry.register("autoscaler_policy_failures", help, policy_failures.clone());
        let help = "Calls to the solving API by call (submit, poll, balance) and result";
        registry.register("autoscaler_api_calls", help, calls.family());
        let help = "Time from submitting a task to its answer, per solved attempt";
        let histogram = recorder.solve_latency().clone();
        registry.register_with_unit("autoscaler_solve_latency", help, Unit::Seconds, histogram);
        registry.register_collector(Box::new(TickGauges {
            latest: latest.clone(),
        }));
        registry.register_collector(Box::new(TaskCounts { recorder }));
        Self {
            registry,
            latest,
            decisions,
            policy_failures,
            kinds: KindCap::default(),
            started: Instant::now(),
            stale_after: (tick * STALE_TICKS).max(STALE_FLOOR),
        }
    }

    /// Every metric in the Prometheus text format.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// The last tick's status JSON, as published to Redis; `None` before the first tick.
    pub fn status_json(&self) -> Option<String> {
        self.latest.get().map(|view| view.json)
    }

    /// Whether ticks keep coming.
    pub fn health(&self) -> Health {
        let since = match self.latest.get() {
            Some(view) => view.at.elapsed(),
            None if self.started.elapsed() < self.stale_after => return Health::Starting,
            None => self.started.elapsed(),
        };
        if since < self.stale_after {
            Health::Ticking
        } else {
            Health::Stale(since)
        }
    }
}

impl TickObserver for Telemetry {
    fn observe(&self, report: &TickReport, snapshot: Option<&Snapshot>, status: &HostStatus) {
        let direction = Direction::of(report).as_str().to_owned();
        let kind = self.kinds.admit(decision::kind(report));
        let labels = [("direction", direction), ("kind", kind)];
        self.decisions.get_or_create(&labels).inc();
        if let Some(class) = report.failure {
            self.policy_failures
                .get_or_create(&[("class", class)])
                .inc();
        }
        self.latest.store(TickView {
            at: Instant::now(),
            status: status.clone(),
            snapshot: snapshot.cloned(),
            json: status.to_json(),
        });
    }
}
