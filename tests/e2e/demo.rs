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

#[test]
fn an_interrupted_demo_drains_and_deletes_its_keys() {
    use std::io::{BufRead, BufReader};
    let redis = RedisServer::start();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args(["demo", "--wave", "60", "--waves", "3"])
        .env("REDIS_URL", redis.url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run autoscaler demo");
    let mut lines = BufReader::new(demo.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        let pushed = line.contains(">>> pushed");
        seen.push(line);
        if pushed {
            break;
        }
    }
    crate::support::signal(demo.id(), "INT");
    seen.extend(lines.map_while(Result::ok));
    let status = demo.wait().expect("wait");
    let stdout = seen.join("\n");
    assert!(status.success(), "{status}\n{stdout}");
    assert!(stdout.contains(">>> interrupted"), "{stdout}");
    assert!(stdout.contains("lost            0"), "{stdout}");

    let client = redis::Client::open(redis.url()).expect("url");
    let mut conn = client.get_connection().expect("connect");
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).expect("keys");
    let left: Vec<_> = keys
        .iter()
        .filter(|k| k.starts_with("autoscaler-demo:") || k.starts_with("autoscaler:heartbeat:"))
        .collect();
    assert!(left.is_empty(), "the demo's keys are gone: {left:?}");
    let hosts: Vec<String> = redis::cmd("SMEMBERS")
        .arg("autoscaler:hosts")
        .query(&mut conn)
        .expect("smembers");
    assert!(hosts.is_empty(), "the demo left the live hosts: {hosts:?}");
}
