//! Reading a recorded load: a CSV of arrival times, optionally with method and solve time.
//!
//! ```text
//! # arrival_s,method,solve_s
//! 0.0,userrecaptcha,17.2
//! 0.4,base64,
//! 1.9
//! ```
//!
//! One task per line: seconds from the start, then optionally the CaptchaAI method (default
//! `userrecaptcha`) and the provider's solve time in seconds (drawn for the method when empty).
//! Blank lines and lines starting with `#` are skipped, and so is a first line that does not
//! start with a letter (a header). Lines need not be in order. The replay lasts until a minute
//! after the last arrival, which may be at most a week in.

use std::path::Path;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::error::ReplayError;
use super::load::{Conditions, Load, TaskSpec};

/// Method of a line that names none.
pub const DEFAULT_METHOD: &str = "userrecaptcha";
/// Time the replay runs past the last arrival, so its tasks can be taken.
pub const TAIL: Duration = Duration::from_secs(60);
/// The latest arrival (and the longest solve) a trace may have: a week.
pub const MAX_ARRIVAL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Reads the trace at `path`; task seeds are drawn from `seed`.
pub fn read(path: &Path, seed: u64) -> Result<Load, ReplayError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReplayError::ReadTrace {
        path: path.to_owned(),
        source,
    })?;
    let name = path
        .file_stem()
        .map_or_else(|| "trace".into(), |s| s.to_string_lossy().into_owned());
    parse(&text, &name, seed).map_err(|(line, detail)| ReplayError::Trace {
        path: path.to_owned(),
        line,
        detail,
    })
}

/// Parses a trace's text; an error names the line (from 1) and what is wrong.
pub fn parse(text: &str, name: &str, seed: u64) -> Result<Load, (usize, String)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tasks = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || (index == 0 && is_header(line)) {
            continue;
        }
        let task = parse_line(line, rng.random()).map_err(|detail| (index + 1, detail))?;
        tasks.push(task);
    }
    if tasks.is_empty() {
        return Err((
            0,
            "no task in the trace: write one arrival time per line (a first line that starts \
             with a letter is read as a header)"
                .into(),
        ));
    }
    tasks.sort_by_key(|t| t.arrival);
    let last = tasks.last().map_or(Duration::ZERO, |t| t.arrival);
    Ok(Load {
        name: name.to_owned(),
        duration: last + TAIL,
        tasks,
        conditions: Conditions::default(),
    })
}

fn is_header(line: &str) -> bool {
    line.starts_with(|c: char| c.is_ascii_alphabetic())
}

fn parse_line(line: &str, seed: u64) -> Result<TaskSpec, String> {
    let mut fields = line.split(',').map(str::trim);
    let arrival = seconds(fields.next().unwrap_or_default(), "arrival time")?;
    let method = match fields.next() {
        Some(method) if !method.is_empty() => method.to_owned(),
        _ => DEFAULT_METHOD.to_owned(),
    };
    let solve = match fields.next() {
        Some(solve) if !solve.is_empty() => Some(seconds(solve, "solve time")?),
        _ => None,
    };
    if let Some(extra) = fields.next() {
        return Err(format!(
            "unexpected fourth field {extra:?}: a line is arrival_s[,method[,solve_s]]"
        ));
    }
    Ok(TaskSpec {
        arrival,
        method,
        solve,
        seed,
    })
}

fn seconds(field: &str, what: &str) -> Result<Duration, String> {
    let value: f64 = field
        .parse()
        .map_err(|_| format!("{what} {field:?} is not a number of seconds"))?;
    if value > MAX_ARRIVAL.as_secs_f64() {
        return Err(format!(
            "{what} {field:?} is past the week a replay may span; a trace counts seconds"
        ));
    }
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("{what} {field:?} must be a non-negative number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_reads_times_methods_and_solve_times() {
        let text = "arrival_s,method,solve_s\n# a comment\n2.5,base64,1.5\n\n0.5\n1,,20\n";
        let load = parse(text, "t", 1).expect("valid trace");
        let arrivals: Vec<f64> = load.tasks.iter().map(|t| t.arrival.as_secs_f64()).collect();
        assert_eq!(arrivals, [0.5, 1.0, 2.5]);
        assert_eq!(load.tasks[0].method, "userrecaptcha");
        assert_eq!(load.tasks[1].solve, Some(Duration::from_secs(20)));
        assert_eq!(load.tasks[2].method, "base64");
        assert_eq!(load.duration, Duration::from_secs_f64(62.5));
    }

    #[test]
    fn a_bad_line_is_named_with_what_is_wrong() {
        let err = parse("1.0\n2.0,base64,soon\n", "t", 1).expect_err("bad solve time");
        assert_eq!(
            err,
            (
                2,
                "solve time \"soon\" is not a number of seconds".to_string()
            )
        );
        let err = parse("-3\n", "t", 1).expect_err("negative");
        assert_eq!(err.0, 1);
        assert!(err.1.contains("non-negative"), "{}", err.1);
    }

    #[test]
    fn an_arrival_past_a_week_is_refused() {
        // Milliseconds written where seconds belong would replay for 30,000 years.
        let err = parse("0\n1e12\n", "t", 1).expect_err("too far");
        assert!(
            parse("1e308\n", "t", 1)
                .expect_err("far")
                .1
                .contains("past the week")
        );
        assert_eq!(err.0, 2);
        assert!(
            err.1.contains("past the week a replay may span"),
            "{}",
            err.1
        );
        assert!(parse("604800\n", "t", 1).is_ok(), "a week is allowed");
    }

    #[test]
    fn an_empty_trace_is_refused() {
        let err = parse("arrival_s\n", "t", 1).expect_err("no tasks");
        assert!(err.1.starts_with("no task in the trace"), "{}", err.1);
    }
}
