//! Running a fixture policy in the real host: a private `redis-server`, the simulator, the
//! pool in process, every tick's report, the last published status, and the host's own log
//! lines for this policy.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use redis::AsyncCommands;
use serde_json::Value;
use tokio::sync::mpsc;

use autoscaler::config::Config;
use autoscaler::policy::embedded::built_policy_path;
use autoscaler::scaler::TickReport;

use crate::support::{self, RedisServer};

/// The CPU deadline the tests run policies under (the default).
pub const DEADLINE: Duration = Duration::from_millis(50);
/// What a failing tick may take beyond the deadline: a fresh instance, Redis round trips and
/// a loaded two-core machine running debug builds.
pub const MARGIN: Duration = Duration::from_millis(250);

/// A host running one policy file, until [`Host::finish`].
pub struct Host {
    _dir: tempfile::TempDir,
    pub policy: PathBuf,
    pub config: Config,
    reports: mpsc::UnboundedReceiver<TickReport>,
    pool: support::InProcess,
    _redis: RedisServer,
    _sim: autoscaler::sim::SimHandle,
}

/// Copies the built fixture `fixture` to a file of its own, `<name>.wasm`, so the logs of
/// this test can be told apart by the policy's name.
pub fn policy_file(dir: &Path, fixture: &str, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::copy(built_policy_path(fixture), &path).expect("copy the built fixture");
    path
}

impl Host {
    /// Starts the host on fixture `fixture` (saved as `<name>.wasm`) with `params`.
    pub async fn start(
        fixture: &str,
        name: &str,
        params: &[(&str, toml::Value)],
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let policy = policy_file(dir.path(), fixture, name);
        Self::start_on(dir, policy, params, tweak).await
    }

    /// Starts the host on the policy file `policy`, which the caller laid out in `dir`.
    pub async fn start_on(
        dir: tempfile::TempDir,
        policy: PathBuf,
        params: &[(&str, toml::Value)],
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        capture_logs();
        let redis = RedisServer::start();
        let sim = support::fast_sim(support::fast_sim_config()).await;
        let mut config = support::fast_config(&redis.url(), &sim.base_url());
        config.pool.max_workers = 20;
        config.policy.file = Some(policy.clone());
        config.policy.cpu_deadline = DEADLINE;
        for (key, value) in params {
            config
                .policy
                .params
                .insert((*key).to_owned(), value.clone());
        }
        tweak(&mut config);
        let (observer, reports) = mpsc::unbounded_channel();
        let pool = support::InProcess::with(config.clone(), support::api_key(), Some(observer));
        Self {
            _dir: dir,
            policy,
            config,
            reports,
            pool,
            _redis: redis,
            _sim: sim,
        }
    }

    /// The next `n` tick reports.
    pub async fn ticks(&mut self, n: usize) -> Vec<TickReport> {
        let mut reports = Vec::with_capacity(n);
        for _ in 0..n {
            let report = tokio::time::timeout(Duration::from_secs(20), self.reports.recv())
                .await
                .expect("a tick within 20 s");
            match report {
                Some(report) => reports.push(report),
                None => panic!("the host stopped: {}", self.pool.ended().await),
            }
        }
        reports
    }

    /// Ticks until `check` holds on a report (at most `limit` ticks); returns them all.
    pub async fn ticks_until(
        &mut self,
        limit: usize,
        check: impl Fn(&TickReport) -> bool,
    ) -> Vec<TickReport> {
        let mut reports = Vec::new();
        while reports.len() < limit {
            let report = self.ticks(1).await.remove(0);
            let done = check(&report);
            reports.push(report);
            if done {
                return reports;
            }
        }
        panic!("no tick of {limit} matched: {reports:#?}");
    }

    /// The status the host published last.
    pub async fn status(&self) -> Value {
        let key = format!("autoscaler:status:{}", self.config.host_id());
        let mut conn = redis::Client::open(self.config.redis.url.as_str())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let raw: String = conn.get(key).await.expect("the host published its status");
        serde_json::from_str(&raw).expect("status JSON")
    }

    /// Replaces the policy file the way editors save: a temp file renamed over it.
    pub fn save(&self, bytes: &[u8]) {
        let temp = self.policy.with_extension("wasm.tmp");
        std::fs::write(&temp, bytes).expect("write the temp file");
        std::fs::rename(&temp, &self.policy).expect("rename over the policy");
    }

    /// Whether the host is still running.
    pub fn running(&self) -> bool {
        self.pool.running()
    }

    /// Stops the host and checks that it stopped cleanly.
    pub async fn finish(self) {
        self.pool.stop().await;
    }
}

/// The captured log, shared by every test of this binary.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(Arc::default)
}

/// Sends the host's log (info and up, as JSON lines) to memory for [`logs_of`].
pub fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let sink = captured().clone();
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_env_filter("autoscaler=info")
            .with_writer(move || LogWriter(sink.clone()))
            .try_init();
    });
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut sink = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sink.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every captured log line whose `policy` (or `from`) field is `policy`.
pub fn logs_of(policy: &str) -> Vec<Value> {
    let sink = captured().lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&sink)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["policy"] == policy || line["from"] == policy)
        .collect()
}

/// The messages of `logs` that start with `prefix`.
pub fn messages<'a>(logs: &'a [Value], prefix: &str) -> Vec<&'a Value> {
    logs.iter()
        .filter(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(prefix))
        })
        .collect()
}
