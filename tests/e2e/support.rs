//! Test support: a private `redis-server`, the simulator, and a pool configured for speed.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
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
        let port = free_port();
        let mut server = Self {
            child: None,
            port,
            dir,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        wait_for_port(self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
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

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("redis-server did not start on port {port}");
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
