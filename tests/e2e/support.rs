//! Test support: a private `redis-server` that can be stopped and restarted on its AOF, the
//! simulator, a pool configured for speed, the real binary as a child process, and the
//! accounting every fault test ends with.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use autoscaler::config::{
    CaptchaAiConfig, Config, MetricsConfig, PolicyConfig, PoolConfig, RedisConfig,
};
use autoscaler::queue::{Keys, Queue};
use autoscaler::scaler::TickReport;
use autoscaler::service::RunSummary;
use autoscaler::sim::{SimConfig, SimHandle};
use autoscaler::solver::ApiKey;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::redis_server::{RedisServer, free_port, signal};

/// A key the simulator accepts.
pub const TEST_KEY: &str = "test0000test0000test0000test0000";

/// A simulator with fast solves on a free loopback port.
pub async fn fast_sim(config: SimConfig) -> SimHandle {
    autoscaler::sim::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .expect("start the simulator")
}

pub fn fast_sim_config() -> SimConfig {
    SimConfig {
        solve_time: (Duration::from_millis(20), Duration::from_millis(80)),
        threads: 1000,
        balance_usd: 1000.0,
        seed: Some(7),
        ..SimConfig::default()
    }
}

/// A pool config with short timings against the given Redis and simulator.
pub fn fast_config(redis_url: &str, sim_url: &str) -> Config {
    Config {
        host_id: Some(format!("test-{}", free_port())),
        redis: RedisConfig {
            url: redis_url.to_owned(),
            ..RedisConfig::default()
        },
        captchaai: CaptchaAiConfig {
            url: sim_url.to_owned(),
            first_poll_delay: Duration::from_millis(30),
            poll_interval: Duration::from_millis(30),
            http_timeout: Duration::from_secs(2),
            balance_interval: Duration::from_millis(500),
            ..CaptchaAiConfig::default()
        },
        pool: PoolConfig {
            min_workers: 2,
            max_workers: 20,
            tick: Duration::from_millis(200),
            window: Duration::from_secs(2),
            task_timeout: Duration::from_secs(20),
            drain_timeout: Duration::from_secs(5),
            heartbeat_ttl: Duration::from_secs(3),
            account_pause: Duration::from_secs(30),
            retry_backoff_max: Duration::from_millis(200),
            unsolvable_resubmits: 1,
        },
        policy: PolicyConfig {
            reload_debounce: Duration::from_millis(100),
            ..PolicyConfig::default()
        },
        metrics: MetricsConfig::off(),
        dry_run: None,
    }
}

pub fn api_key() -> ApiKey {
    ApiKey::new(TEST_KEY)
}

/// A queue handle on the config's keys.
pub async fn queue(config: &Config) -> Queue {
    let keys = Keys::new(&config.redis, &config.host_id());
    Queue::connect(&config.redis.url, keys, None)
        .await
        .expect("connect to the test redis")
}

/// A multiplexed connection to the test's Redis.
pub async fn conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test redis")
}

/// Where every task ended, read from Redis with the default key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounting {
    pub results: usize,
    pub dead: usize,
    pub queued: usize,
    /// Tasks in every host's processing list together.
    pub processing: usize,
}

impl Accounting {
    pub async fn read(conn: &mut redis::aio::MultiplexedConnection) -> Self {
        use redis::AsyncCommands;
        let lists: Vec<String> = conn.keys("captcha:processing:*").await.expect("keys");
        let mut processing = 0;
        for list in lists {
            processing += conn.llen::<_, usize>(list).await.expect("llen");
        }
        Self {
            results: conn.hlen("captcha:results").await.expect("hlen"),
            dead: conn.llen("captcha:dead").await.expect("llen"),
            queued: conn.llen("captcha:tasks").await.expect("llen"),
            processing,
        }
    }

    /// `n` results, nothing dead-lettered, queued or held.
    pub fn answered(n: usize) -> Self {
        Self {
            results: n,
            dead: 0,
            queued: 0,
            processing: 0,
        }
    }

    /// `n` tasks in the queue and nothing else.
    pub fn waiting(n: usize) -> Self {
        Self {
            results: 0,
            dead: 0,
            queued: n,
            processing: 0,
        }
    }

    /// Every task answered once: `n` results or dead letters, nothing queued or held.
    pub fn settled(&self, n: usize) -> bool {
        self.results + self.dead == n && self.queued == 0 && self.processing == 0
    }
}

/// Waits until `n` tasks are settled (see [`Accounting::settled`]) and returns the count.
pub async fn settle(url: &str, n: usize, timeout: Duration) -> Accounting {
    let mut conn = conn(url).await;
    let deadline = Instant::now() + timeout;
    loop {
        let accounting = Accounting::read(&mut conn).await;
        if accounting.settled(n) || Instant::now() > deadline {
            return accounting;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `autoscaler run` as a child process, with a config file and JSON logs in a folder of its own.
pub struct Host {
    child: Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Host {
    /// Starts a host; `pool` is extra `[pool]` TOML lines (they override the defaults here).
    pub fn start(host_id: &str, redis_url: &str, sim_url: &str, pool: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the host");
        let config = dir.path().join("autoscaler.toml");
        std::fs::write(&config, host_toml(host_id, redis_url, sim_url, pool)).expect("config");
        let log = dir.path().join("host.log");
        let child = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
            .args(["--log-format", "json", "run", "--config"])
            .arg(&config)
            .env("CAPTCHAAI_KEY", TEST_KEY)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn autoscaler run");
        Self {
            child,
            log,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, name: &str) {
        signal(self.pid(), name);
    }

    /// Kills the host at once (SIGKILL): no drain, no cleanup.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` for the host to exit; its exit code, or `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Everything the host wrote to stderr so far: log lines and a final error.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The host's log lines so far, parsed.
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Log lines whose message contains `text`.
    pub fn logged(&self, text: &str) -> Vec<serde_json::Value> {
        self.log_lines()
            .into_iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(text))
            })
            .collect()
    }

    /// CPU time the host has used so far (user + system), from `/proc`.
    pub fn cpu_time(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // After the command name: state is field 0, utime field 11, stime field 12; 100 Hz.
        Duration::from_millis((ticks(11) + ticks(12)) * 10)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A host's config file: fast polling against the given Redis and simulator. `pool` holds
/// extra `[pool]` lines; a key set there replaces the default here.
pub fn host_toml(host_id: &str, redis_url: &str, sim_url: &str, pool: &str) -> String {
    let defaults = [
        ("tick", "\"200ms\""),
        ("window", "\"2s\""),
        ("task_timeout", "\"20s\""),
        ("retry_backoff_max", "\"200ms\""),
        ("heartbeat_ttl", "\"3s\""),
        ("drain_timeout", "\"5s\""),
    ];
    let mut pool_lines = pool.trim().to_owned();
    for (key, value) in defaults {
        if !pool.contains(&format!("{key} =")) {
            pool_lines.push_str(&format!("\n{key} = {value}"));
        }
    }
    format!(
        "host_id = \"{host_id}\"\n\
         [redis]\nurl = \"{redis_url}\"\n\
         [captchaai]\nurl = \"{sim_url}\"\nfirst_poll_delay = \"30ms\"\n\
         poll_interval = \"50ms\"\nmax_polls = 200\nhttp_timeout = \"2s\"\n\
         balance_interval = \"1s\"\n\
         [pool]\n{pool_lines}\n"
    )
}

/// `n` valid tasks with ids `<prefix>-<i>`.
pub fn tasks(prefix: &str, n: usize) -> Vec<String> {
    let params = serde_json::json!({"googlekey": "6Le-test", "pageurl": "https://example.com/"});
    let params = params.as_object().cloned().unwrap_or_default();
    (0..n)
        .map(|i| {
            let task = autoscaler::task::Task {
                id: format!("{prefix}-{i}"),
                method: "userrecaptcha".into(),
                params: params.clone(),
                enqueued_at_ms: None,
                deadline_ms: None,
            };
            task.to_json()
        })
        .collect()
}

/// Pushes raw tasks onto the default queue in batches.
pub async fn push(conn: &mut redis::aio::MultiplexedConnection, tasks: &[String]) {
    use redis::AsyncCommands;
    for batch in tasks.chunks(500) {
        let _: () = conn.rpush("captcha:tasks", batch).await.expect("push");
    }
}

/// Polls `check` every 20 ms until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The pool run in this process by `service::run`, as `autoscaler run` runs it.
pub struct InProcess {
    stop: CancellationToken,
    run: tokio::task::JoinHandle<anyhow::Result<RunSummary>>,
}

impl InProcess {
    /// Starts the pool with the simulator's key.
    pub fn start(config: Config) -> Self {
        Self::with(config, api_key(), None)
    }

    /// Starts the pool with `key`, sending each tick's report to `observer`.
    pub fn with(
        config: Config,
        key: ApiKey,
        observer: Option<mpsc::UnboundedSender<TickReport>>,
    ) -> Self {
        let stop = CancellationToken::new();
        let run = tokio::spawn(autoscaler::service::run(
            config,
            key,
            stop.clone(),
            observer,
        ));
        Self { stop, run }
    }

    /// Whether it still runs.
    pub fn running(&self) -> bool {
        !self.run.is_finished()
    }

    /// How it ended, once it has: for the message of a test that did not expect it to.
    pub async fn ended(&mut self) -> String {
        format!("{:?}", (&mut self.run).await)
    }

    /// Stops it as a first SIGTERM does and returns its summary.
    pub async fn stop(self) -> RunSummary {
        self.stop.cancel();
        self.run.await.expect("join").expect("run")
    }
}

/// The stage of a fault test: a private Redis with `n` tasks `<prefix>-<i>` queued, and a
/// simulator whose solves take between `solve.0` and `solve.1`.
pub struct Stage {
    pub redis: RedisServer,
    pub sim: SimHandle,
    pub conn: redis::aio::MultiplexedConnection,
}

impl Stage {
    pub async fn new(prefix: &str, n: usize, solve: (Duration, Duration)) -> Self {
        let redis = RedisServer::start();
        let sim = fast_sim(SimConfig {
            solve_time: solve,
            ..fast_sim_config()
        })
        .await;
        let mut conn = conn(&redis.url()).await;
        push(&mut conn, &tasks(prefix, n)).await;
        Self { redis, sim, conn }
    }
}

/// Waits up to `timeout` until at least `results` results are written and the processing list
/// `list` holds at least `held` tasks: a host well into its burst.
pub async fn underway(
    conn: &redis::aio::MultiplexedConnection,
    list: &str,
    (results, held): (usize, usize),
    timeout: Duration,
) -> bool {
    use redis::AsyncCommands;
    eventually(timeout, || {
        let mut conn = conn.clone();
        async move {
            let written: usize = conn.hlen("captcha:results").await.unwrap_or(0);
            let holding: usize = conn.llen(list).await.unwrap_or(0);
            written >= results && holding >= held
        }
    })
    .await
}
