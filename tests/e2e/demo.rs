//! The README's run command, `autoscaler demo`, against a private Redis.

use std::process::Command;

use crate::support::RedisServer;

#[test]
fn the_demo_scales_up_and_down_and_loses_nothing() {
    let redis = RedisServer::start();
    let output = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args([
            "demo",
            "--wave",
            "60",
            "--waves",
            "2",
            "--max-workers",
            "15",
        ])
        .env("REDIS_URL", redis.url())
        .output()
        .expect("run autoscaler demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let field = |name: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name:?} in the summary:\n{stdout}"))
    };
    assert_eq!(field("tasks in"), 120);
    assert_eq!(field("results out"), 120);
    assert_eq!(field("lost"), 0);
    assert!(field("peak workers") >= 5, "{stdout}");
    assert!(stdout.contains("scale events"), "{stdout}");
}

#[test]
fn the_demo_explains_a_missing_redis() {
    let port = crate::support::free_port();
    let output = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .arg("demo")
        .env("REDIS_URL", format!("redis://127.0.0.1:{port}"))
        .output()
        .expect("run autoscaler demo");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("redis-server"),
        "the error says how to start Redis: {stderr}"
    );
}
