//! Replaying load through policies in virtual time, to compare them on cost and wait.
//!
//! A replay runs the real [`Scaler`](crate::scaler::Scaler) with the real compiled policy,
//! the real [`Recorder`](crate::metrics::Recorder) and the host's pool sizing rules
//! ([`Roster`](crate::pool::Roster)) over a simulated pool and queue, on a current-thread tokio
//! runtime whose clock is paused: an hour of load takes about a second per policy.
//!
//! - [`load`]: what is replayed, from a bundled [`scenario`] or a [`trace`] file;
//! - [`provider`]: how long an attempt takes and how it ends; [`worker`]: what a worker does
//!   with a task; [`pool`]: the simulated pool and queue the scaler sees;
//! - [`run`]: the event loop; [`stats`]: what it measures;
//! - [`report`], [`chart`]: the comparison table, the CSVs and the SVG charts;
//! - [`policies`]: which policies, bundled or from files, with their parameters.
//!
//! Everything a replay draws comes from its seed, and the policy is called inline on the one
//! thread, so a replay with the same seed gives the same table.

pub mod chart;
pub mod error;
pub mod load;
pub mod policies;
pub mod pool;
pub mod progress;
pub mod provider;
pub mod report;
pub mod run;
pub mod scenario;
pub mod stats;
pub mod trace;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use error::ReplayError;
pub use load::Load;
pub use policies::PolicySpec;
pub use scenario::Scenario;
pub use stats::{Summary, TickRow};

use crate::config::{CaptchaAiConfig, Config, PoolConfig};
use crate::policy::{Limits, PolicyEngine};
use progress::Progress;

/// Queue wait the table counts time over by default.
pub const DEFAULT_WAIT_TARGET: Duration = Duration::from_secs(60);
/// Nominal price of one worker (one plan thread) for an hour, in US dollars; pass your plan's.
pub const DEFAULT_WORKER_HOUR_USD: f64 = 0.01;

/// How every policy of a comparison is replayed.
#[derive(Debug, Clone)]
pub struct ReplaySettings {
    /// The queue wait the table's "over" column counts time beyond.
    pub wait_target: Duration,
    /// What a worker costs per hour, for the table's cost column.
    pub worker_hour_usd: f64,
    /// Bounds, tick, window, task timeout, retries, drain timeout: as the host's `[pool]`.
    pub pool: PoolConfig,
    /// Poll timings and the balance read interval: as the host's `[captchaai]`.
    pub captchaai: CaptchaAiConfig,
    pub limits: Limits,
}

impl ReplaySettings {
    /// The host's defaults from `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            wait_target: DEFAULT_WAIT_TARGET,
            worker_hour_usd: DEFAULT_WORKER_HOUR_USD,
            pool: config.pool.clone(),
            captchaai: config.captchaai.clone(),
            limits: Limits::from_config(&config.policy),
        }
    }

    /// Rejects settings no replay can run with.
    pub fn check(&self) -> Result<(), ReplayError> {
        if self.pool.min_workers > self.pool.max_workers {
            return Err(ReplayError::Settings(format!(
                "--min-workers {} is above --max-workers {}: \
                 lower the minimum or raise the maximum",
                self.pool.min_workers, self.pool.max_workers
            )));
        }
        if self.pool.tick.is_zero() {
            return Err(ReplayError::Settings(
                "--tick must be longer than zero, e.g. 10s".into(),
            ));
        }
        Ok(())
    }
}

/// One policy's replay: its table row and its ticks.
#[derive(Debug, Clone)]
pub struct PolicyRun {
    pub summary: Summary,
    pub ticks: Vec<TickRow>,
}

/// Replays `load` through `policy`.
///
/// Must run on a current-thread tokio runtime with paused time (`start_paused`): the replay
/// moves the clock itself.
pub async fn replay_policy(
    load: &Load,
    policy: &PolicySpec,
    engine: &PolicyEngine,
    settings: &ReplaySettings,
) -> Result<PolicyRun, ReplayError> {
    let slot = Arc::new(policy.load(engine, &settings.limits)?);
    let mut progress = Progress::new(&policy.label);
    let (mut summary, ticks) = run::Replay::new(load, settings, slot)
        .run(|done| progress.set(done))
        .await;
    progress.finish();
    summary.policy = policy.label.clone();
    Ok(PolicyRun { summary, ticks })
}

/// Writes the summary (CSV and Markdown), and each policy's ticks (CSV) and chart (SVG) into
/// `dir`; returns the files written.
pub fn write_outputs(
    dir: &Path,
    load: &Load,
    runs: &[PolicyRun],
    settings: &ReplaySettings,
) -> Result<Vec<PathBuf>, ReplayError> {
    let write = |name: String, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| ReplayError::Write {
            path: path.clone(),
            source,
        })?;
        Ok::<PathBuf, ReplayError>(path)
    };
    std::fs::create_dir_all(dir).map_err(|source| ReplayError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let rows: Vec<Summary> = runs.iter().map(|r| r.summary.clone()).collect();
    let mut written = vec![
        write("summary.csv".into(), report::summary_csv(&rows))?,
        write(
            "summary.md".into(),
            report::markdown_table(&rows, settings.wait_target),
        )?,
    ];
    for (stem, run) in file_stems(runs).into_iter().zip(runs) {
        let title = format!("{} · {}", load.name, run.summary.policy);
        written.push(write(format!("{stem}.csv"), report::ticks_csv(&run.ticks))?);
        written.push(write(
            format!("{stem}.svg"),
            chart::svg(&title, &run.ticks),
        )?);
    }
    Ok(written)
}

/// A file name per run from its policy's label, unique within the comparison.
fn file_stems(runs: &[PolicyRun]) -> Vec<String> {
    let mut stems: Vec<String> = Vec::with_capacity(runs.len());
    for run in runs {
        let base = slug(&run.summary.policy);
        let taken = stems
            .iter()
            .filter(|s| s.split('.').next() == Some(base.as_str()))
            .count();
        stems.push(match taken {
            0 => base,
            n => format!("{base}.{}", n + 1),
        });
    }
    stems
}

/// Letters, digits, `-` and `_` kept; anything else (`/`, `:`, `=`, `,`) becomes `-`.
fn slug(label: &str) -> String {
    let name = Path::new(label.split(':').next().unwrap_or(label))
        .file_stem()
        .map_or_else(|| label.to_owned(), |s| s.to_string_lossy().into_owned());
    let params = label.split_once(':').map(|(_, p)| p).unwrap_or("");
    let raw = if params.is_empty() {
        name
    } else {
        format!("{name}-{params}")
    };
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_come_from_labels_and_stay_unique() {
        assert_eq!(slug("static:workers=50"), "static-workers-50");
        assert_eq!(slug("policies/my.wasm"), "my");
        assert_eq!(slug("threshold"), "threshold");
        let run = |label: &str| PolicyRun {
            summary: Summary {
                policy: label.into(),
                ..Summary::default()
            },
            ticks: Vec::new(),
        };
        let stems = file_stems(&[run("threshold"), run("threshold"), run("static")]);
        assert_eq!(stems, ["threshold", "threshold.2", "static"]);
    }

    #[test]
    fn bounds_out_of_order_are_refused() {
        let mut settings = ReplaySettings::from_config(&Config::default());
        settings.pool.min_workers = 9;
        settings.pool.max_workers = 3;
        let err = settings.check().expect_err("inverted bounds");
        assert_eq!(
            err.to_string(),
            "--min-workers 9 is above --max-workers 3: lower the minimum or raise the maximum"
        );
    }
}
