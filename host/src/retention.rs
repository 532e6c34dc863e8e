//! Result retention: results older than `redis.result_retention` leave the results hash.
//!
//! Redis 7.0 has no per-field expiry (`HEXPIRE` came in 7.4), so each write also records the
//! result's id in a sorted set, `<results>:written`, scored by Redis's clock at the write.
//! Every host sweeps it now and then: ids older than the retention are removed from both in
//! one script, a bounded batch at a time. A late duplicate that arrives after its success was
//! swept writes a fresh result; keep the retention longer than any task can be late.

use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use crate::config::RedisConfig;
use crate::queue::Queue;

/// Ids removed per script call, so one sweep never blocks Redis for long.
const BATCH: usize = 500;
/// Bounds of the interval between sweeps (a tenth of the retention in between).
const SWEEP_MIN: Duration = Duration::from_millis(100);
const SWEEP_MAX: Duration = Duration::from_secs(60);

/// Removes up to ARGV[2] results written more than ARGV[1] ms ago; returns how many.
const SWEEP_SCRIPT: &str = r#"
local now = redis.call('TIME')
local cutoff = now[1] * 1000 + math.floor(now[2] / 1000) - tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff, 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then
  return 0
end
redis.call('HDEL', KEYS[1], unpack(ids))
redis.call('ZREM', KEYS[2], unpack(ids))
return #ids
"#;

/// Sweeps one results hash.
#[derive(Clone)]
pub struct Retention {
    conn: ConnectionManager,
    results: String,
    index: String,
    keep: Duration,
}

impl std::fmt::Debug for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retention")
            .field("results", &self.results)
            .field("keep", &self.keep)
            .finish()
    }
}

impl Retention {
    pub fn new(conn: ConnectionManager, results: &str, index: &str, keep: Duration) -> Self {
        Self {
            conn,
            results: results.to_owned(),
            index: index.to_owned(),
            keep,
        }
    }

    /// Starts the sweeper of `queue`'s results when `redis.result_retention` is not zero.
    pub fn spawn(queue: &Queue, config: &RedisConfig, stop: &CancellationToken) {
        let Some(index) = &queue.keys().results_index else {
            return;
        };
        let keep = config.result_retention;
        let retention = Self::new(queue.connection(), &queue.keys().results, index, keep);
        tokio::spawn(retention.run(stop.clone()));
    }

    /// Removes every result older than the retention; returns how many.
    pub async fn sweep(&mut self) -> redis::RedisResult<u64> {
        let script = Script::new(SWEEP_SCRIPT);
        let keep_ms = u64::try_from(self.keep.as_millis()).unwrap_or(u64::MAX);
        let mut removed = 0;
        loop {
            let batch: u64 = script
                .key(&self.results)
                .key(&self.index)
                .arg(keep_ms)
                .arg(BATCH)
                .invoke_async(&mut self.conn)
                .await?;
            removed += batch;
            if batch < BATCH as u64 {
                return Ok(removed);
            }
        }
    }

    /// Sweeps every tenth of the retention (within bounds) until `stop`.
    pub async fn run(mut self, stop: CancellationToken) {
        let every = (self.keep / 10).clamp(SWEEP_MIN, SWEEP_MAX);
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.sweep().await {
                Ok(0) => {}
                Ok(removed) => tracing::debug!(removed, "expired results removed"),
                Err(e) => tracing::warn!(error = %e, "failed to remove expired results"),
            }
        }
    }
}
