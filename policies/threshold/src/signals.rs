//! Reading the signals table off a snapshot: which up-signals fire and how many workers each
//! asks for, whether the tick is a low-load tick, and how many workers the load needs.
//!
//! Step sizes come from the need: the backlog and utilization signals compute the workers the
//! load needs now; the latency signal lags (it covers the whole window), so it asks for a step
//! proportional to how far P95 is over its threshold, at most once per window after a scale-up.
//! The error signal asks for one fresh worker, also at most once per window: the host's workers
//! share one HTTP client, so more of them bring no fresh connections, and the time errors cost
//! (retries, backoff) already shows as busy workers and a backlog.
//!
//! Rates over a small window are noisy: two errors in thirty attempts are 7 %. The error signals
//! count only once the window holds `error_min_count` errors.

use autoscaler_policy_sdk::Snapshot;

use crate::config::Config;
use crate::format::{number, percent, seconds};

/// The largest factor a proportional step multiplies the active workers by.
pub const MAX_PROPORTIONAL_FACTOR: f64 = 2.0;

/// An up-signal that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct UpSignal {
    /// The signal and its numbers, e.g. `queue 140 > 20`.
    pub label: Label,
    /// The worker count it asks for, or `None` while a lagging signal waits out its window.
    pub wants: Option<u32>,
    /// What the step is for (`for backlog`), or why it waits (`scaled up 20s ago`).
    pub note: Note,
}

/// A signal and its numbers. Kept as numbers and written out only for the reason of the
/// decision, since most ticks discard all but one signal and formatting floats dominates a
/// tick's cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Label {
    Queue { depth: u32, up: u32 },
    QueueWithoutWorker { depth: u32 },
    Utilization { value: f64, up: f64 },
    Latency { p95_s: f64, up_s: f64 },
    Errors { rate: f64, up: f64 },
}

/// What a step is for, or why a lagging signal waits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Note {
    For(&'static str),
    ToReach(f64),
    ScaledUpAgo(u64),
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::Queue { depth, up } => write!(f, "queue {depth} > {up}"),
            Self::QueueWithoutWorker { depth } => write!(f, "queue {depth} with no worker"),
            Self::Utilization { value, up } => {
                write!(f, "utilization {} > {}", percent(value), percent(up))
            }
            Self::Latency { p95_s, up_s } => {
                write!(f, "p95 {}s > {}s", number(p95_s), number(up_s))
            }
            Self::Errors { rate, up } => write!(f, "errors {} > {}", percent(rate), percent(up)),
        }
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::For(purpose) => f.write_str(purpose),
            Self::ToReach(target) => write!(f, "to reach {}", percent(target)),
            Self::ScaledUpAgo(ms) => write!(f, "scaled up {} ago", seconds(ms)),
        }
    }
}

/// Every up-signal that fires on `snapshot`, in the order of the signals table.
pub fn up_signals(config: &Config, snapshot: &Snapshot) -> Vec<UpSignal> {
    [
        backlog(config, snapshot),
        utilization(config, snapshot),
        latency(config, snapshot),
        errors(config, snapshot),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Whether every signal is in its low-load range. No latency sample is not a missing signal:
/// an idle pool solves nothing; fewer than `error_min_count` errors are no error signal.
pub fn low_load(config: &Config, snapshot: &Snapshot) -> bool {
    let latency_low = snapshot
        .latency_p95_ms
        .is_none_or(|ms| as_seconds(ms) < config.p95_down_s);
    let errors_low = retryable_error_rate(snapshot) < config.error_down
        || retryable_errors(snapshot) < config.error_min_count;
    snapshot.queue_depth < config.queue_down
        && snapshot.utilization < config.utilization_down
        && latency_low
        && errors_low
}

/// The workers the current load needs: the busy ones plus the backlog's share, or enough to
/// bring utilization to its target, whichever is more. Never below `busy`.
pub fn needed(config: &Config, snapshot: &Snapshot) -> u32 {
    let for_backlog = backlog_target(config, snapshot);
    let for_utilization = ceil_div(snapshot.busy, config.target_utilization);
    for_backlog.max(for_utilization).max(snapshot.busy)
}

/// Transport and task errors: the errors fresh workers may cure.
pub fn retryable_error_rate(snapshot: &Snapshot) -> f64 {
    snapshot.errors.transport + snapshot.errors.task
}

/// How many transport and task errors the window holds.
pub fn retryable_errors(snapshot: &Snapshot) -> u32 {
    (retryable_error_rate(snapshot) * f64::from(snapshot.attempts)).round() as u32
}

/// The queue is over `queue_up`, or holds tasks with no active worker to take them.
fn backlog(config: &Config, snapshot: &Snapshot) -> Option<UpSignal> {
    let queue = snapshot.queue_depth;
    let label = if queue > config.queue_up {
        Label::Queue {
            depth: queue,
            up: config.queue_up,
        }
    } else if queue > 0 && snapshot.active_workers() == 0 {
        Label::QueueWithoutWorker { depth: queue }
    } else {
        return None;
    };
    Some(UpSignal {
        label,
        wants: Some(backlog_target(config, snapshot)),
        note: Note::For("for backlog"),
    })
}

/// Utilization is over `utilization_up` while at least `queue_down` tasks wait: aim for
/// `target_utilization`. A busy pool with an empty queue serves its load; a few waiting tasks
/// are the buffer that lets the pool run near its target.
fn utilization(config: &Config, snapshot: &Snapshot) -> Option<UpSignal> {
    if snapshot.utilization <= config.utilization_up || snapshot.queue_depth < config.queue_down {
        return None;
    }
    Some(UpSignal {
        label: Label::Utilization {
            value: snapshot.utilization,
            up: config.utilization_up,
        },
        wants: Some(ceil_div(snapshot.busy, config.target_utilization)),
        note: Note::ToReach(config.target_utilization),
    })
}

/// The P95 solve latency is over `p95_up_s`.
fn latency(config: &Config, snapshot: &Snapshot) -> Option<UpSignal> {
    let p95 = as_seconds(snapshot.latency_p95_ms?);
    if p95 <= config.p95_up_s {
        return None;
    }
    let label = Label::Latency {
        p95_s: p95,
        up_s: config.p95_up_s,
    };
    let wants = proportional(snapshot.active_workers(), p95 / config.p95_up_s);
    Some(lagging(snapshot, label, wants, "for latency"))
}

/// Transport and task errors are over `error_up`, there are at least `error_min_count`, and
/// at least `queue_down` tasks wait for a worker.
fn errors(config: &Config, snapshot: &Snapshot) -> Option<UpSignal> {
    let rate = retryable_error_rate(snapshot);
    if rate <= config.error_up
        || retryable_errors(snapshot) < config.error_min_count
        || snapshot.queue_depth < config.queue_down
    {
        return None;
    }
    let label = Label::Errors {
        rate,
        up: config.error_up,
    };
    let wants = snapshot.active_workers().saturating_add(1);
    Some(lagging(snapshot, label, wants, "for a fresh worker"))
}

/// A window-long signal: its step, or a wait if the pool grew within the window (the window
/// still holds the samples from before that step took effect).
fn lagging(snapshot: &Snapshot, label: Label, wants: u32, purpose: &'static str) -> UpSignal {
    let window_ms = u64::from(snapshot.window_ms);
    let recent_up = snapshot.since_scale_up_ms.filter(|&ms| ms < window_ms);
    let (wants, note) = match recent_up {
        Some(ms) => (None, Note::ScaledUpAgo(ms)),
        None => (Some(wants), Note::For(purpose)),
    };
    UpSignal { label, wants, note }
}

/// The busy workers plus one per `tasks_per_worker` waiting tasks.
fn backlog_target(config: &Config, snapshot: &Snapshot) -> u32 {
    let for_queue = snapshot.queue_depth.div_ceil(config.tasks_per_worker);
    snapshot.busy.saturating_add(for_queue)
}

/// `current` scaled by `ratio` (capped at [`MAX_PROPORTIONAL_FACTOR`]), and at least one more.
fn proportional(current: u32, ratio: f64) -> u32 {
    let factor = ratio.min(MAX_PROPORTIONAL_FACTOR);
    let scaled = (f64::from(current) * factor).ceil() as u32;
    scaled.max(current.saturating_add(1))
}

/// `ceil(count / fraction)`, forgiving the rounding error of the division (6 / 0.6 is 10).
fn ceil_div(count: u32, fraction: f64) -> u32 {
    (f64::from(count) / fraction - 1e-9).ceil().max(0.0) as u32
}

/// Milliseconds as seconds.
fn as_seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoscaler_policy_sdk::testing;

    #[test]
    fn ceil_div_forgives_rounding() {
        assert_eq!(ceil_div(6, 0.6), 10);
        assert_eq!(ceil_div(7, 0.6), 12);
        assert_eq!(ceil_div(0, 0.6), 0);
    }

    #[test]
    fn proportional_steps_are_at_least_one_and_at_most_double() {
        assert_eq!(proportional(10, 1.01), 11);
        assert_eq!(proportional(10, 1.5), 15);
        assert_eq!(proportional(10, 9.0), 20);
        assert_eq!(proportional(0, 1.5), 1);
    }

    #[test]
    fn needed_covers_busy_workers_and_the_backlog() {
        let config = Config::default();
        let snapshot = Snapshot {
            workers: 12,
            busy: 3,
            queue_depth: 4,
            ..testing::quiet()
        };
        // busy 3 + ceil(4 / 8) = 4; ceil(3 / 0.95) = 4.
        assert_eq!(needed(&config, &snapshot), 4);
    }

    #[test]
    fn no_latency_sample_still_counts_as_low_load() {
        let config = Config::default();
        assert!(low_load(&config, &testing::quiet()));
        let slow = Snapshot {
            latency_p95_ms: Some(50_000),
            ..testing::quiet()
        };
        assert!(!low_load(&config, &slow));
    }
}
