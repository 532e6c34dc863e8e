//! `autoscaler replay`: run policies against a simulated pool in virtual time and compare them
//! on cost and queue wait.
//!
//! Each policy replays the same load (a bundled scenario or a trace) on its own simulated pool,
//! one after the other, on a current-thread runtime with paused time. The comparison table goes
//! to stdout; with `--out` the summary, a CSV of every tick and an SVG chart per policy are
//! written too.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;

use crate::cli::{CliError, PoolOverrides, load_config, parse_duration};
use crate::policy::PolicyEngine;
use crate::replay::{
    self, DEFAULT_WORKER_HOUR_USD, Load, PolicyRun, PolicySpec, ReplayError, ReplaySettings,
    Scenario, report, trace,
};

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A policy: a bundled one (threshold, static, fixed-step, target-tracking) or a .wasm
    /// file, with parameters after a colon (static:workers=50). Repeat to compare policies.
    #[arg(long = "policy", value_name = "POLICY", required = true)]
    pub policies: Vec<PolicySpec>,
    /// A bundled hour of load.
    #[arg(
        long,
        value_enum,
        required_unless_present = "trace",
        conflicts_with = "trace"
    )]
    pub scenario: Option<Scenario>,
    /// A recorded load: a CSV of arrival_s[,method[,solve_s]] lines (see the README).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Write summary.csv, summary.md, and a CSV and an SVG chart per policy into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seed of every random draw: the same seed gives the same table.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// TOML config file: its [pool] and [captchaai] timings are replayed ([policy.params] are
    /// not: give parameters with each --policy).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub pool: PoolOverrides,
    /// The queue wait the table counts time beyond.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub wait_target: Duration,
    /// What one worker costs for an hour, in US dollars, for the cost column.
    #[arg(long, default_value_t = DEFAULT_WORKER_HOUR_USD)]
    pub worker_hour_usd: f64,
}

pub async fn execute(args: ReplayArgs) -> Result<(), CliError> {
    // The replay needs a runtime of its own, with paused time, off this one's threads.
    tokio::task::spawn_blocking(move || replay(args))
        .await
        .map_err(|e| CliError::Failed(anyhow!("the replay panicked: {e}")))?
}

fn replay(args: ReplayArgs) -> Result<(), CliError> {
    let settings = settings(&args).map_err(CliError::Usage)?;
    let load = load(&args).map_err(|e| CliError::Usage(e.into()))?;
    let engine = PolicyEngine::new().context("failed to start the policy engine")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .context("failed to start the replay's runtime")?;
    let runs = runtime
        .block_on(replay_all(&load, &args.policies, &engine, &settings))
        .map_err(|e| CliError::Failed(e.into()))?;
    print_table(&load, &runs, &settings, args.seed);
    if let Some(dir) = &args.out {
        let written = replay::write_outputs(dir, &load, &runs, &settings)
            .map_err(|e| CliError::Failed(e.into()))?;
        println!("\nwrote {} files to {}", written.len(), dir.display());
    }
    Ok(())
}

/// The host's defaults, the config file, then the flags.
fn settings(args: &ReplayArgs) -> anyhow::Result<ReplaySettings> {
    let mut config = load_config(args.config.as_ref())?;
    args.pool.apply(&mut config.pool);
    let mut settings = ReplaySettings::from_config(&config);
    settings.wait_target = args.wait_target;
    settings.worker_hour_usd = args.worker_hour_usd;
    settings.check()?;
    Ok(settings)
}

fn load(args: &ReplayArgs) -> Result<Load, ReplayError> {
    match (&args.trace, args.scenario) {
        (Some(path), _) => trace::read(path, args.seed),
        (None, Some(scenario)) => Ok(scenario.load(args.seed)),
        (None, None) => Err(ReplayError::Settings(
            "give --scenario NAME or --trace FILE".into(),
        )),
    }
}

async fn replay_all(
    load: &Load,
    policies: &[PolicySpec],
    engine: &PolicyEngine,
    settings: &ReplaySettings,
) -> Result<Vec<PolicyRun>, ReplayError> {
    let mut runs = Vec::with_capacity(policies.len());
    for policy in policies {
        runs.push(replay::replay_policy(load, policy, engine, settings).await?);
    }
    Ok(runs)
}

fn print_table(load: &Load, runs: &[PolicyRun], settings: &ReplaySettings, seed: u64) {
    println!(
        "replay of {}: {} tasks over {}, seed {seed}, workers {}..{}, tick {}\n",
        load.name,
        load.tasks.len(),
        humantime::format_duration(load.duration),
        settings.pool.min_workers,
        settings.pool.max_workers,
        humantime::format_duration(settings.pool.tick),
    );
    let rows: Vec<_> = runs.iter().map(|r| r.summary.clone()).collect();
    print!("{}", report::text_table(&rows, settings.wait_target));
}
