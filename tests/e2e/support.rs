//! Test support: a private `redis-server` that can be stopped and restarted on its AOF, the
//! simulator, a pool configured for speed, the real binary as a child process, and the
//! accounting every fault test ends with.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use autoscaler::config::{
    CaptchaAiConfig, Config, MetricsConfig, PolicyConfig, PoolConfig, RedisConfig,
};
use autoscaler::queue::{Keys, Queue};
use autoscaler::sim::{SimConfig, SimHandle};
use autoscaler::solver::ApiKey;

/// A key the simulator accepts.
pub const TEST_KEY: &str = "test0000test0000test0000test0000";

/// A `redis-server` of the test's own, on a free port, in a temporary folder; killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for redis");
        let mut server = Self {
            child: None,
            port: free_port(),
            dir,
        };
        // Another process may take the port between the check and redis-server's bind; then the
        // server exits at once and a fresh port is tried.
        for _ in 0..5 {
            match server.spawn() {
                Ok(()) => return server,
                Err(why) => {
                    eprintln!(
                        "redis-server on port {}: {why}; trying another",
                        server.port
                    );
                    server.port = free_port();
                }
            }
        }
        panic!("redis-server did not start on five free ports");
    }

    /// Starts `redis-server` on `self.port` and waits until it answers PING with PONG.
    fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("poll redis-server") {
                return Err(format!("exited with {status} before answering"));
            }
            if answers_ping(self.port) {
                self.child = Some(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err("no PONG within 10 s".to_owned())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server cleanly (SIGTERM: it flushes its AOF) and waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(child.id(), "TERM");
        let _ = child.wait();
    }

    /// Starts the server again on the same port and folder, loading its AOF.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(why) = self.spawn() {
            panic!("redis-server did not restart on port {}: {why}", self.port);
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A loopback port nobody listens on right now, different on every call in this process.
///
/// Ports come from below Linux's ephemeral range (32768 and up), so no port the kernel hands
/// out to an outgoing connection or a `:0` bind can take it before the server binds it, and a
/// connect to it can never meet itself (a TCP self-connect to an ephemeral port succeeds).
pub fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = std::process::id().wrapping_mul(7919);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + offset.wrapping_add(n) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Whether a Redis on the port answers `PING` with `+PONG`.
fn answers_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

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

/// Sends a signal (`TERM`, `INT`, `KILL`, `STOP`, `CONT`) to a process.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
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
    (0..n)
        .map(|i| {
            format!(
                r#"{{"id":"{prefix}-{i}","method":"userrecaptcha","params":{{"googlekey":"6Le-test","pageurl":"https://example.com/{i}"}}}}"#
            )
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
