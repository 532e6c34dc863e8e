//! Hostile policies in the real host: each fixture under `tests/fixtures/policies` (and a few
//! hand-made files) runs in a real pool against a private Redis and the simulator.
//!
//! Whatever the policy does, the host keeps running; a failing tick keeps the worker count
//! and ends within the CPU deadline plus a margin; each failure is logged once with its class
//! and counted; the next tick runs on a fresh instance with the last good state; after
//! `policy.fallback_after` failures in a row the embedded default policy takes over, and a
//! good file brings the configured policy back.

pub mod harness;
mod load;
mod output;

use std::time::Duration;

use autoscaler::config::Config;

use harness::{Host, MARGIN, logs_of, messages};

/// Runs `fixture` for two good ticks, then through its failures into the fallback, and
/// checks every promise above for failure class `class`.
async fn contained(fixture: &str, name: &str, class: &str, tweak: impl FnOnce(&mut Config)) {
    contained_within(fixture, name, class, MARGIN, tweak).await;
}

/// As [`contained`], with a failing tick allowed `margin` past the CPU deadline.
async fn contained_within(
    fixture: &str,
    name: &str,
    class: &str,
    margin: Duration,
    tweak: impl FnOnce(&mut Config),
) {
    let params = [("good_ticks", 2.into()), ("workers", 5.into())];
    let mut host = Host::start(fixture, name, &params, |config| {
        config.policy.fallback_after = 3;
        tweak(config);
    })
    .await;
    let reports = host.ticks(7).await;
    let status = host.status().await;
    let deadline = host.config.policy.cpu_deadline;
    assert!(host.running(), "the host keeps running");
    host.finish().await;

    for report in &reports[..2] {
        assert_eq!((report.failure, report.target), (None, 5), "{report:?}");
    }
    for report in &reports[2..5] {
        assert_eq!(report.failure, Some(class), "{report:?}");
        assert_eq!(
            report.target, 5,
            "a failed tick keeps the count: {report:?}"
        );
        assert_eq!(report.before.active(), 5);
        assert!(
            report.elapsed <= deadline + margin,
            "the failing tick took {:?}",
            report.elapsed
        );
    }
    for report in &reports[5..] {
        assert_eq!(report.failure, None, "the default decides: {report:?}");
    }

    let file = format!("{name}.wasm");
    let policy = &status["policy"];
    assert_eq!(policy["name"], "threshold (embedded)", "{status}");
    assert_eq!(policy["failures"], 3);
    assert_eq!(policy["failures_by_class"][class], 3);
    assert_eq!(policy["consecutive_failures"], 0);
    assert!(policy["last_call_ms"].as_u64().is_some(), "{status}");
    let fallback = policy["fallback"]
        .as_str()
        .expect("the status says it fell back");
    assert!(
        fallback.starts_with(&format!("{file} failed 3 calls in a row ({class}:")),
        "{fallback}"
    );

    let logs = logs_of(&file);
    let failures = messages(&logs, "policy failed");
    assert_eq!(failures.len(), 3, "one line per failure: {logs:#?}");
    assert!(
        failures.iter().all(|line| line["class"] == class),
        "{failures:#?}"
    );
    assert_eq!(
        messages(&logs, "policy keeps failing: falling back").len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_cut_at_the_deadline() {
    contained("spin", "spin", "timeout", |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleep_is_refused_rather_than_waited_for() {
    contained("sleeper", "sleeper", "trap", |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_traps_on_the_stack_limit() {
    contained("deep_recursion", "deep-recursion", "trap", |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_runs_out_of_memory() {
    contained("memory_bomb", "memory-bomb", "out_of_memory", |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_on_every_call_falls_back_to_the_default() {
    contained("trap_always", "trap-always", "trap", |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_state_cannot_be_built_under_the_memory_limit() {
    contained("huge_state", "huge-state-oom", "out_of_memory", |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_state_is_refused_as_a_bad_output() {
    // Room and time to build the blob, so the host, not the limits, must refuse it; the host
    // copies the 100 MB out of the guest before it can measure it, past the deadline.
    let margin = Duration::from_secs(2);
    contained_within(
        "huge_state",
        "huge-state-bad",
        "bad_output",
        margin,
        |config| {
            config.policy.memory_mib = 160;
            config.policy.cpu_deadline = Duration::from_secs(2);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_after_a_trap_runs_on_a_fresh_instance_with_the_last_good_state() {
    let mut host = Host::start("trap_every_third", "every-third", &[], |_| {}).await;
    let reports = host.ticks(7).await;
    host.finish().await;
    let reasons: Vec<&str> = reports.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        reasons[0],
        "call 1 of this instance, after 0 good decisions"
    );
    assert_eq!(
        reasons[1],
        "call 2 of this instance, after 1 good decisions"
    );
    assert!(
        reasons[2].starts_with("hold: policy failed (trap)"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons[3],
        "call 1 of this instance, after 2 good decisions"
    );
    assert_eq!(
        reasons[4],
        "call 2 of this instance, after 3 good decisions"
    );
    assert!(
        reasons[5].starts_with("hold: policy failed (trap)"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons[6],
        "call 1 of this instance, after 4 good decisions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_file_ends_the_fallback() {
    let mut host = Host::start("trap_always", "recovers", &[], |config| {
        config.policy.fallback_after = 2;
    })
    .await;
    host.ticks(3).await;
    assert!(host.status().await["policy"]["fallback"].is_string());
    let fixed = std::fs::read(autoscaler::policy::embedded::built_policy_path("static"))
        .expect("built static policy");
    host.save(&fixed);
    host.ticks_until(40, |r| r.reason == "static: 4 workers")
        .await;
    let status = host.status().await;
    host.finish().await;
    assert_eq!(status["policy"]["name"], "recovers.wasm", "{status}");
    assert_eq!(status["policy"]["fallback"], serde_json::Value::Null);
    assert_eq!(status["policy"]["reloads"], 1);
}
