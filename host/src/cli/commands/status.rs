//! `autoscaler status`: every live host's status, read from Redis.

use clap::Args;

use crate::cli::{CliError, load_config};
use crate::queue::{Keys, Queue};
use crate::status::HostStatus;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// TOML config file, for the Redis URL and key names.
    #[arg(long, short)]
    pub config: Option<std::path::PathBuf>,
    /// Print the raw JSON statuses, one per line.
    #[arg(long)]
    pub json: bool,
}

pub async fn execute(args: StatusArgs) -> Result<(), CliError> {
    let config = load_config(args.config.as_ref()).map_err(|e| CliError::Usage(e.into()))?;
    let keys = Keys::new(&config.redis, &config.host_id());
    let mut queue = Queue::connect(&config.redis.url, keys, None).await?;
    let statuses = queue
        .read_statuses()
        .await
        .map_err(|e| CliError::Failed(anyhow::anyhow!("failed to read host statuses: {e}")))?;
    if args.json {
        for status in &statuses {
            println!("{status}");
        }
        return Ok(());
    }
    if statuses.is_empty() {
        println!("no live autoscaler host publishes to {}", config.redis.url);
        return Ok(());
    }
    println!("{}", HostStatus::TABLE_HEADER);
    let now = crate::clock::unix_ms();
    for raw in statuses {
        match serde_json::from_str::<HostStatus>(&raw) {
            Ok(status) => println!("{}", status.table_row(now)),
            Err(e) => println!("(unreadable status: {e})"),
        }
    }
    Ok(())
}
