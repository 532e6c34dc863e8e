//! The host's configuration: a TOML file, then environment overrides, then command-line flags.
//!
//! Every section rejects unknown keys, and every default is a named constant, so a typo stops
//! the start with the key and its line instead of being silently ignored. The API key is never
//! part of the file's parsed form: it comes from `CAPTCHAAI_KEY` or from the file named by
//! `captchaai.key_file` / `CAPTCHAAI_KEY_FILE`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::observe::MetricsConfig;
use crate::solver::ApiKey;

/// Redis the host talks to when neither the file nor `REDIS_URL` names one.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// The list producers push tasks onto (RPUSH) and the pool takes them from (head first).
pub const DEFAULT_QUEUE: &str = "captcha:tasks";
/// The hash results are written to, keyed by task id.
pub const DEFAULT_RESULTS: &str = "captcha:results";
/// Prefix of each host's processing list, followed by the host id.
pub const DEFAULT_PROCESSING_PREFIX: &str = "captcha:processing:";
/// The list that keeps tasks which cannot be answered because they carry no id.
pub const DEFAULT_DEAD_LETTER: &str = "captcha:dead";
/// Prefix of each host's status key, followed by the host id.
pub const DEFAULT_STATUS_PREFIX: &str = "autoscaler:status:";
/// Prefix of each host's heartbeat key, followed by the host id.
pub const DEFAULT_HEARTBEAT_PREFIX: &str = "autoscaler:heartbeat:";
/// The set of host ids that may hold tasks in a processing list.
pub const DEFAULT_HOSTS: &str = "autoscaler:hosts";
/// How long a result stays in the results hash; zero keeps results forever.
pub const DEFAULT_RESULT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest tick: a pool that looks at its load less than hourly is not autoscaled.
pub const MAX_TICK: Duration = Duration::from_secs(60 * 60);
/// Dead letters kept, newest first; older ones are dropped as new ones arrive.
pub const DEFAULT_DEAD_LETTER_MAX: u32 = 10_000;
/// The real CaptchaAI endpoint.
pub const DEFAULT_CAPTCHAAI_URL: &str = "https://ocr.captchaai.com";
/// Wait after submitting before the first poll: tokens take 15–30 s to solve.
pub const DEFAULT_FIRST_POLL_DELAY: Duration = Duration::from_secs(15);
/// Interval between polls of one task, as the provider asks.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Polls per task at most: providers block accounts that poll far more than they submit.
pub const DEFAULT_MAX_POLLS: u32 = 20;
/// Timeout of one HTTP request to the provider.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the balance is read; it is cached in between.
pub const DEFAULT_BALANCE_INTERVAL: Duration = Duration::from_secs(60);
/// Workers kept alive whatever the policy says.
pub const DEFAULT_MIN_WORKERS: u32 = 1;
/// Workers never exceeded whatever the policy says.
pub const DEFAULT_MAX_WORKERS: u32 = 50;
/// Interval between scaling decisions.
pub const DEFAULT_TICK: Duration = Duration::from_secs(10);
/// The window that rates, latency percentiles and error rates cover.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// Time a task may take from being taken to its result when it carries no deadline.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a host's heartbeat lives; another host reclaims its tasks once it has expired.
pub const DEFAULT_HEARTBEAT_TTL: Duration = Duration::from_secs(30);
/// On shutdown, how long in-flight tasks may run before they are returned to the queue.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long submissions stop after an account-class error (wrong key, banned IP).
pub const DEFAULT_ACCOUNT_PAUSE: Duration = Duration::from_secs(60);
/// Longest wait between retries of one task after a retryable error.
pub const DEFAULT_RETRY_BACKOFF_MAX: Duration = Duration::from_secs(20);
/// Resubmissions of a task the provider called unsolvable before it fails (DESIGN: bounded).
pub const DEFAULT_UNSOLVABLE_RESUBMITS: u32 = 1;
/// CPU time one policy call may use before it is interrupted.
pub const DEFAULT_POLICY_CPU_DEADLINE: Duration = Duration::from_millis(50);
/// Linear memory one policy instance may grow to.
pub const DEFAULT_POLICY_MEMORY_MIB: u32 = 64;
/// Longest reason a policy may return; longer ones are truncated.
pub const DEFAULT_POLICY_MAX_REASON_BYTES: u32 = 512;
/// Largest state blob a policy may return; a larger one is a bad output.
pub const DEFAULT_POLICY_MAX_STATE_BYTES: u32 = 64 * 1024;
/// Bytes of log output (log import, stdout, stderr) a policy may write per call.
pub const DEFAULT_POLICY_MAX_LOG_BYTES: u32 = 4096;
/// Quiet time after the last change to the policy file before it is reloaded.
pub const DEFAULT_RELOAD_DEBOUNCE: Duration = Duration::from_millis(300);
/// Failed policy calls in a row after which the embedded default policy takes over.
pub const DEFAULT_POLICY_FALLBACK_AFTER: u32 = 3;
/// Wasm stack a policy may use; deeper recursion traps instead of overflowing the host.
pub const DEFAULT_POLICY_STACK_KIB: u32 = 512;
/// The most `policy.stack_kib` may be: policies run on threads with a 2 MiB stack.
pub const MAX_POLICY_STACK_KIB: u32 = 1024;

/// Everything `autoscaler run` needs, after the file, the environment and the flags.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Names this host's processing list and status key; defaults to the machine's hostname.
    pub host_id: Option<String>,
    pub redis: RedisConfig,
    pub captchaai: CaptchaAiConfig,
    pub pool: PoolConfig,
    pub policy: PolicyConfig,
    /// `[metrics]`: where `/metrics`, `/healthz` and `/status` are served (see [`MetricsConfig`]).
    pub metrics: MetricsConfig,
    /// Set by `autoscaler run --dry-run`, not by the file: the pool stays at this size while
    /// the policy's target is only reported.
    #[serde(skip)]
    pub dry_run: Option<u32>,
}

/// A start stopped by something in the configuration rather than at run time (the CLI exits
/// with 2): the policy file or its parameters, the metrics address, the Redis URL, a host id a
/// live run already uses.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct Misconfigured(pub anyhow::Error);

/// `[redis]`: where tasks come from and results go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    pub url: String,
    pub queue: String,
    pub results: String,
    pub processing_prefix: String,
    pub dead_letter: String,
    pub status_prefix: String,
    pub heartbeat_prefix: String,
    pub hosts: String,
    /// Results older than this are removed from the results hash; zero keeps them forever.
    #[serde(with = "humantime_serde")]
    pub result_retention: Duration,
    /// The dead-letter list keeps this many newest entries; zero keeps every one.
    pub dead_letter_max: u32,
}

/// `[captchaai]`: the solving service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptchaAiConfig {
    pub url: String,
    /// A file holding the API key (trailing whitespace ignored).
    pub key_file: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    pub first_poll_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    pub max_polls: u32,
    #[serde(with = "humantime_serde")]
    pub http_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub balance_interval: Duration,
}

/// `[pool]`: the workers and the scaling loop.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    pub min_workers: u32,
    pub max_workers: u32,
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    #[serde(with = "humantime_serde")]
    pub task_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub heartbeat_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub account_pause: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_backoff_max: Duration,
    pub unsolvable_resubmits: u32,
}

/// `[policy]`: which policy decides, under which limits, with which parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// A policy component to load and watch; the embedded default policy when absent.
    pub file: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    pub cpu_deadline: Duration,
    pub memory_mib: u32,
    pub stack_kib: u32,
    pub max_reason_bytes: u32,
    pub max_state_bytes: u32,
    pub max_log_bytes: u32,
    #[serde(with = "humantime_serde")]
    pub reload_debounce: Duration,
    /// Failed calls in a row before the embedded default takes over from `file`; 0 never.
    pub fallback_after: u32,
    /// Handed to the policy's `configure`.
    pub params: BTreeMap<String, toml::Value>,
}

/// Why the configuration cannot be used; each names the file, key or variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read config file \"{path}\"")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file \"{path}\": {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid {key} = {value}: {hint}")]
    Invalid {
        key: &'static str,
        value: String,
        hint: String,
    },
    #[error("failed to read the API key file \"{path}\" (captchaai.key_file)")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_REDIS_URL.into(),
            queue: DEFAULT_QUEUE.into(),
            results: DEFAULT_RESULTS.into(),
            processing_prefix: DEFAULT_PROCESSING_PREFIX.into(),
            dead_letter: DEFAULT_DEAD_LETTER.into(),
            status_prefix: DEFAULT_STATUS_PREFIX.into(),
            heartbeat_prefix: DEFAULT_HEARTBEAT_PREFIX.into(),
            hosts: DEFAULT_HOSTS.into(),
            result_retention: DEFAULT_RESULT_RETENTION,
            dead_letter_max: DEFAULT_DEAD_LETTER_MAX,
        }
    }
}

impl Default for CaptchaAiConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_CAPTCHAAI_URL.into(),
            key_file: None,
            first_poll_delay: DEFAULT_FIRST_POLL_DELAY,
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_polls: DEFAULT_MAX_POLLS,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            balance_interval: DEFAULT_BALANCE_INTERVAL,
        }
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            min_workers: DEFAULT_MIN_WORKERS,
            max_workers: DEFAULT_MAX_WORKERS,
            tick: DEFAULT_TICK,
            window: DEFAULT_WINDOW,
            task_timeout: DEFAULT_TASK_TIMEOUT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            heartbeat_ttl: DEFAULT_HEARTBEAT_TTL,
            account_pause: DEFAULT_ACCOUNT_PAUSE,
            retry_backoff_max: DEFAULT_RETRY_BACKOFF_MAX,
            unsolvable_resubmits: DEFAULT_UNSOLVABLE_RESUBMITS,
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            file: None,
            cpu_deadline: DEFAULT_POLICY_CPU_DEADLINE,
            memory_mib: DEFAULT_POLICY_MEMORY_MIB,
            stack_kib: DEFAULT_POLICY_STACK_KIB,
            max_reason_bytes: DEFAULT_POLICY_MAX_REASON_BYTES,
            max_state_bytes: DEFAULT_POLICY_MAX_STATE_BYTES,
            max_log_bytes: DEFAULT_POLICY_MAX_LOG_BYTES,
            reload_debounce: DEFAULT_RELOAD_DEBOUNCE,
            fallback_after: DEFAULT_POLICY_FALLBACK_AFTER,
            params: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Reads and parses a config file; the error names the file, the line and the key.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text; the error message carries toml's line, column and excerpt.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
    }

    /// Applies `REDIS_URL` and `CAPTCHAAI_URL` from a variable lookup (the process environment
    /// in production, a map in tests). A variable set to the empty string counts as unset.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        let var = |name: &str| var(name).filter(|value| !value.is_empty());
        if let Some(url) = var("REDIS_URL") {
            self.redis.url = url;
        }
        if let Some(url) = var("CAPTCHAAI_URL") {
            self.captchaai.url = url;
        }
        if let Some(path) = var("CAPTCHAAI_KEY_FILE") {
            self.captchaai.key_file = Some(path.into());
        }
    }

    /// Checks the values no type can express: the pool's bounds, non-zero intervals.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(id) = &self.host_id
            && (id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(invalid(
                "host_id",
                format!("{id:?}"),
                "must be a non-empty name without spaces; leave it out to use the hostname",
            ));
        }
        let pool = &self.pool;
        if pool.max_workers == 0 {
            return Err(invalid("pool.max_workers", 0, "must be at least 1"));
        }
        if pool.min_workers > pool.max_workers {
            return Err(invalid(
                "pool.min_workers",
                pool.min_workers,
                &format!("must not exceed pool.max_workers ({})", pool.max_workers),
            ));
        }
        let nonzero = [
            ("pool.tick", pool.tick),
            ("pool.window", pool.window),
            ("pool.task_timeout", pool.task_timeout),
            ("pool.heartbeat_ttl", pool.heartbeat_ttl),
            ("captchaai.poll_interval", self.captchaai.poll_interval),
            ("captchaai.http_timeout", self.captchaai.http_timeout),
            ("policy.cpu_deadline", self.policy.cpu_deadline),
        ];
        for (key, value) in nonzero {
            if value.is_zero() {
                return Err(invalid(key, "0s", "must be longer than zero"));
            }
        }
        if pool.tick > MAX_TICK {
            return Err(invalid(
                "pool.tick",
                humantime::format_duration(pool.tick),
                "must be at most 1h",
            ));
        }
        if pool.window < pool.tick {
            return Err(invalid(
                "pool.window",
                humantime::format_duration(pool.window),
                "must be at least one pool.tick long",
            ));
        }
        if self.captchaai.max_polls == 0 {
            return Err(invalid("captchaai.max_polls", 0, "must be at least 1"));
        }
        if self.policy.memory_mib == 0 {
            return Err(invalid("policy.memory_mib", 0, "must be at least 1"));
        }
        if !(64..=MAX_POLICY_STACK_KIB).contains(&self.policy.stack_kib) {
            let hint = format!("must be from 64 to {MAX_POLICY_STACK_KIB}");
            return Err(invalid("policy.stack_kib", self.policy.stack_kib, &hint));
        }
        Ok(())
    }

    /// The host id: the configured one, else the hostname, else "autoscaler".
    pub fn host_id(&self) -> String {
        self.host_id.clone().unwrap_or_else(default_host_id)
    }

    /// The API key: `CAPTCHAAI_KEY` if set, else the key file, else none.
    pub fn api_key(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<ApiKey>, ConfigError> {
        if let Some(key) = var("CAPTCHAAI_KEY") {
            return Ok(Some(ApiKey::new(key.trim())));
        }
        let Some(path) = &self.captchaai.key_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::KeyFile {
            path: path.clone(),
            source,
        })?;
        Ok(Some(ApiKey::new(text.trim())))
    }
}

fn invalid(key: &'static str, value: impl std::fmt::Display, hint: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        hint: hint.to_owned(),
    }
}

fn default_host_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "autoscaler".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_defaults() {
        let config = Config::from_toml("").expect("empty config parses");
        assert_eq!(config.pool.max_workers, DEFAULT_MAX_WORKERS);
        assert_eq!(config.redis.queue, DEFAULT_QUEUE);
        assert_eq!(config.policy.cpu_deadline, DEFAULT_POLICY_CPU_DEADLINE);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = Config::from_toml("[pool]\nmin_workers = 1\nmax_wrokers = 5\n")
            .expect_err("a misspelt key must be rejected");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("max_wrokers"), "{err}");
        assert!(err.contains("max_workers"), "{err}");
    }

    #[test]
    fn durations_are_human_readable() {
        let config = Config::from_toml("[pool]\ntick = \"2s\"\nwindow = \"1m 30s\"\n")
            .expect("durations parse");
        assert_eq!(config.pool.tick, Duration::from_secs(2));
        assert_eq!(config.pool.window, Duration::from_secs(90));
    }

    #[test]
    fn bad_duration_names_the_line() {
        let err = Config::from_toml("[pool]\ntick = \"soon\"\n").expect_err("rejected");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn min_above_max_is_rejected_by_key() {
        let mut config = Config::default();
        config.pool.min_workers = 9;
        config.pool.max_workers = 3;
        let err = config.validate().expect_err("rejected").to_string();
        assert_eq!(
            err,
            "invalid pool.min_workers = 9: must not exceed pool.max_workers (3)"
        );
    }

    #[test]
    fn an_empty_or_spaced_host_id_is_rejected() {
        for id in ["", "two words"] {
            let config = Config {
                host_id: Some(id.to_owned()),
                ..Config::default()
            };
            let err = config.validate().expect_err("rejected").to_string();
            assert!(
                err.starts_with(&format!("invalid host_id = {id:?}")),
                "{err}"
            );
        }
    }

    #[test]
    fn a_tick_over_an_hour_is_named_as_the_tick() {
        let mut config = Config::default();
        config.pool.tick = Duration::from_secs(7200);
        config.pool.window = Duration::from_secs(7200);
        let err = config.validate().expect_err("rejected").to_string();
        assert_eq!(err, "invalid pool.tick = 2h: must be at most 1h");
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let mut config = Config::default();
        config.apply_env(|name| (name == "REDIS_URL").then(String::new));
        assert_eq!(config.redis.url, RedisConfig::default().url);
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut config = Config::from_toml("[redis]\nurl = \"redis://a:1\"\n").expect("parses");
        config.apply_env(|name| (name == "REDIS_URL").then(|| "redis://b:2".to_owned()));
        assert_eq!(config.redis.url, "redis://b:2");
    }

    #[test]
    fn policy_params_keep_their_types() {
        let config =
            Config::from_toml("[policy.params]\nqueue_up = 30\nname = \"x\"\n").expect("parses");
        assert_eq!(
            config.policy.params.get("queue_up"),
            Some(&toml::Value::Integer(30))
        );
    }
}
