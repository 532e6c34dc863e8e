//! `autoscaler run`: the pool, until SIGTERM or Ctrl-C. SIGHUP reloads the policy file, even
//! when its bytes did not change (the watcher in `policy::reload` handles it).
//!
//! The first signal stops taking tasks and drains (in-flight tasks finish up to
//! `pool.drain_timeout`, the rest return to the queue, exit 0); a second signal ends the drain
//! at once, still returning what it can, and exits 130.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::cli::{CliError, PoolOverrides, load_config};
use crate::config::{ConfigError, Misconfigured, PoolConfig};
use crate::observe::MetricsListen;
use crate::observe::config::parse_listen;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// TOML config file (see the README for every key).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// A policy component to use instead of the embedded default; watched and hot-reloaded.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub pool: PoolOverrides,
    /// Overrides metrics.listen: where /metrics, /healthz and /status are served, or "off".
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listen)]
    pub metrics_listen: Option<MetricsListen>,
    /// Measure and ask the policy every tick, log and export its target, but keep the pool at
    /// a fixed size.
    #[arg(long)]
    pub dry_run: bool,
    /// The size the pool keeps in a dry run [default: pool.min_workers].
    #[arg(long, value_name = "N", requires = "dry_run")]
    pub dry_run_workers: Option<u32>,
}

pub async fn execute(args: RunArgs) -> Result<(), CliError> {
    let config = config_from(&args).map_err(|e| CliError::Usage(e.into()))?;
    let api_key = config
        .api_key(|name| std::env::var(name).ok())
        .map_err(|e| CliError::Usage(e.into()))?
        .ok_or_else(|| {
            CliError::Usage(anyhow::anyhow!(
                "no CaptchaAI API key: set CAPTCHAAI_KEY, or CAPTCHAAI_KEY_FILE / \
                 captchaai.key_file to a file holding it"
            ))
        })?;
    let (stop, hurry) = (CancellationToken::new(), CancellationToken::new());
    tokio::spawn(stop_on_signals(stop.clone(), hurry.clone()));
    tracing::info!(host_id = %config.host_id(), "starting");
    let summary = crate::service::run_with(config, api_key, stop, hurry.clone(), None)
        .await
        .map_err(|e| {
            if e.downcast_ref::<Misconfigured>().is_some() {
                CliError::Usage(e.context("the pool could not start"))
            } else {
                CliError::Failed(e.context("the pool stopped"))
            }
        })?;
    tracing::info!(
        ticks = summary.ticks,
        taken = summary.taken,
        succeeded = summary.succeeded,
        failed = summary.failed,
        dead_lettered = summary.dead_lettered,
        peak_workers = summary.peak_workers,
        worker_seconds = summary.worker_seconds,
        scale_ups = summary.scale_ups,
        scale_downs = summary.scale_downs,
        "stopped"
    );
    if hurry.is_cancelled() {
        std::process::exit(INTERRUPTED);
    }
    Ok(())
}

/// The file, then the environment, then the flags; then the checks.
fn config_from(args: &RunArgs) -> Result<crate::config::Config, ConfigError> {
    let mut config = load_config(args.config.as_ref())?;
    if let Some(policy) = &args.policy {
        config.policy.file = Some(policy.clone());
    }
    args.pool.apply(&mut config.pool);
    if let Some(MetricsListen(listen)) = args.metrics_listen {
        config.metrics.listen = listen;
    }
    config.validate()?;
    if args.dry_run {
        config.dry_run = Some(dry_run_size(args.dry_run_workers, &config.pool)?);
    }
    Ok(config)
}

/// The size a dry run keeps: `--dry-run-workers`, else pool.min_workers; within the bounds.
fn dry_run_size(workers: Option<u32>, pool: &PoolConfig) -> Result<u32, ConfigError> {
    let workers = workers.unwrap_or(pool.min_workers);
    if (pool.min_workers..=pool.max_workers).contains(&workers) {
        return Ok(workers);
    }
    Err(ConfigError::Invalid {
        key: "--dry-run-workers",
        value: workers.to_string(),
        hint: format!(
            "must be within pool.min_workers ({}) and pool.max_workers ({})",
            pool.min_workers, pool.max_workers
        ),
    })
}

/// The exit code after a second stop signal cut the drain short.
const INTERRUPTED: i32 = 130;
/// After the second signal, the longest wait for in-flight tasks to return to the queue.
const HURRY_LIMIT: Duration = Duration::from_secs(5);

/// Cancels `stop` on the first SIGTERM or Ctrl-C. The second cancels `hurry`, so in-flight
/// tasks return to the queue at once; the process exits when that is done, after
/// [`HURRY_LIMIT`], or on a third signal, whichever comes first.
async fn stop_on_signals(stop: CancellationToken, hurry: CancellationToken) {
    wait_for_signal().await;
    tracing::info!("stop requested: draining (signal again to stop at once)");
    stop.cancel();
    wait_for_signal().await;
    tracing::warn!("second stop signal: returning in-flight tasks to the queue and exiting");
    hurry.cancel();
    tokio::select! {
        _ = tokio::time::sleep(HURRY_LIMIT) => {}
        _ = wait_for_signal() => {}
    }
    tracing::warn!("exiting now; tasks still in the processing list go back at the next start");
    std::process::exit(INTERRUPTED);
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_keeps_the_minimum_unless_told_otherwise() {
        let pool = PoolConfig {
            min_workers: 2,
            max_workers: 10,
            ..PoolConfig::default()
        };
        assert_eq!(dry_run_size(None, &pool).expect("min"), 2);
        assert_eq!(dry_run_size(Some(7), &pool).expect("given"), 7);
        let err = dry_run_size(Some(11), &pool).expect_err("above max");
        assert_eq!(
            err.to_string(),
            "invalid --dry-run-workers = 11: must be within pool.min_workers (2) and \
             pool.max_workers (10)"
        );
    }
}
