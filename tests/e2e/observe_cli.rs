//! The real binary: `run --dry-run` keeps the pool fixed while it reports what the policy
//! wants, and `status --watch` keeps redrawing the live hosts.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde_json::Value;

use autoscaler::sim::SimConfig;

use crate::support::{self, RedisServer};

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_config(dir: &Path, host_id: &str, redis_url: &str, sim_url: &str) -> std::path::PathBuf {
    let path = dir.join("autoscaler.toml");
    let text = format!(
        "host_id = \"{host_id}\"\n\
         [redis]\nurl = \"{redis_url}\"\n\
         [captchaai]\nurl = \"{sim_url}\"\nfirst_poll_delay = \"30ms\"\npoll_interval = \"50ms\"\n\
         [pool]\nmin_workers = 1\nmax_workers = 20\ntick = \"200ms\"\nwindow = \"2s\"\n"
    );
    std::fs::write(&path, text).expect("write config");
    path
}

async fn push_tasks(redis_url: &str, prefix: &str, n: usize) {
    let mut conn = support::conn(redis_url).await;
    for task in autoscaler::cli::commands::enqueue::synthetic(
        prefix,
        "userrecaptcha",
        n,
        autoscaler::clock::unix_ms(),
    ) {
        let _: () = conn.rpush("captcha:tasks", task).await.expect("push");
    }
}

fn tick_lines(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "tick")
        .collect()
}

async fn scrape(addr: SocketAddr) -> Option<String> {
    let response = reqwest::get(format!("http://{addr}/metrics")).await.ok()?;
    response.text().await.ok()
}

fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_keeps_the_pool_fixed_while_it_reports_the_wanted_target() {
    const FIXED: u64 = 3;
    let redis = RedisServer::start();
    let sim = support::fast_sim(SimConfig {
        solve_time: (Duration::from_millis(300), Duration::from_millis(600)),
        ..support::fast_sim_config()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "dry-run", &redis.url(), &sim.base_url());
    let addr = SocketAddr::from(([127, 0, 0, 1], support::free_port()));
    let log = dir.path().join("host.log");
    let _host = Killed(
        Command::new(env!("CARGO_BIN_EXE_autoscaler"))
            .args(["--log-format", "json", "run", "--config"])
            .arg(&config)
            .args(["--dry-run", "--dry-run-workers", &FIXED.to_string()])
            .args(["--metrics-listen", &addr.to_string()])
            .env("CAPTCHAAI_KEY", support::TEST_KEY)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn autoscaler run --dry-run"),
    );
    push_tasks(&redis.url(), "dry", 150).await;

    let wanted_more = support::eventually(Duration::from_secs(20), || async {
        let Some(text) = scrape(addr).await else {
            return false;
        };
        let target = gauge(&text, "autoscaler_target_workers").unwrap_or(0.0);
        target > FIXED as f64
            && gauge(&text, "autoscaler_workers") == Some(FIXED as f64)
            && gauge(&text, "autoscaler_dry_run") == Some(1.0)
    })
    .await;
    assert!(
        wanted_more,
        "the exported target never rose above the fixed pool"
    );

    let three_ticks = support::eventually(Duration::from_secs(10), || async {
        tick_lines(&log).len() >= 3
    })
    .await;
    let ticks = tick_lines(&log);
    assert!(three_ticks, "too few tick lines: {ticks:?}");
    for tick in &ticks {
        assert_eq!(tick["fields"]["workers"], FIXED, "the pool moved: {tick}");
        assert_eq!(tick["fields"]["dry_run"], true, "{tick}");
    }
    let wanted: Vec<u64> = ticks
        .iter()
        .filter_map(|t| t["fields"]["target"].as_u64())
        .collect();
    assert!(
        wanted.iter().any(|&t| t > FIXED),
        "logged targets: {wanted:?}"
    );
    assert!(
        sim.stats().max_concurrent <= FIXED as u32,
        "the simulator saw {} solves at once",
        sim.stats().max_concurrent
    );
}

/// Sends the child's stdout lines to a channel from a thread of its own.
fn lines_of(stdout: ChildStdout) -> std_mpsc::Receiver<String> {
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Frames of `status --watch` as they arrive, each the lines under its title.
struct Frames {
    lines: std_mpsc::Receiver<String>,
    pending: Option<Vec<String>>,
}

impl Frames {
    /// The first complete frame (one is complete when the next title arrives) that satisfies
    /// `check`, if one arrives within `timeout`.
    fn find(
        &mut self,
        timeout: Duration,
        check: impl Fn(&[String]) -> bool,
    ) -> Option<Vec<String>> {
        let deadline = Instant::now() + timeout;
        while let Some(frame) = self.next(deadline) {
            if check(&frame) {
                return Some(frame);
            }
        }
        None
    }

    /// The next complete frame, if it arrives before `deadline`.
    fn next(&mut self, deadline: Instant) -> Option<Vec<String>> {
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            if line.starts_with("autoscaler status at ") {
                if let Some(done) = self.pending.replace(vec![line]) {
                    return Some(done);
                }
            } else if let Some(frame) = &mut self.pending {
                frame.push(line);
            }
        }
    }
}

/// The DONE column of `host`'s row in a frame.
fn done_in(frame: &[String], host: &str) -> Option<u64> {
    let row = frame.iter().find(|line| line.starts_with(host))?;
    row.split_whitespace().nth(4)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_redraws_with_the_hosts_latest_numbers() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(support::fast_sim_config()).await;
    let config = support::fast_config(&redis.url(), &sim.base_url());
    let host_id = config.host_id();
    let running = support::InProcess::start(config);
    let dir = tempfile::tempdir().expect("temp dir");
    let status_config = write_config(dir.path(), "watcher", &redis.url(), &sim.base_url());
    let mut watcher = Killed(
        Command::new(env!("CARGO_BIN_EXE_autoscaler"))
            .args(["status", "--watch", "--interval", "200ms", "--config"])
            .arg(&status_config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn autoscaler status --watch"),
    );
    let stdout = watcher.0.stdout.take().expect("stdout");
    let mut frames = Frames {
        lines: lines_of(stdout),
        pending: None,
    };

    let first = frames
        .find(Duration::from_secs(15), |frame| {
            done_in(frame, &host_id).is_some()
        })
        .expect("a frame lists the running host");
    assert_eq!(done_in(&first, &host_id), Some(0), "{first:?}");
    assert!(
        first.iter().all(|line| !line.contains('\x1b')),
        "ANSI codes in a pipe"
    );
    assert!(first.iter().any(|l| l.starts_with("HOST ")), "{first:?}");
    let row = first.iter().find(|l| l.starts_with(&host_id)).expect("row");
    assert!(row.contains("threshold"), "the row names the policy: {row}");

    push_tasks(&redis.url(), "watched", 10).await;
    let refreshed = frames.find(Duration::from_secs(20), |frame| {
        done_in(frame, &host_id) == Some(10)
    });
    assert!(refreshed.is_some(), "no frame showed the 10 finished tasks");

    drop(watcher);
    running.stop().await;
}
