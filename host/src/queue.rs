//! The Redis side of the pool: taking tasks reliably, writing results, measuring the queue.
//!
//! A task moves from the shared queue into this host's processing list with `BLMOVE` and leaves
//! it only in the same atomic step that writes its result (or its dead letter, or returns it to
//! the queue), so a crash at any point leaves every task either in the queue, in a processing
//! list, or answered. At start the host returns what its own processing list still holds.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Direction, Script};

use crate::config::RedisConfig;
use crate::task::{self, TaskResult};

/// The Redis keys one host uses.
#[derive(Debug, Clone)]
pub struct Keys {
    pub host_id: String,
    pub queue: String,
    pub results: String,
    /// The sorted set of result ids by write time, when results expire (`None`: kept forever).
    pub results_index: Option<String>,
    pub processing: String,
    pub processing_prefix: String,
    pub dead_letter: String,
    /// How many newest entries the dead-letter list keeps (0: all).
    pub dead_letter_max: u32,
    pub status: String,
    pub status_prefix: String,
    pub heartbeat: String,
    pub heartbeat_prefix: String,
    pub hosts: String,
}

impl Keys {
    pub fn new(config: &RedisConfig, host_id: &str) -> Self {
        let retained = !config.result_retention.is_zero();
        Self {
            host_id: host_id.to_owned(),
            queue: config.queue.clone(),
            results: config.results.clone(),
            results_index: retained.then(|| format!("{}:written", config.results)),
            processing: format!("{}{host_id}", config.processing_prefix),
            processing_prefix: config.processing_prefix.clone(),
            dead_letter: config.dead_letter.clone(),
            dead_letter_max: config.dead_letter_max,
            status: format!("{}{host_id}", config.status_prefix),
            status_prefix: config.status_prefix.clone(),
            heartbeat: format!("{}{host_id}", config.heartbeat_prefix),
            heartbeat_prefix: config.heartbeat_prefix.clone(),
            hosts: config.hosts.clone(),
        }
    }

    /// The processing list of another host.
    pub fn processing_of(&self, host_id: &str) -> String {
        format!("{}{host_id}", self.processing_prefix)
    }

    /// The heartbeat key of another host.
    pub fn heartbeat_of(&self, host_id: &str) -> String {
        format!("{}{host_id}", self.heartbeat_prefix)
    }
}

/// What the queue looks like right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueMeasure {
    pub depth: u32,
    /// Age of the head task, when its producer stamped `enqueued_at`.
    pub oldest_age_ms: Option<u64>,
}

/// A connection to the queue's Redis that reconnects by itself with backoff.
#[derive(Clone)]
pub struct Queue {
    conn: ConnectionManager,
    keys: Keys,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("keys", &self.keys).finish()
    }
}

/// What writing a result did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The result is stored and the task acknowledged.
    Written,
    /// The task is acknowledged, but a success already stored under its id was kept.
    KeptSuccess,
    /// The task was no longer in this host's processing list (another host reclaimed it):
    /// nothing was written, and whoever holds it now answers it.
    NotHeld,
}

/// Acknowledges the task and writes its result in one step, only while this host still holds
/// the task; an error never replaces a success already stored under the same id (a late
/// duplicate). With a results index, the write time (Redis's clock) is recorded for expiry.
pub const COMPLETE_SCRIPT: &str = r#"
if redis.call('LREM', KEYS[2], 1, ARGV[3]) == 0 then
  return 2
end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and ARGV[4] == '0' and string.find(current, '"status":"success"', 1, true) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if KEYS[3] then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[3], t[1] * 1000 + math.floor(t[2] / 1000), ARGV[1])
end
return 1
"#;

/// Moves a task this host still holds to the dead-letter list, which keeps its newest ARGV[3]
/// entries (all when 0).
const DEAD_LETTER_SCRIPT: &str = r#"
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then
  return 0
end
local kept = redis.call('RPUSH', KEYS[2], ARGV[2])
local max = tonumber(ARGV[3])
if max > 0 and kept > max then
  redis.call('LTRIM', KEYS[2], -max, -1)
end
return 1
"#;

/// Returns a task this host still holds to the head of the queue.
const RELEASE_SCRIPT: &str = r#"
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then
  return 0
end
redis.call('LPUSH', KEYS[2], ARGV[1])
return 1
"#;

static COMPLETE: LazyLock<Script> = LazyLock::new(|| Script::new(COMPLETE_SCRIPT));
static DEAD_LETTER: LazyLock<Script> = LazyLock::new(|| Script::new(DEAD_LETTER_SCRIPT));
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE_SCRIPT));

/// Longest the tick waits to measure the queue or publish the status.
const MEASURE_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest a single command may wait for Redis before the call fails (blocking takes add their
/// own timeout to this).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

impl Queue {
    /// Connects, retrying briefly; the error says how to start a Redis when none answers.
    pub async fn connect(
        url: &str,
        keys: Keys,
        blocking: Option<Duration>,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| {
            crate::config::Misconfigured(anyhow::anyhow!(
                "invalid Redis URL {url:?}: {e} (set redis.url or REDIS_URL, e.g. \
                 redis://127.0.0.1:6379)"
            ))
        })?;
        let response_timeout = RESPONSE_TIMEOUT + blocking.unwrap_or_default();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(response_timeout)
            .set_number_of_retries(2)
            .set_max_delay(2000);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "failed to connect to Redis at {url}: {e} (start one with \
                     `redis-server --port 6379`, or point REDIS_URL at yours)"
                )
            })?;
        Ok(Self { conn, keys })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Moves the head task into this host's processing list, waiting up to `wait` for one.
    pub async fn take(&mut self, wait: Duration) -> redis::RedisResult<Option<Vec<u8>>> {
        let keys = &self.keys;
        self.conn
            .blmove(
                &keys.queue,
                &keys.processing,
                Direction::Left,
                Direction::Right,
                wait.as_secs_f64(),
            )
            .await
    }

    /// Takes up to `n` tasks without waiting, in one round trip.
    pub async fn take_now(&mut self, n: usize) -> redis::RedisResult<Vec<Vec<u8>>> {
        let keys = &self.keys;
        let mut pipe = redis::pipe();
        for _ in 0..n {
            pipe.lmove(
                &keys.queue,
                &keys.processing,
                Direction::Left,
                Direction::Right,
            );
        }
        let taken: Vec<Option<Vec<u8>>> = pipe.query_async(&mut self.conn).await?;
        Ok(taken.into_iter().flatten().collect())
    }

    /// Writes the result and removes the task from the processing list, atomically, if this
    /// host still holds the task.
    pub async fn complete(
        &mut self,
        raw: &[u8],
        id: &str,
        result: &TaskResult,
    ) -> redis::RedisResult<Completion> {
        let success = if result.is_success() { "1" } else { "0" };
        let mut call = COMPLETE.key(&self.keys.results);
        call.key(&self.keys.processing);
        if let Some(index) = &self.keys.results_index {
            call.key(index);
        }
        let code: i64 = call
            .arg(id)
            .arg(result.to_json())
            .arg(raw)
            .arg(success)
            .invoke_async(&mut self.conn)
            .await?;
        Ok(match code {
            1 => Completion::Written,
            0 => Completion::KeptSuccess,
            _ => Completion::NotHeld,
        })
    }

    /// Records input that cannot be answered (no id) with its reason and its raw bytes, and
    /// acknowledges it; false when this host no longer held it.
    pub async fn dead_letter(
        &mut self,
        raw: &[u8],
        reason: &str,
        host_id: &str,
    ) -> redis::RedisResult<bool> {
        let mut entry = serde_json::json!({
            "reason": reason,
            "raw": String::from_utf8_lossy(raw),
            "host": host_id,
            "at_ms": crate::clock::unix_ms(),
        });
        if std::str::from_utf8(raw).is_err() {
            entry["raw_hex"] = hex::encode(raw).into();
        }
        let moved: i64 = DEAD_LETTER
            .key(&self.keys.processing)
            .key(&self.keys.dead_letter)
            .arg(raw)
            .arg(entry.to_string())
            .arg(self.keys.dead_letter_max)
            .invoke_async(&mut self.conn)
            .await?;
        Ok(moved == 1)
    }

    /// Returns a task this host holds to the head of the queue, so it is the next one taken;
    /// false when this host no longer held it (nothing to return).
    pub async fn requeue(&mut self, raw: &[u8]) -> redis::RedisResult<bool> {
        let moved: i64 = RELEASE
            .key(&self.keys.processing)
            .key(&self.keys.queue)
            .arg(raw)
            .invoke_async(&mut self.conn)
            .await?;
        Ok(moved == 1)
    }

    /// Everything in this host's processing list, oldest first.
    pub async fn processing_entries(&mut self) -> redis::RedisResult<Vec<Vec<u8>>> {
        self.conn.lrange(&self.keys.processing, 0, -1).await
    }

    /// The connection, for modules that run their own scripts on the same keys.
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Returns everything left in this host's processing list (by a previous run that died)
    /// to the head of the queue, oldest first. Returns how many tasks moved.
    pub async fn recover_orphans(&mut self) -> redis::RedisResult<usize> {
        let mut moved = 0;
        loop {
            let task: Option<Vec<u8>> = self
                .conn
                .lmove(
                    &self.keys.processing,
                    &self.keys.queue,
                    Direction::Right,
                    Direction::Left,
                )
                .await?;
            if task.is_none() {
                return Ok(moved);
            }
            moved += 1;
        }
    }

    /// The queue's depth and the age of its head task, in one round trip. Fails after
    /// [`MEASURE_TIMEOUT`] rather than waiting for a reconnect, so a tick without Redis holds
    /// at once instead of stalling.
    pub async fn measure(&mut self) -> redis::RedisResult<QueueMeasure> {
        let mut pipe = redis::pipe();
        pipe.llen(&self.keys.queue).lindex(&self.keys.queue, 0);
        let query = pipe.query_async(&mut self.conn);
        let (depth, head): (u32, Option<Vec<u8>>) = tokio::time::timeout(MEASURE_TIMEOUT, query)
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "redis did not answer in time")
            })??;
        let now = crate::clock::unix_ms();
        let oldest_age_ms = head
            .as_deref()
            .and_then(task::enqueued_at_ms)
            .map(|at| now.saturating_sub(at));
        Ok(QueueMeasure {
            depth,
            oldest_age_ms,
        })
    }

    /// Publishes this host's status for `autoscaler status` and other processes; gives up
    /// after [`MEASURE_TIMEOUT`], as the next tick publishes again.
    pub async fn write_status(&mut self, json: &str, ttl: Duration) -> redis::RedisResult<()> {
        let ttl = ttl.as_secs().max(1);
        let write = self.conn.set_ex(&self.keys.status, json, ttl);
        tokio::time::timeout(MEASURE_TIMEOUT, write)
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "redis did not answer in time")
            })?
    }

    /// Reads every live host's status.
    pub async fn read_statuses(&mut self) -> redis::RedisResult<Vec<String>> {
        let pattern = format!("{}*", self.keys.status_prefix);
        let mut names: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(100)
                .query_async(&mut self.conn)
                .await?;
            names.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        names.sort();
        let mut statuses = Vec::with_capacity(names.len());
        for name in names {
            let status: Option<String> = self.conn.get(&name).await?;
            statuses.extend(status);
        }
        Ok(statuses)
    }

    /// Pushes raw tasks onto the tail of the queue, as a producer does.
    pub async fn push(&mut self, tasks: &[String]) -> redis::RedisResult<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        self.conn.rpush(&self.keys.queue, tasks).await
    }

    /// Tasks in this host's processing list right now.
    pub async fn in_processing(&mut self) -> redis::RedisResult<u32> {
        self.conn.llen(&self.keys.processing).await
    }

    /// Entries in the results hash.
    pub async fn result_count(&mut self) -> redis::RedisResult<u32> {
        self.conn.hlen(&self.keys.results).await
    }

    /// Deletes the queue, results, dead letters, this host's processing list and status: for
    /// the demo and tests, which own their keys.
    pub async fn delete_all(&mut self) -> redis::RedisResult<()> {
        let k = &self.keys;
        let mut keys = vec![
            &k.queue,
            &k.results,
            &k.dead_letter,
            &k.processing,
            &k.status,
            &k.heartbeat,
        ];
        keys.extend(k.results_index.as_ref());
        let _: () = self.conn.srem(&k.hosts, &k.host_id).await?;
        self.conn.del(&keys[..]).await
    }

    /// Entries in the dead-letter list.
    pub async fn dead_letter_count(&mut self) -> redis::RedisResult<u32> {
        self.conn.llen(&self.keys.dead_letter).await
    }
}
