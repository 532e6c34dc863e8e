//! `autoscaler status`: every live host's status, read from Redis, once or every interval.
//!
//! A host publishes its status every tick with a TTL of three ticks, so what is listed is the
//! hosts that are alive: their pool, last decision and reason, and policy. `--watch` redraws the
//! list every `--interval` until Ctrl-C. On a terminal each frame clears the screen first (with
//! ANSI codes); written to a pipe or a file, frames follow one another under a title line, so
//! nothing is lost. A failed read is shown in its frame and the next one tries again.

use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use clap::Args;

use crate::cli::{CliError, load_config, parse_duration};
use crate::queue::{Keys, Queue};
use crate::status::HostStatus;

/// Clears the screen and moves the cursor home.
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[H";

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// TOML config file, for the Redis URL and key names.
    #[arg(long, short)]
    pub config: Option<std::path::PathBuf>,
    /// Print the raw JSON statuses, one per line.
    #[arg(long)]
    pub json: bool,
    /// Redraw every --interval until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// How often --watch redraws, e.g. 2s or 500ms.
    #[arg(long, value_parser = parse_duration, default_value = "2s", requires = "watch")]
    pub interval: Duration,
}

pub async fn execute(args: StatusArgs) -> Result<(), CliError> {
    let config = load_config(args.config.as_ref()).map_err(|e| CliError::Usage(e.into()))?;
    if args.interval.is_zero() {
        let message = anyhow::anyhow!("--interval 0s would redraw without pause: give e.g. 1s");
        return Err(CliError::Usage(message));
    }
    let keys = Keys::new(&config.redis, &config.host_id());
    let mut queue = Queue::connect(&config.redis.url, keys, None).await?;
    let view = View {
        json: args.json,
        redis: redacted(&config.redis.url),
    };
    if !args.watch {
        let statuses = read(&mut queue).await.map_err(CliError::Failed)?;
        let _ = write_out(&view.render(&statuses));
        return Ok(());
    }
    watch(&mut queue, &view, args.interval).await;
    Ok(())
}

/// Redraws until Ctrl-C or until stdout is closed.
async fn watch(queue: &mut Queue, view: &View, interval: Duration) {
    let tty = std::io::stdout().is_terminal();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = ticks.tick() => {}
        }
        let body = match read(queue).await {
            Ok(statuses) => view.render(&statuses),
            Err(e) => format!("{e:#}\n"),
        };
        if write_out(&frame(&body, tty, interval)).is_err() {
            return;
        }
    }
}

async fn read(queue: &mut Queue) -> anyhow::Result<Vec<String>> {
    queue
        .read_statuses()
        .await
        .map_err(|e| anyhow::anyhow!("failed to read host statuses: {e}"))
}

/// How statuses are shown.
struct View {
    json: bool,
    /// The Redis address, without credentials.
    redis: String,
}

impl View {
    /// The statuses as JSON lines, or as a table with one row per host.
    fn render(&self, statuses: &[String]) -> String {
        if self.json {
            return statuses.iter().map(|raw| format!("{raw}\n")).collect();
        }
        if statuses.is_empty() {
            return format!("no live autoscaler host publishes to {}\n", self.redis);
        }
        let now = crate::clock::unix_ms();
        let mut table = format!("{}\n", HostStatus::TABLE_HEADER);
        for raw in statuses {
            match serde_json::from_str::<HostStatus>(raw) {
                Ok(status) => table.push_str(&status.table_row(now)),
                Err(e) => table.push_str(&format!("(unreadable status: {e})")),
            }
            table.push('\n');
        }
        table
    }
}

/// One frame of `--watch`: a title line and the body, after a screen clear on a terminal or
/// a blank line elsewhere.
fn frame(body: &str, tty: bool, interval: Duration) -> String {
    let lead = if tty { CLEAR_SCREEN } else { "\n" };
    let now = humantime::format_rfc3339_seconds(SystemTime::now());
    let every = humantime::format_duration(interval);
    format!("{lead}autoscaler status at {now}, every {every} (Ctrl-C to stop)\n{body}")
}

fn write_out(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// A Redis URL without the user and password it may carry.
fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        assert_eq!(
            redacted("redis://:s3cret@10.0.0.5:6380/2"),
            "redis://10.0.0.5:6380/2"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn a_terminal_frame_clears_the_screen_and_a_piped_one_does_not() {
        let on_tty = frame("body\n", true, Duration::from_secs(2));
        let piped = frame("body\n", false, Duration::from_secs(2));
        assert!(on_tty.starts_with(CLEAR_SCREEN), "{on_tty:?}");
        assert!(!piped.contains('\x1b'), "{piped:?}");
        assert!(piped.starts_with("\nautoscaler status at "), "{piped:?}");
        assert!(
            piped.ends_with(", every 2s (Ctrl-C to stop)\nbody\n"),
            "{piped:?}"
        );
    }

    /// A status as a host publishes it.
    fn sample_status() -> HostStatus {
        serde_json::from_value(serde_json::json!({
            "host_id": "vm", "pid": 1, "tick": 4, "last_tick_ms": 1000, "workers": 16,
            "busy": 16, "draining": 0, "queue_depth": 44, "target": 27,
            "reason": "queue 44 > 20: +11", "min_workers": 1, "max_workers": 50,
            "policy": {"name": "threshold (embedded)", "hash": "ec6a5fbbc367", "failures": 0,
                       "last_failure": null, "reloads": 0, "last_reload_error": null},
            "paused_by": null, "balance_usd": null,
            "tasks": {"taken": 0, "succeeded": 3, "failed": 1, "dead_lettered": 0, "requeued": 0},
        }))
        .expect("a status")
    }

    #[test]
    fn rows_line_up_under_the_header() {
        let status = sample_status();
        let header = HostStatus::TABLE_HEADER;
        let row = status.table_row(3000);
        let column = |text: &str, word: &str| text.find(word).expect(word);
        assert_eq!(
            column(header, "POLICY"),
            column(&row, "threshold (embedded)")
        );
        assert_eq!(column(header, "REASON"), column(&row, "queue 44"));
        // Numbers end under the last letter of their heading.
        let under_end = |word: &str| row.as_bytes()[column(header, word) + word.len() - 1];
        assert_eq!(under_end("DONE"), b'4', "{row}");
        assert_eq!(under_end("AGE"), b's', "{row}");
        assert_eq!(under_end("QUEUE"), b'4', "{row}");
    }

    #[test]
    fn a_paused_pool_shows_the_cause_after_the_reason() {
        let mut status = sample_status();
        status.reason = "hold: submissions paused".into();
        status.paused_by = Some("HTTP_404".into());
        let row = status.table_row(3000);
        assert!(
            row.ends_with("hold: submissions paused (paused by HTTP_404)"),
            "{row}"
        );
    }

    #[test]
    fn no_host_names_the_redis_it_looked_in() {
        let view = View {
            json: false,
            redis: "redis://127.0.0.1:7000".into(),
        };
        let text = view.render(&[]);
        assert_eq!(
            text,
            "no live autoscaler host publishes to redis://127.0.0.1:7000\n"
        );
    }
}
