//! The command line: one subcommand per file under `commands/`.

pub mod commands;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, ConfigError};

/// A CAPTCHA-solving worker pool whose size a WebAssembly policy sets.
#[derive(Debug, Parser)]
#[command(name = "autoscaler", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pool: take tasks from Redis, solve them, scale with the policy.
    Run(commands::run::RunArgs),
    /// Run a local CaptchaAI simulator that speaks the real protocol.
    ApiSim(commands::api_sim::ApiSimArgs),
    /// Push synthetic tasks, or tasks from a JSON-lines file, onto the queue.
    Enqueue(commands::enqueue::EnqueueArgs),
    /// Show every live host's status from Redis.
    Status(commands::status::StatusArgs),
    /// See the pool scale up under a burst and back down, in about a minute.
    Demo(commands::demo::DemoArgs),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
    /// Replay load through policies in virtual time and compare their cost and queue wait.
    Replay(commands::replay::ReplayArgs),
}

/// How a command failed: bad usage or configuration (exit 2), or at run time (exit 1).
#[derive(Debug)]
pub enum CliError {
    Usage(anyhow::Error),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        if e.downcast_ref::<ConfigError>().is_some() {
            Self::Usage(e)
        } else {
            Self::Failed(e)
        }
    }
}

/// Runs the chosen command on a fresh tokio runtime.
pub fn execute(cli: Cli) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(e.into()))?;
    runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => commands::run::execute(args).await,
            Command::ApiSim(args) => commands::api_sim::execute(args).await,
            Command::Enqueue(args) => commands::enqueue::execute(args).await,
            Command::Status(args) => commands::status::execute(args).await,
            Command::Demo(args) => commands::demo::execute(args).await,
            Command::Policy(command) => commands::policy::execute(command).await,
            Command::Replay(args) => commands::replay::execute(args).await,
        }
    })
}

/// Logs to stderr, filtered by `RUST_LOG` (default: info; warn for the demo, which prints
/// its own lines), in colour only when stderr is a terminal.
pub fn init_logging(cli: &Cli) {
    let default = match cli.command {
        Command::Demo(_) | Command::Policy(_) | Command::Replay(_) => "warn",
        _ => "info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match cli.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Reads the config file (if any) and applies the environment, then checks it.
pub fn load_config(path: Option<&PathBuf>) -> Result<Config, ConfigError> {
    let mut config = match path {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.apply_env(|name| std::env::var(name).ok());
    Ok(config)
}

/// Parses `1s`, `250ms`, `2m`.
/// `--min-workers`, `--max-workers` and `--tick`: the pool settings `run` and `replay` let a
/// flag override.
#[derive(Debug, clap::Args)]
pub struct PoolOverrides {
    /// Overrides pool.min_workers.
    #[arg(long)]
    pub min_workers: Option<u32>,
    /// Overrides pool.max_workers.
    #[arg(long)]
    pub max_workers: Option<u32>,
    /// Overrides pool.tick, e.g. 10s.
    #[arg(long, value_parser = parse_duration)]
    pub tick: Option<Duration>,
}

impl PoolOverrides {
    pub fn apply(&self, pool: &mut crate::config::PoolConfig) {
        if let Some(n) = self.min_workers {
            pool.min_workers = n;
        }
        if let Some(n) = self.max_workers {
            pool.max_workers = n;
        }
        if let Some(tick) = self.tick {
            pool.tick = tick;
        }
    }
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write it like 10s, 500ms or 2m)"))
}

/// Parses a range of durations written `MIN..MAX`, e.g. `1s..3s`.
pub fn parse_duration_range(text: &str) -> Result<(Duration, Duration), String> {
    let (min, max) = text
        .split_once("..")
        .ok_or_else(|| format!("{text:?} is not a range: write it like 1s..3s"))?;
    let (min, max) = (parse_duration(min)?, parse_duration(max)?);
    if min > max {
        return Err(format!("{text:?}: the minimum is above the maximum"));
    }
    Ok((min, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_ranges_parse() {
        assert_eq!(
            parse_duration_range("500ms..2s"),
            Ok((Duration::from_millis(500), Duration::from_secs(2)))
        );
        assert!(parse_duration_range("2s..1s").is_err());
        assert!(parse_duration_range("2s").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
