//! `autoscaler enqueue`: push tasks as a producer would, synthetic or from a JSON-lines file.
//!
//! Synthetic tasks carry an `enqueued_at` stamp so the host can measure queue wait. Lines of
//! a file are pushed as they are, after a check that each is a task, so a typo is caught here
//! rather than becoming an error result.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::{Map, Value, json};

use crate::cli::{CliError, load_config};
use crate::queue::{Keys, Queue};
use crate::task::Task;

/// Tasks pushed per RPUSH.
const BATCH: usize = 500;

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// TOML config file, for the Redis URL and key names.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// How many synthetic tasks to push.
    #[arg(long, short = 'n', default_value_t = 100, conflicts_with = "file")]
    pub count: usize,
    /// The method of synthetic tasks: userrecaptcha, turnstile, hcaptcha or base64.
    #[arg(long, default_value = "userrecaptcha")]
    pub method: String,
    /// A JSON-lines file of tasks to push instead of synthetic ones.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Prefix of synthetic task ids.
    #[arg(long, default_value = "task")]
    pub id_prefix: String,
}

pub async fn execute(args: EnqueueArgs) -> Result<(), CliError> {
    let config = load_config(args.config.as_ref()).map_err(|e| CliError::Usage(e.into()))?;
    let tasks = match &args.file {
        Some(path) => read_file(path).map_err(CliError::Usage)?,
        None => synthetic(
            &args.id_prefix,
            &args.method,
            args.count,
            crate::clock::unix_ms(),
        ),
    };
    let keys = Keys::new(&config.redis, &config.host_id());
    let mut queue = Queue::connect(&config.redis.url, keys, None).await?;
    for batch in tasks.chunks(BATCH) {
        queue
            .push(batch)
            .await
            .with_context(|| format!("failed to push tasks onto {}", config.redis.queue))?;
    }
    println!("pushed {} tasks onto {}", tasks.len(), config.redis.queue);
    Ok(())
}

/// `count` tasks of `method` with sample parameters, ids `prefix-<start>-<n>`.
pub fn synthetic(prefix: &str, method: &str, count: usize, now_ms: u64) -> Vec<String> {
    (0..count)
        .map(|n| {
            let task = Task {
                id: format!("{prefix}-{now_ms}-{n}"),
                method: method.to_owned(),
                params: sample_params(method),
                enqueued_at_ms: Some(now_ms),
                deadline_ms: None,
            };
            task.to_json()
        })
        .collect()
}

fn sample_params(method: &str) -> Map<String, Value> {
    let params = match method {
        "turnstile" => {
            json!({"sitekey": "0x4AAAAAAA-demo", "pageurl": "https://example.com/login"})
        }
        "hcaptcha" => json!({"sitekey": "demo-site-key", "pageurl": "https://example.com/login"}),
        "base64" => json!({"body": "aGVsbG8gd29ybGQ="}),
        _ => json!({"googlekey": "6Le-demo-site-key", "pageurl": "https://example.com/login"}),
    };
    match params {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn read_file(path: &PathBuf) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read tasks from \"{}\"", path.display()))?;
    let mut tasks = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        Task::parse(line.as_bytes())
            .with_context(|| format!("\"{}\" line {}: not a task", path.display(), n + 1))?;
        tasks.push(line.to_owned());
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_tasks_are_valid_and_unique() {
        let tasks = synthetic("t", "userrecaptcha", 3, 42);
        let parsed: Vec<Task> = tasks
            .iter()
            .map(|t| Task::parse(t.as_bytes()).expect("valid"))
            .collect();
        assert_eq!(parsed[2].id, "t-42-2");
        assert_eq!(parsed[0].enqueued_at_ms, Some(42));
        assert_eq!(parsed[1].params["pageurl"], "https://example.com/login");
    }
}
