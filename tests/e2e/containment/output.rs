//! Policies that decide, but badly: targets out of range, a megabyte of reason, a flood of
//! log output, and attempts to reach outside the sandbox. None of it is a failure; all of it
//! is bounded.

use std::net::TcpListener;

use super::harness::{DEADLINE, Host, MARGIN, logs_of, messages};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_of_u32_max_is_clamped_to_max_workers_and_counted() {
    let mut host = Host::start("wild_target", "wild-max", &[], |_| {}).await;
    let reports = host.ticks(3).await;
    let status = host.status().await;
    host.finish().await;
    for report in &reports {
        assert_eq!(report.target, 20, "{report:?}");
        assert_eq!(report.failure, None);
        assert_eq!(
            report.reason,
            "wild: 4294967295 workers (asked 4294967295, clamped)"
        );
    }
    assert_eq!(status["policy"]["clamped"], 3, "{status}");
    assert_eq!(status["policy"]["failures"], 0);
    assert_eq!(
        status["workers"], 20,
        "the pool grew to the ceiling, no further"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_of_zero_is_clamped_to_min_workers_and_counted() {
    let mut host = Host::start("wild_target", "wild-zero", &[("target", 0.into())], |_| {}).await;
    let reports = host.ticks(3).await;
    let status = host.status().await;
    host.finish().await;
    for report in &reports {
        assert_eq!(report.target, 2, "{report:?}");
        assert_eq!(report.reason, "wild: 0 workers (asked 0, clamped)");
    }
    assert_eq!(status["policy"]["clamped"], 3, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_reason_is_cut_to_max_reason_bytes() {
    let mut host = Host::start("huge_reason", "huge-reason", &[], |_| {}).await;
    let reports = host.ticks(3).await;
    let status = host.status().await;
    host.finish().await;
    for report in &reports {
        assert_eq!(report.failure, None);
        assert!(report.reason.starts_with("huge: é long reason"));
        assert!(report.reason.len() <= 512, "{} bytes", report.reason.len());
        assert!(report.reason.len() > 500, "cut, not emptied");
    }
    let published = status["reason"].as_str().expect("reason");
    assert!(published.len() <= 512);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_is_bounded_per_call_and_the_rest_dropped() {
    // 400 lines of a kilobyte per call: a hundred times the budget, and quick enough to stay
    // within the deadline on a loaded machine.
    let lines = [("lines", 400.into())];
    let mut host = Host::start("log_flood", "log-flood", &lines, |_| {}).await;
    let reports = host.ticks(3).await;
    host.finish().await;
    for report in &reports {
        assert_eq!(report.failure, None, "{report:?}");
        assert!(report.elapsed <= DEADLINE + MARGIN, "{:?}", report.elapsed);
    }
    let logs = logs_of("log-flood.wasm");
    let written: usize = messages(&logs, "policy: ")
        .iter()
        .map(|line| line["message"].as_str().map_or(0, str::len) - "policy: ".len())
        .sum();
    let dropped = messages(&logs, "policy log output over policy.max_log_bytes dropped");
    // One configure and three decides, each with its own budget of 4096 bytes.
    assert_eq!(dropped.len(), 4, "{logs:#?}");
    assert!(
        written <= 4 * 4096,
        "{written} bytes of policy output logged"
    );
    assert!(
        written >= 4 * 4000,
        "the budget is used, not wasted: {written}"
    );
    assert!(
        dropped
            .iter()
            .all(|line| line["dropped_bytes"].as_u64() > Some(390_000))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_environment_arguments_and_sockets_are_out_of_reach() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = i64::from(listener.local_addr().expect("addr").port());
    let mut host = Host::start("sandbox_escape", "escape", &[("port", port.into())], |_| {}).await;
    let reports = host.ticks(2).await;
    host.finish().await;
    let reason = &reports[1].reason;
    assert!(reason.starts_with("file: denied ("), "{reason}");
    assert!(reason.contains("; env: 0 vars; args: 0; "), "{reason}");
    assert!(reason.contains("; socket: denied ("), "{reason}");
    let accepted = listener.accept();
    assert!(
        accepted
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "nothing connected: {accepted:?}"
    );
}
