//! The Redis side of the pool: taking tasks reliably, writing results, measuring the queue.
//!
//! A task moves from the shared queue into this host's processing list with `BLMOVE` and leaves
//! it only in the same atomic step that writes its result (or its dead letter, or returns it to
//! the queue), so a crash at any point leaves every task either in the queue, in a processing
//! list, or answered. At start the host returns what its own processing list still holds.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Direction, Script};

use crate::config::RedisConfig;
use crate::task::{self, TaskResult};

/// The Redis keys one host uses.
#[derive(Debug, Clone)]
pub struct Keys {
    pub queue: String,
    pub results: String,
    pub processing: String,
    pub dead_letter: String,
    pub status: String,
    pub status_prefix: String,
}

impl Keys {
    pub fn new(config: &RedisConfig, host_id: &str) -> Self {
        Self {
            queue: config.queue.clone(),
            results: config.results.clone(),
            processing: format!("{}{host_id}", config.processing_prefix),
            dead_letter: config.dead_letter.clone(),
            status: format!("{}{host_id}", config.status_prefix),
            status_prefix: config.status_prefix.clone(),
        }
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

/// Writes a result and acknowledges the task in one step; an error never replaces a success
/// already stored under the same id (a late duplicate of a solved task).
const COMPLETE_SCRIPT: &str = r#"
local current = redis.call('HGET', KEYS[1], ARGV[1])
local keep = current and ARGV[4] == '0' and string.find(current, '"status":"success"', 1, true)
if not keep then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('LREM', KEYS[2], 1, ARGV[3])
return keep and 0 or 1
"#;

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
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("invalid Redis URL {url:?}: {e}"))?;
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

    /// Writes the result and removes the task from the processing list, atomically.
    /// Returns false when an existing success was kept instead.
    pub async fn complete(
        &mut self,
        raw: &[u8],
        id: &str,
        result: &TaskResult,
    ) -> redis::RedisResult<bool> {
        let success = if result.is_success() { "1" } else { "0" };
        let written: i64 = Script::new(COMPLETE_SCRIPT)
            .key(&self.keys.results)
            .key(&self.keys.processing)
            .arg(id)
            .arg(result.to_json())
            .arg(raw)
            .arg(success)
            .invoke_async(&mut self.conn)
            .await?;
        Ok(written == 1)
    }

    /// Records input that cannot be answered (no id) with its reason, and acknowledges it.
    pub async fn dead_letter(
        &mut self,
        raw: &[u8],
        reason: &str,
        host_id: &str,
    ) -> redis::RedisResult<()> {
        let entry = serde_json::json!({
            "reason": reason,
            "raw": String::from_utf8_lossy(raw),
            "host": host_id,
            "at_ms": crate::clock::unix_ms(),
        });
        redis::pipe()
            .atomic()
            .rpush(&self.keys.dead_letter, entry.to_string())
            .lrem(&self.keys.processing, 1, raw)
            .query_async(&mut self.conn)
            .await
    }

    /// Returns a task to the head of the queue, so it is the next one taken.
    pub async fn requeue(&mut self, raw: &[u8]) -> redis::RedisResult<()> {
        redis::pipe()
            .atomic()
            .lrem(&self.keys.processing, 1, raw)
            .lpush(&self.keys.queue, raw)
            .query_async(&mut self.conn)
            .await
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

    /// The queue's depth and the age of its head task, in one round trip.
    pub async fn measure(&mut self) -> redis::RedisResult<QueueMeasure> {
        let (depth, head): (u32, Option<Vec<u8>>) = redis::pipe()
            .llen(&self.keys.queue)
            .lindex(&self.keys.queue, 0)
            .query_async(&mut self.conn)
            .await?;
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

    /// Publishes this host's status for `autoscaler status` and other processes.
    pub async fn write_status(&mut self, json: &str, ttl: Duration) -> redis::RedisResult<()> {
        let ttl = ttl.as_secs().max(1);
        self.conn.set_ex(&self.keys.status, json, ttl).await
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
        let keys = [
            &k.queue,
            &k.results,
            &k.dead_letter,
            &k.processing,
            &k.status,
        ];
        self.conn.del(&keys[..]).await
    }

    /// Entries in the dead-letter list.
    pub async fn dead_letter_count(&mut self) -> redis::RedisResult<u32> {
        self.conn.llen(&self.keys.dead_letter).await
    }
}
