//! Hot reload in the real binary: a renamed-in policy takes over within two ticks in the same
//! process, a corrupt file is refused while the running policy keeps deciding, and SIGHUP
//! forces a reload of unchanged bytes (from the compile cache). `editors` covers the other
//! ways files change, in process.

mod editors;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redis::AsyncCommands;
use serde_json::Value;

use autoscaler::policy::embedded::built_policy_path;

use crate::support::{self, Host, RedisServer};

const HOST_ID: &str = "reload-test";

fn write_by_rename(target: &Path, bytes: &[u8]) {
    let temp = target.with_extension("wasm.tmp");
    std::fs::write(&temp, bytes).expect("write temp policy");
    std::fs::rename(&temp, target).expect("rename over the policy");
}

fn spawn_host(dir: &Path, sim_url: &str, redis_url: &str, policy: &Path) -> Child {
    let config = dir.join("autoscaler.toml");
    std::fs::write(
        &config,
        format!(
            "host_id = \"{HOST_ID}\"\n\
             [redis]\nurl = \"{redis_url}\"\n\
             [captchaai]\nurl = \"{sim_url}\"\n\
             first_poll_delay = \"50ms\"\npoll_interval = \"50ms\"\n\
             [pool]\nmin_workers = 1\nmax_workers = 10\ntick = \"500ms\"\nwindow = \"5s\"\n\
             [policy]\nreload_debounce = \"100ms\"\n"
        ),
    )
    .expect("write config");
    let log = std::fs::File::create(dir.join("host.log")).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--policy")
        .arg(policy)
        .env("CAPTCHAAI_KEY", support::TEST_KEY)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn autoscaler run")
}

async fn status(conn: &mut redis::aio::MultiplexedConnection) -> Option<Value> {
    let raw: Option<String> = conn
        .get(format!("autoscaler:status:{HOST_ID}"))
        .await
        .ok()?;
    serde_json::from_str(&raw?).ok()
}

/// Waits for a status that satisfies `check`, returning it.
async fn wait_status(
    conn: &mut redis::aio::MultiplexedConnection,
    timeout: Duration,
    check: impl Fn(&Value) -> bool,
) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if let Some(status) = status(conn).await.filter(|s| check(s)) {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_policy_takes_over_within_two_ticks_and_a_corrupt_one_is_refused() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(support::fast_sim_config()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = dir.path().join("policy.wasm");
    let threshold = std::fs::read(built_policy_path("threshold")).expect("built threshold");
    let fixed = std::fs::read(built_policy_path("static")).expect("built static policy");
    std::fs::write(&policy, &threshold).expect("write policy");
    let mut conn = support::conn(&redis.url()).await;
    let tasks = autoscaler::cli::commands::enqueue::synthetic("flow", "userrecaptcha", 300, 1);
    let _: () = conn.rpush("captcha:tasks", &tasks).await.expect("push");
    let mut host = spawn_host(dir.path(), &sim.base_url(), &redis.url(), &policy);
    let pid = host.id();

    let first = wait_status(&mut conn, Duration::from_secs(30), |s| {
        s["tick"].as_u64() >= Some(2)
    })
    .await
    .expect("the host publishes its status");
    let old_hash = first["policy"]["hash"].as_str().expect("hash").to_owned();
    assert_eq!(first["policy"]["name"], "policy.wasm");

    let before = status(&mut conn).await.expect("status")["tick"]
        .as_u64()
        .expect("tick");
    write_by_rename(&policy, &fixed);
    let swapped = wait_status(&mut conn, Duration::from_secs(10), |s| {
        s["policy"]["hash"].as_str() != Some(old_hash.as_str())
    })
    .await
    .expect("the new policy takes over");
    let new_hash = swapped["policy"]["hash"].as_str().expect("hash").to_owned();
    let after = swapped["tick"].as_u64().expect("tick");
    assert!(
        after <= before + 2,
        "took over at tick {after}, renamed after tick {before}"
    );
    assert!(
        swapped["reason"]
            .as_str()
            .expect("reason")
            .contains("static"),
        "{swapped}"
    );
    assert_eq!(swapped["policy"]["reloads"], 1);
    assert!(
        host.try_wait().expect("wait").is_none(),
        "the host is still the same process"
    );
    assert_eq!(host.id(), pid);

    write_by_rename(&policy, b"\0asm this is not a component");
    let refused = wait_status(&mut conn, Duration::from_secs(10), |s| {
        s["policy"]["last_reload_error"].is_string()
    })
    .await
    .expect("the corrupt file is reported in the status");
    assert_eq!(
        refused["policy"]["hash"],
        new_hash.as_str(),
        "the running policy stays"
    );
    let later_tick = refused["tick"].as_u64().expect("tick") + 2;
    let still = wait_status(&mut conn, Duration::from_secs(10), |s| {
        s["tick"].as_u64() >= Some(later_tick)
    })
    .await
    .expect("ticks go on after a refused reload");
    assert!(
        still["reason"].as_str().expect("reason").contains("static"),
        "{still}"
    );
    assert!(
        host.try_wait().expect("wait").is_none(),
        "a bad file never stops the host"
    );

    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let exit = tokio::task::spawn_blocking(move || host.wait())
        .await
        .expect("join");
    assert!(
        exit.expect("exit status").success(),
        "SIGTERM drains and exits 0"
    );

    let log = std::fs::read_to_string(dir.path().join("host.log")).expect("log");
    assert!(
        log.contains("failed to load policy"),
        "the error is logged:\n{log}"
    );
    let results: usize = conn.hlen("captcha:results").await.expect("hlen");
    let queued: usize = conn.llen("captcha:tasks").await.expect("llen");
    let processing: usize = conn
        .llen(format!("captcha:processing:{HOST_ID}"))
        .await
        .expect("llen");
    assert_eq!(processing, 0, "a clean stop leaves nothing in processing");
    assert_eq!(
        results + queued,
        300,
        "nothing lost across reloads and the stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_policy_even_when_its_bytes_are_unchanged() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(support::fast_sim_config()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = dir.path().join("policy.wasm");
    std::fs::copy(built_policy_path("static"), &policy).expect("write policy");
    let mut conn = support::conn(&redis.url()).await;
    let mut host = spawn_host(dir.path(), &sim.base_url(), &redis.url(), &policy);
    let pid = host.id().to_string();

    let first = wait_status(&mut conn, Duration::from_secs(30), |s| {
        s["tick"].as_u64() >= Some(2)
    })
    .await
    .expect("the host publishes its status");
    assert_eq!(first["policy"]["reloads"], 0);
    let _ = Command::new("kill").args(["-HUP", &pid]).status();
    let reloaded = wait_status(&mut conn, Duration::from_secs(10), |s| {
        s["policy"]["reloads"] == 1
    })
    .await
    .expect("SIGHUP reloads the policy");
    assert_eq!(reloaded["policy"]["hash"], first["policy"]["hash"]);
    assert!(
        host.try_wait().expect("wait").is_none(),
        "SIGHUP does not stop the host"
    );

    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let exit = tokio::task::spawn_blocking(move || host.wait())
        .await
        .expect("join");
    assert!(exit.expect("exit status").success());
    let log = std::fs::read_to_string(dir.path().join("host.log")).expect("log");
    let swap = log
        .lines()
        .find(|line| line.contains("policy swapped in"))
        .unwrap_or_else(|| panic!("the swap is logged:\n{log}"));
    assert!(
        swap.contains("cached=true"),
        "unchanged bytes are not compiled again: {swap}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_a_policy_file_is_logged_and_ignored() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(support::fast_sim_config()).await;
    let mut host = Host::start("hup-host", &redis.url(), &sim.base_url(), "");
    let conn = support::conn(&redis.url()).await;
    let ticking = support::eventually(Duration::from_secs(20), || {
        let mut conn = conn.clone();
        async move {
            let status: Option<String> =
                conn.get("autoscaler:status:hup-host").await.ok().flatten();
            status.is_some()
        }
    })
    .await;
    assert!(ticking, "the host should be ticking");
    host.signal("HUP");
    let noted = support::eventually(Duration::from_secs(5), || {
        let seen = !host.logged("SIGHUP: no policy file to reload").is_empty();
        async move { seen }
    })
    .await;
    assert!(noted, "the signal is logged: {}", host.stderr());
    assert_eq!(
        host.wait_exit(Duration::from_millis(500)),
        None,
        "the host runs on"
    );
}
