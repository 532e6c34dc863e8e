//! `autoscaler api-sim`: a local CaptchaAI simulator, for demos and tests without an API key.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use crate::cli::{CliError, parse_duration_range};
use crate::sim::SimConfig;

#[derive(Debug, Args)]
pub struct ApiSimArgs {
    /// Address to listen on; keep it on loopback.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// How long a solve takes, uniformly drawn from MIN..MAX.
    #[arg(long, default_value = "5s..15s", value_parser = parse_duration_range)]
    pub solve_time: (Duration, Duration),
    /// Fraction of tasks answered ERROR_CAPTCHA_UNSOLVABLE.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Concurrent tasks per key; more get ERROR_NO_SLOT_AVAILABLE.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: u32,
    /// Starting balance in US dollars; ERROR_ZERO_BALANCE once it is spent.
    #[arg(long, default_value_t = 10.0)]
    pub balance: f64,
    /// Price of one solved task in US dollars.
    #[arg(long, default_value_t = 0.001)]
    pub price: f64,
    /// Seed for solve times and errors, for reproducible runs.
    #[arg(long)]
    pub seed: Option<u64>,
}

pub async fn execute(args: ApiSimArgs) -> Result<(), CliError> {
    if !(0.0..=1.0).contains(&args.error_rate) {
        return Err(CliError::Usage(anyhow::anyhow!(
            "--error-rate {} must be between 0 and 1",
            args.error_rate
        )));
    }
    let config = SimConfig {
        solve_time: args.solve_time,
        error_rate: args.error_rate,
        threads: args.threads,
        balance_usd: args.balance,
        price_usd: args.price,
        seed: args.seed,
        ..SimConfig::default()
    };
    let sim = crate::sim::start(args.listen, config).await?;
    println!("CaptchaAI simulator listening on {}", sim.base_url());
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    Ok(())
}
