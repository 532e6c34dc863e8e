//! The registry as a scrape sees it, fed by hand-made ticks.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::calls::{ApiCall, ApiCalls, CallResult};
use super::telemetry::{Health, Telemetry};
use crate::metrics::Recorder;
use crate::policy::{ErrorRates, Snapshot};
use crate::pool::Counts;
use crate::queue::QueueMeasure;
use crate::scaler::{TickObserver, TickReport};
use crate::solver::ErrorClass;
use crate::status::HostStatus;

const TICK: Duration = Duration::from_secs(1);

fn telemetry() -> (Telemetry, Arc<Recorder>, ApiCalls) {
    let recorder = Arc::new(Recorder::new(Duration::from_secs(60)));
    let calls = ApiCalls::default();
    (
        Telemetry::new(recorder.clone(), &calls, TICK),
        recorder,
        calls,
    )
}

fn report(target: u32, reason: &str, failure: Option<&'static str>) -> TickReport {
    TickReport {
        tick: 4,
        queue: Some(QueueMeasure {
            depth: 42,
            oldest_age_ms: Some(2500),
        }),
        before: Counts {
            workers: 3,
            busy: 2,
            draining: 0,
            busy_active: 2,
        },
        target,
        reason: reason.to_owned(),
        failure,
        ..TickReport::default()
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        now_ms: 1_000_000,
        tick_ms: 1000,
        window_ms: 60_000,
        queue_depth: 42,
        oldest_task_age_ms: Some(2500),
        arrival_rate: 0.5,
        completion_rate: 0.25,
        workers: 3,
        busy: 2,
        draining: 0,
        utilization: 2.0 / 3.0,
        latency_p50_ms: Some(800),
        latency_p95_ms: Some(1500),
        attempts: 10,
        errors: ErrorRates {
            solver_capacity: 0.1,
            account: 0.0,
            task: 0.2,
            transport: 0.0,
        },
        balance_usd: None,
        balance_age_ms: None,
        submissions_paused: false,
        min_workers: 1,
        max_workers: 20,
        since_scale_up_ms: None,
        since_scale_down_ms: None,
    }
}

/// A status as a host would publish it; built from JSON so fields added later keep defaults.
fn status(report: &TickReport, dry_run: bool) -> HostStatus {
    let json = serde_json::json!({
        "host_id": "h1",
        "pid": 1,
        "tick": report.tick,
        "last_tick_ms": 1_700_000_000_000u64,
        "workers": report.before.workers,
        "busy": report.before.busy,
        "draining": report.before.draining,
        "queue_depth": report.queue.map(|q| q.depth),
        "target": report.target,
        "reason": report.reason,
        "min_workers": 1,
        "max_workers": 20,
        "policy": {
            "name": "threshold",
            "hash": "abc123",
            "failures": 0,
            "last_failure": null,
            "reloads": 2,
            "last_reload_error": null,
        },
        "paused_by": null,
        "balance_usd": 12.5,
        "tasks": {"taken": 0, "succeeded": 0, "failed": 0, "dead_lettered": 0, "requeued": 0},
        "dry_run": dry_run,
    });
    serde_json::from_value(json).expect("a status")
}

fn observe(telemetry: &Telemetry, report: &TickReport, dry_run: bool) {
    telemetry.observe(report, Some(&snapshot()), &status(report, dry_run));
}

/// The value of the series named exactly `series` (name and labels), if the text has it.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn encoded(telemetry: &Telemetry) -> String {
    telemetry.encode().expect("encodes")
}

#[tokio::test]
async fn a_tick_shows_as_pool_gauges_and_signals() {
    let (telemetry, _, _) = telemetry();
    observe(
        &telemetry,
        &report(7, "queue 42 > 20: +4 for backlog", None),
        false,
    );
    let text = encoded(&telemetry);
    assert_eq!(value(&text, "autoscaler_workers"), Some(3.0), "{text}");
    assert_eq!(value(&text, "autoscaler_busy_workers"), Some(2.0));
    assert_eq!(value(&text, "autoscaler_target_workers"), Some(7.0));
    assert_eq!(value(&text, "autoscaler_dry_run"), Some(0.0));
    assert_eq!(value(&text, "autoscaler_queue_depth"), Some(42.0));
    assert_eq!(
        value(&text, "autoscaler_oldest_task_age_seconds"),
        Some(2.5)
    );
    assert_eq!(
        value(&text, "autoscaler_solve_latency_p95_seconds"),
        Some(1.5)
    );
    assert_eq!(value(&text, "autoscaler_balance_usd"), Some(12.5));
    assert_eq!(value(&text, "autoscaler_policy_reloads_total"), Some(2.0));
    let task_errors = "autoscaler_error_rate_ratio{class=\"task\"}";
    assert_eq!(value(&text, task_errors), Some(0.2));
    let info = "autoscaler_policy_info{policy=\"threshold\",hash=\"abc123\"}";
    assert_eq!(value(&text, info), Some(1.0));
    let up = "autoscaler_decisions_total{direction=\"up\",kind=\"queue\"}";
    assert_eq!(value(&text, up), Some(1.0));
}

#[tokio::test]
async fn signals_the_tick_did_not_have_are_left_out() {
    let (telemetry, _, _) = telemetry();
    let report = report(3, "hold: queue metrics unavailable (refused)", None);
    let report = TickReport {
        queue: None,
        ..report
    };
    telemetry.observe(&report, None, &status(&report, false));
    let text = encoded(&telemetry);
    assert_eq!(value(&text, "autoscaler_workers"), Some(3.0));
    assert!(!text.contains("autoscaler_queue_depth"), "{text}");
    assert!(!text.contains("autoscaler_solve_latency_p95"), "{text}");
    let hold = "autoscaler_decisions_total{direction=\"hold\",kind=\"metrics_unavailable\"}";
    assert_eq!(value(&text, hold), Some(1.0));
}

#[tokio::test]
async fn nothing_of_the_tick_shows_before_the_first_one() {
    let (telemetry, _, _) = telemetry();
    let text = encoded(&telemetry);
    assert!(!text.contains("autoscaler_workers"), "{text}");
    assert_eq!(telemetry.status_json(), None);
    assert_eq!(value(&text, "autoscaler_tasks_taken_total"), Some(0.0));
}

#[tokio::test]
async fn decisions_and_policy_failures_are_counted_by_label() {
    let (telemetry, _, _) = telemetry();
    observe(
        &telemetry,
        &report(3, "hold: within thresholds", None),
        false,
    );
    observe(
        &telemetry,
        &report(3, "hold: within thresholds", None),
        false,
    );
    observe(&telemetry, &report(2, "low load for 60s: -1", None), false);
    observe(
        &telemetry,
        &report(3, "hold: policy failed", Some("trap")),
        false,
    );
    let text = encoded(&telemetry);
    let held = "autoscaler_decisions_total{direction=\"hold\",kind=\"within_thresholds\"}";
    assert_eq!(value(&text, held), Some(2.0), "{text}");
    let down = "autoscaler_decisions_total{direction=\"down\",kind=\"low_load\"}";
    assert_eq!(value(&text, down), Some(1.0));
    let failed = "autoscaler_decisions_total{direction=\"hold\",kind=\"policy_failed\"}";
    assert_eq!(value(&text, failed), Some(1.0));
    let trap = "autoscaler_policy_failures_total{class=\"trap\"}";
    assert_eq!(value(&text, trap), Some(1.0));
}

#[tokio::test]
async fn a_dry_run_shows_the_wanted_target_and_says_so() {
    let (telemetry, _, _) = telemetry();
    observe(&telemetry, &report(9, "queue 42 > 20: +6", None), true);
    let text = encoded(&telemetry);
    assert_eq!(value(&text, "autoscaler_dry_run"), Some(1.0));
    assert_eq!(value(&text, "autoscaler_target_workers"), Some(9.0));
    assert_eq!(value(&text, "autoscaler_workers"), Some(3.0));
}

#[tokio::test]
async fn task_outcomes_keep_dead_letters_apart_from_errors() {
    let (telemetry, recorder, _) = telemetry();
    for _ in 0..5 {
        recorder.taken();
    }
    recorder.completed(true);
    recorder.completed(true);
    recorder.completed(false);
    // A dead letter counts as a failed completion too, as the worker records it.
    recorder
        .totals
        .dead_lettered
        .fetch_add(1, Ordering::Relaxed);
    recorder.completed(false);
    recorder.totals.requeued.fetch_add(1, Ordering::Relaxed);
    let text = encoded(&telemetry);
    assert_eq!(value(&text, "autoscaler_tasks_taken_total"), Some(5.0));
    let outcome = |o: &str| value(&text, &format!("autoscaler_tasks_total{{outcome=\"{o}\"}}"));
    assert_eq!(outcome("success"), Some(2.0), "{text}");
    assert_eq!(outcome("error"), Some(1.0));
    assert_eq!(outcome("dead_letter"), Some(1.0));
    assert_eq!(outcome("requeued"), Some(1.0));
}

#[tokio::test]
async fn solve_latency_is_a_histogram_in_seconds() {
    let (telemetry, recorder, _) = telemetry();
    recorder.solved(Duration::from_millis(200));
    recorder.solved(Duration::from_secs(40));
    let text = encoded(&telemetry);
    let bucket = |le: &str| {
        let series = format!("autoscaler_solve_latency_seconds_bucket{{le=\"{le}\"}}");
        value(&text, &series)
    };
    assert_eq!(bucket("0.25"), Some(1.0), "{text}");
    assert_eq!(bucket("30"), Some(1.0));
    assert_eq!(bucket("45"), Some(2.0));
    assert_eq!(
        value(&text, "autoscaler_solve_latency_seconds_count"),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "autoscaler_solve_latency_seconds_sum"),
        Some(40.2)
    );
}

#[tokio::test]
async fn api_calls_show_by_call_and_result() {
    let (telemetry, _, calls) = telemetry();
    calls.record(ApiCall::Submit, CallResult::Ok);
    calls.record(ApiCall::Poll, CallResult::Error(ErrorClass::Transport));
    let text = encoded(&telemetry);
    let submit = "autoscaler_api_calls_total{call=\"submit\",result=\"ok\"}";
    assert_eq!(value(&text, submit), Some(1.0), "{text}");
    let poll = "autoscaler_api_calls_total{call=\"poll\",result=\"transport\"}";
    assert_eq!(value(&text, poll), Some(1.0));
}

#[tokio::test]
async fn status_json_is_the_status_as_published() {
    let (telemetry, _, _) = telemetry();
    let report = report(7, "queue 42 > 20: +4", None);
    let published = status(&report, false);
    telemetry.observe(&report, Some(&snapshot()), &published);
    assert_eq!(telemetry.status_json(), Some(published.to_json()));
}

#[tokio::test(start_paused = true)]
async fn health_goes_stale_when_ticks_stop() {
    let (telemetry, _, _) = telemetry();
    assert_eq!(telemetry.health(), Health::Starting);
    observe(
        &telemetry,
        &report(3, "hold: within thresholds", None),
        false,
    );
    assert_eq!(telemetry.health(), Health::Ticking);
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(telemetry.health(), Health::Ticking);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(telemetry.health(), Health::Stale(Duration::from_secs(11)));
}

#[tokio::test(start_paused = true)]
async fn health_goes_stale_when_the_first_tick_never_comes() {
    let (telemetry, _, _) = telemetry();
    tokio::time::advance(Duration::from_secs(12)).await;
    assert_eq!(telemetry.health(), Health::Stale(Duration::from_secs(12)));
}
