//! What the workers did, over a sliding window and since start.
//!
//! Workers record each take, attempt and result as it happens; the scaler reads a summary of
//! the window once per tick (rates, latency percentiles, error rates by class) to build the
//! policy's snapshot. The window is a ring of short buckets, each with its own latency
//! histogram, so old events fall out without being stored one by one. Time is tokio's, so
//! tests drive it with paused time.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use prometheus_client::metrics::histogram::Histogram as ExportHistogram;
use tokio::time::Instant;

use crate::solver::ErrorClass;

/// Buckets per window: the window slides in steps of 1/60 of its length.
const BUCKETS_PER_WINDOW: u32 = 60;
/// Longest latency a histogram records exactly; longer ones are clamped to it.
const MAX_LATENCY_MS: u64 = 30 * 60 * 1000;
/// Upper bounds, in seconds, of the exported solve latency histogram's buckets: image tasks
/// answer in a second or two, tokens in 15–60 s, and a token is useless after about two minutes.
const SOLVE_LATENCY_BUCKETS: [f64; 16] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0,
];

/// Counts since the host started, for the status, the demo's summary and Prometheus. `failed`
/// counts every task that ended without a success, dead letters included.
#[derive(Debug, Default)]
pub struct Totals {
    pub taken: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub requeued: AtomicU64,
}

/// A summary of the window, as the snapshot needs it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WindowSummary {
    pub arrival_rate: f64,
    pub completion_rate: f64,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub attempts: u32,
    /// Fractions of attempts, indexed by [`class_index`].
    pub error_rates: [f64; 4],
}

/// The position of an error class in [`WindowSummary::error_rates`].
pub fn class_index(class: ErrorClass) -> usize {
    match class {
        ErrorClass::SolverCapacity => 0,
        ErrorClass::Account => 1,
        ErrorClass::Task => 2,
        ErrorClass::Transport => 3,
    }
}

/// Records worker events; shared by all workers and the scaler.
#[derive(Debug)]
pub struct Recorder {
    window: Mutex<Window>,
    pub totals: Totals,
    /// Every solve since start, for Prometheus (the window keeps its own, for the policy).
    solve_latency: ExportHistogram,
}

#[derive(Debug)]
struct Window {
    span: Duration,
    bucket_width: Duration,
    buckets: VecDeque<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    start: Instant,
    taken: u32,
    completed: u32,
    attempts: u32,
    errors: [u32; 4],
    latency: Histogram<u64>,
}

impl Recorder {
    pub fn new(span: Duration) -> Self {
        let bucket_width = (span / BUCKETS_PER_WINDOW).max(Duration::from_millis(10));
        Self {
            window: Mutex::new(Window {
                span,
                bucket_width,
                buckets: VecDeque::new(),
            }),
            totals: Totals::default(),
            solve_latency: ExportHistogram::new(SOLVE_LATENCY_BUCKETS),
        }
    }

    /// A worker took a task from the queue.
    pub fn taken(&self) {
        self.totals.taken.fetch_add(1, Ordering::Relaxed);
        self.with_bucket(|b| b.taken += 1);
    }

    /// A task got its final result.
    pub fn completed(&self, success: bool) {
        let counter = if success {
            &self.totals.succeeded
        } else {
            &self.totals.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.with_bucket(|b| b.completed += 1);
    }

    /// An attempt at the provider returned an answer after `latency`.
    pub fn solved(&self, latency: Duration) {
        self.solve_latency.observe(latency.as_secs_f64());
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.with_bucket(|b| {
            b.attempts += 1;
            b.latency.saturating_record(ms.clamp(1, MAX_LATENCY_MS));
        });
    }

    /// An attempt at the provider failed with an error of `class`.
    pub fn attempt_failed(&self, class: ErrorClass) {
        self.with_bucket(|b| {
            b.attempts += 1;
            b.errors[class_index(class)] += 1;
        });
    }

    /// Solve latencies since start, in seconds; clones share the same counts.
    pub fn solve_latency(&self) -> &ExportHistogram {
        &self.solve_latency
    }

    /// Summarises the events of the last window.
    pub fn summary(&self) -> WindowSummary {
        let mut window = self.lock();
        let now = Instant::now();
        window.expire(now);
        window.summarise()
    }

    fn with_bucket(&self, record: impl FnOnce(&mut Bucket)) {
        let mut window = self.lock();
        let now = Instant::now();
        window.expire(now);
        record(window.current(now));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        // A panic while holding the lock leaves counters, never broken invariants: keep going.
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Window {
    fn expire(&mut self, now: Instant) {
        while let Some(front) = self.buckets.front() {
            if now.duration_since(front.start) < self.span {
                break;
            }
            self.buckets.pop_front();
        }
    }

    fn current(&mut self, now: Instant) -> &mut Bucket {
        let fresh = match self.buckets.back() {
            Some(last) => now.duration_since(last.start) >= self.bucket_width,
            None => true,
        };
        if fresh {
            self.buckets.push_back(Bucket::new(now));
        }
        let last = self.buckets.len() - 1;
        &mut self.buckets[last]
    }

    fn summarise(&self) -> WindowSummary {
        let seconds = self.span.as_secs_f64();
        let mut latency = Bucket::histogram();
        let mut summary = WindowSummary::default();
        let (mut taken, mut completed, mut errors) = (0u32, 0u32, [0u32; 4]);
        for bucket in &self.buckets {
            taken += bucket.taken;
            completed += bucket.completed;
            summary.attempts += bucket.attempts;
            for (total, n) in errors.iter_mut().zip(bucket.errors) {
                *total += n;
            }
            // Both histograms share bounds, so adding cannot fail.
            let _ = latency.add(&bucket.latency);
        }
        summary.arrival_rate = f64::from(taken) / seconds;
        summary.completion_rate = f64::from(completed) / seconds;
        if !latency.is_empty() {
            summary.latency_p50_ms = Some(latency.value_at_quantile(0.50));
            summary.latency_p95_ms = Some(latency.value_at_quantile(0.95));
        }
        if summary.attempts > 0 {
            let attempts = f64::from(summary.attempts);
            summary.error_rates = errors.map(|n| f64::from(n) / attempts);
        }
        summary
    }
}

impl Bucket {
    fn new(start: Instant) -> Self {
        Self {
            start,
            taken: 0,
            completed: 0,
            attempts: 0,
            errors: [0; 4],
            latency: Self::histogram(),
        }
    }

    fn histogram() -> Histogram<u64> {
        // Two significant digits keep each bucket small; bounds are constants, so this holds.
        Histogram::new_with_bounds(1, MAX_LATENCY_MS, 2).unwrap_or_else(|_| {
            Histogram::new(2).unwrap_or_else(|_| unreachable!("2 significant digits are valid"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn empty_window_has_no_latency_and_no_errors() {
        let recorder = Recorder::new(Duration::from_secs(60));
        let summary = recorder.summary();
        assert_eq!(summary, WindowSummary::default());
    }

    #[tokio::test(start_paused = true)]
    async fn percentiles_come_from_the_recorded_latencies() {
        let recorder = Recorder::new(Duration::from_secs(60));
        for ms in 1..=100 {
            recorder.solved(Duration::from_millis(ms * 100));
        }
        let summary = recorder.summary();
        assert_eq!(summary.attempts, 100);
        let p50 = summary.latency_p50_ms.expect("samples");
        let p95 = summary.latency_p95_ms.expect("samples");
        assert!((4900..=5100).contains(&p50), "p50 {p50}");
        assert!((9400..=9600).contains(&p95), "p95 {p95}");
    }

    #[tokio::test(start_paused = true)]
    async fn error_rates_are_fractions_of_attempts_by_class() {
        let recorder = Recorder::new(Duration::from_secs(60));
        for _ in 0..6 {
            recorder.solved(Duration::from_secs(10));
        }
        recorder.attempt_failed(ErrorClass::Transport);
        recorder.attempt_failed(ErrorClass::SolverCapacity);
        recorder.attempt_failed(ErrorClass::SolverCapacity);
        recorder.attempt_failed(ErrorClass::Task);
        let rates = recorder.summary().error_rates;
        assert_eq!(rates[class_index(ErrorClass::SolverCapacity)], 0.2);
        assert_eq!(rates[class_index(ErrorClass::Transport)], 0.1);
        assert_eq!(rates[class_index(ErrorClass::Task)], 0.1);
        assert_eq!(rates[class_index(ErrorClass::Account)], 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn events_leave_the_window_after_its_span() {
        let recorder = Recorder::new(Duration::from_secs(60));
        for _ in 0..30 {
            recorder.taken();
            recorder.completed(true);
        }
        assert_eq!(recorder.summary().arrival_rate, 0.5);
        tokio::time::advance(Duration::from_secs(30)).await;
        recorder.taken();
        assert!((recorder.summary().arrival_rate - 31.0 / 60.0).abs() < 1e-9);
        tokio::time::advance(Duration::from_secs(31)).await;
        let summary = recorder.summary();
        assert!((summary.arrival_rate - 1.0 / 60.0).abs() < 1e-9);
        assert_eq!(summary.completion_rate, 0.0);
        assert_eq!(recorder.totals.taken.load(Ordering::Relaxed), 31);
    }
}
