//! Host liveness: each host heartbeats, and live hosts reclaim the tasks of dead ones.
//!
//! A host keeps `<heartbeat_prefix><host_id>` alive (value: a token of this run, expiring
//! after `pool.heartbeat_ttl`) and its id in the `hosts` set. Every third of the TTL it renews
//! the key and looks for hosts whose key has expired: their processing lists go back to the
//! head of the queue, in one script that checks the key first, so a live host's list is never
//! touched. The reclaimer leaves a marker in the dead host's key; a host that was only stalled
//! (paused, cut off from Redis) finds the marker at its next beat, marks every claim lost so
//! its workers drop tasks that are no longer theirs, and carries on under a fresh heartbeat.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use tokio_util::sync::CancellationToken;

use crate::held::Held;
use crate::queue::{Keys, Queue};

/// How long the marker a reclaim leaves in a dead host's key lives.
const MARKER_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a start waits for Redis to come back before it gives up.
const JOIN_PATIENCE: Duration = Duration::from_secs(60);
/// The marker's prefix; the reclaiming host's id follows.
const MARKER: &str = "reclaimed:";

/// Renews the heartbeat and registers the host; returns the key's previous value.
const BEAT_SCRIPT: &str = r#"
local previous = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return previous
"#;

/// Sets this run's heartbeat if the key is absent, a reclaim marker, or the crashed run's
/// token the start decided to replace (ARGV[3]); 0 when another run holds it.
const CLAIM_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[3] and string.sub(current, 1, 9) ~= 'reclaimed' then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
"#;

/// Returns a dead host's processing list to the head of the queue, oldest first, if its
/// heartbeat has expired; -1 when it is alive or another host already reclaimed it.
const RECLAIM_SCRIPT: &str = r#"
local beat = redis.call('GET', KEYS[1])
if beat then
  if string.sub(beat, 1, string.len(ARGV[4])) == ARGV[4] then
    redis.call('SREM', KEYS[4], ARGV[1])
  end
  return -1
end
local moved = 0
while redis.call('LMOVE', KEYS[2], KEYS[3], 'RIGHT', 'LEFT') do
  moved = moved + 1
end
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('SET', KEYS[1], ARGV[4] .. ARGV[2], 'PX', ARGV[3])
return moved
"#;

/// Removes the heartbeat and the registration, if they are still this run's.
const LEAVE_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
  return 1
end
return 0
"#;

/// What a beat found in this host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beat {
    /// The key was this run's: all is well.
    Alive,
    /// The key had expired and nobody reclaimed the tasks; it is renewed.
    Lapsed,
    /// Another host reclaimed this host's tasks while its key was expired.
    Reclaimed { by: String },
    /// Another process wrote the key: two hosts run under one host id.
    Shared,
}

/// One host's heartbeat.
#[derive(Clone)]
pub struct Heartbeat {
    conn: ConnectionManager,
    keys: Keys,
    token: String,
    ttl: Duration,
}

impl std::fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heartbeat")
            .field("host_id", &self.keys.host_id)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl Heartbeat {
    pub fn new(conn: ConnectionManager, keys: Keys, ttl: Duration) -> Self {
        let token = format!(
            "{}/{}:{:016x}",
            machine_name(),
            std::process::id(),
            rand::random::<u64>()
        );
        Self {
            conn,
            keys,
            token,
            ttl,
        }
    }

    /// Starts this host's heartbeat, then returns to the queue whatever a previous run of this
    /// host left in its processing list.
    ///
    /// A heartbeat left under this host id stops the start if it is being renewed: another
    /// live run uses the id, and taking its processing list would have every one of its tasks
    /// solved twice. A crashed run's heartbeat is not renewed; the start waits at most one
    /// renewal period (a third of the TTL, plus a second) to see that, or not at all when the
    /// run was on this machine and its process is gone.
    ///
    /// Redis going away during the start (a restart, a dropped connection) is waited out for
    /// up to a minute, as every other Redis call of the host is.
    pub async fn join(&mut self, queue: &mut Queue) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + JOIN_PATIENCE;
        let mut wait = Duration::from_millis(100);
        loop {
            match self.try_join(queue).await {
                Ok(()) => return Ok(()),
                Err(e) if redis_away(&e) && tokio::time::Instant::now() + wait < deadline => {
                    tracing::warn!(error = %format!("{e:#}"), retry_in = ?wait, "Redis is away");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_join(&mut self, queue: &mut Queue) -> anyhow::Result<()> {
        let host_id = self.keys.host_id.clone();
        // The check and the claim are apart; a claim that finds another token (a run that
        // started at the same moment) checks again.
        loop {
            let replaced = self
                .refuse_a_live_run()
                .await
                .with_context(|| format!("host {host_id:?} cannot start"))?;
            let claimed: i64 = Script::new(CLAIM_SCRIPT)
                .key(&self.keys.heartbeat)
                .key(&self.keys.hosts)
                .arg(&self.token)
                .arg(millis(self.ttl))
                .arg(replaced.as_deref().unwrap_or(""))
                .arg(&self.keys.host_id)
                .invoke_async(&mut self.conn)
                .await
                .with_context(|| {
                    format!("failed to start the heartbeat of host {host_id:?} in Redis")
                })?;
            if claimed == 1 {
                if replaced.is_some_and(|token| !token.starts_with(MARKER)) {
                    tracing::warn!(
                        %host_id,
                        "took over the heartbeat a crashed run left under this host_id"
                    );
                }
                break;
            }
        }
        let recovered = queue.recover_orphans().await.with_context(|| {
            format!("failed to recover tasks left in the processing list of host {host_id:?}")
        })?;
        if recovered > 0 {
            tracing::warn!(
                recovered,
                %host_id,
                "returned tasks left by a previous run to the queue"
            );
        }
        Ok(())
    }

    /// Errs when another run under this host id is alive: its process runs on this machine
    /// (even stopped), or its heartbeat is renewed within one period. Otherwise returns the
    /// heartbeat a crashed run left, which the start may replace.
    async fn refuse_a_live_run(&mut self) -> anyhow::Result<Option<String>> {
        let key = self.keys.heartbeat.clone();
        let token: Option<String> = self.conn.get(&key).await?;
        let Some(token) = token else {
            return Ok(None);
        };
        if token.starts_with(MARKER) {
            return Ok(Some(token));
        }
        let live = |how: String| -> anyhow::Error {
            crate::config::Misconfigured(anyhow::anyhow!(
                "another live run uses host_id {:?} ({how}); give each host its own host_id, \
                 or stop the other run first",
                self.keys.host_id
            ))
            .into()
        };
        match process_here(&token) {
            Here::Gone => return Ok(Some(token)),
            Here::Alive(pid) => return Err(live(format!("process {pid} on this machine"))),
            Here::Unknown => {}
        }
        let period = self.ttl / 3 + Duration::from_secs(1);
        tracing::info!(
            host_id = %self.keys.host_id, wait = ?period,
            "a heartbeat of another run is under this host_id: waiting to see whether it \
             is renewed (a live run) or expires (a crashed one)"
        );
        let deadline = tokio::time::Instant::now() + period;
        let mut left: i64 = self.conn.pttl(&key).await?;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now: i64 = self.conn.pttl(&key).await?;
            if now < 0 {
                return Ok(None);
            }
            if now > left {
                return Err(live(format!("its heartbeat {key} is being renewed")));
            }
            left = now;
        }
        Ok(Some(token))
    }

    /// After the pool and the dispatcher stopped: returns to the queue anything still in the
    /// processing list (a take cut short), then leaves the live hosts. If Redis does not
    /// answer, the heartbeat expires and another host reclaims what is left.
    pub async fn depart(&mut self, queue: &mut Queue) {
        let left = match queue.recover_orphans().await {
            Ok(moved) => moved,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "failed to empty the processing list at stop; another host will reclaim it"
                );
                return;
            }
        };
        if left > 0 {
            tracing::warn!(
                returned = left,
                "returned unanswered tasks to the queue at stop"
            );
        }
        if let Err(e) = self.leave().await {
            tracing::warn!(
                error = %e,
                "failed to remove the heartbeat at stop; it expires by itself"
            );
        }
    }

    /// Renews the heartbeat and says what it found.
    pub async fn beat(&mut self) -> redis::RedisResult<Beat> {
        let previous: Option<String> = Script::new(BEAT_SCRIPT)
            .key(&self.keys.heartbeat)
            .key(&self.keys.hosts)
            .arg(&self.token)
            .arg(millis(self.ttl))
            .arg(&self.keys.host_id)
            .invoke_async(&mut self.conn)
            .await?;
        Ok(match previous {
            Some(value) if value == self.token => Beat::Alive,
            None => Beat::Lapsed,
            Some(value) => match value.strip_prefix(MARKER) {
                Some(by) => Beat::Reclaimed { by: by.to_owned() },
                None => Beat::Shared,
            },
        })
    }

    /// Reclaims the processing lists of registered hosts whose heartbeat expired; returns
    /// each reclaimed host with the number of tasks returned to the queue.
    pub async fn reclaim_dead(&mut self) -> redis::RedisResult<Vec<(String, u64)>> {
        let hosts: Vec<String> = self.conn.smembers(&self.keys.hosts).await?;
        let mut reclaimed = Vec::new();
        for host in hosts.into_iter().filter(|h| *h != self.keys.host_id) {
            let moved: i64 = Script::new(RECLAIM_SCRIPT)
                .key(self.keys.heartbeat_of(&host))
                .key(self.keys.processing_of(&host))
                .key(&self.keys.queue)
                .key(&self.keys.hosts)
                .arg(&host)
                .arg(&self.keys.host_id)
                .arg(millis(MARKER_TTL))
                .arg(MARKER)
                .invoke_async(&mut self.conn)
                .await?;
            if let Ok(moved) = u64::try_from(moved) {
                reclaimed.push((host, moved));
            }
        }
        Ok(reclaimed)
    }

    /// Removes this host's heartbeat and registration: for a clean stop with nothing held.
    pub async fn leave(&mut self) -> redis::RedisResult<()> {
        let _: i64 = Script::new(LEAVE_SCRIPT)
            .key(&self.keys.heartbeat)
            .key(&self.keys.hosts)
            .arg(&self.token)
            .arg(&self.keys.host_id)
            .invoke_async(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Beats and reclaims every third of the TTL until `stop`.
    pub async fn run(mut self, held: Arc<Held>, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(self.ttl / 3);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            self.renew(&held).await;
            self.reclaim().await;
        }
    }

    async fn renew(&mut self, held: &Held) {
        let host_id = self.keys.host_id.clone();
        match self.beat().await {
            Ok(Beat::Alive) => {}
            Ok(Beat::Lapsed) => {
                tracing::warn!(%host_id, ttl = ?self.ttl, "heartbeat had lapsed; renewed it")
            }
            Ok(Beat::Reclaimed { by }) => {
                let dropped = held.lose_all();
                tracing::error!(
                    %host_id, reclaimed_by = %by, dropped,
                    "this host's heartbeat lapsed and another host took its tasks: dropping them"
                );
            }
            Ok(Beat::Shared) => tracing::error!(
                %host_id,
                "another process heartbeats under this host_id: give each host its own host_id"
            ),
            Err(e) => tracing::warn!(error = %e, "failed to renew the heartbeat"),
        }
    }

    async fn reclaim(&mut self) {
        match self.reclaim_dead().await {
            Ok(reclaimed) => {
                for (dead_host, tasks) in reclaimed {
                    tracing::warn!(
                        %dead_host, tasks,
                        "reclaimed the tasks of a host whose heartbeat expired"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "failed to look for dead hosts"),
        }
    }
}

/// Whether the error is Redis being away (a dropped connection, a restart) rather than an
/// answer.
fn redis_away(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<redis::RedisError>().is_some_and(|e| {
            e.is_io_error()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.is_timeout()
        })
    })
}

/// This machine's name, for heartbeat tokens (`name/pid:random`); empty when unknown.
fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

/// What this machine knows of the process a heartbeat token names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Here {
    /// It ran here and is gone (or a zombie, or its pid now runs another program).
    Gone,
    /// It runs here, perhaps stopped: a live run.
    Alive(u32),
    /// It ran on another machine, or this one cannot tell.
    Unknown,
}

fn process_here(token: &str) -> Here {
    let Some((machine, rest)) = token.split_once('/') else {
        return Here::Unknown;
    };
    let Some(pid) = rest.split(':').next().and_then(|p| p.parse::<u32>().ok()) else {
        return Here::Unknown;
    };
    let here = machine_name();
    let Some((own_name, _)) = process_stat("self") else {
        return Here::Unknown;
    };
    if here.is_empty() || machine != here || pid == std::process::id() {
        return Here::Unknown;
    }
    match process_stat(&pid.to_string()) {
        Some((name, state)) if name == own_name && state != 'Z' => Here::Alive(pid),
        _ => Here::Gone,
    }
}

/// A process's command name and state letter, from `/proc/<pid>/stat`.
fn process_stat(pid: &str) -> Option<(String, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let state = rest.trim_start().chars().next()?;
    Some((name, state))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_a_process_gone_alive_or_elsewhere() {
        let here = machine_name();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let other_program = format!("{here}/{}:00", child.id());
        assert_eq!(
            process_here(&other_program),
            Here::Gone,
            "a pid reused by sleep"
        );
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            process_here(&other_program),
            Here::Gone,
            "a pid that is gone"
        );
        let own = format!("{here}/{}:00", std::process::id());
        assert_eq!(process_here(&own), Here::Unknown, "this very process");
        let elsewhere = format!("another-machine/{}:00", std::process::id());
        assert_eq!(process_here(&elsewhere), Here::Unknown);
        assert_eq!(process_here("garbage"), Here::Unknown);
    }
}
