//! The comparison table (text for the terminal, Markdown for docs, CSV for tools) and the
//! per-tick CSV of each policy.

use std::fmt::Write;
use std::time::Duration;

use super::stats::{Summary, TickRow};

/// The table's columns, as the text and Markdown tables head them.
const HEADERS: [&str; 13] = [
    "policy",
    "worker-s",
    "cost",
    "p50",
    "p95",
    "p99",
    "max queue",
    "over",
    "actions",
    "arrived",
    "done",
    "failed",
    "left",
];

/// One row's cells, formatted.
fn cells(row: &Summary) -> [String; 13] {
    [
        row.policy.clone(),
        format!("{:.0}", row.worker_seconds),
        format!("${:.2}", row.cost_usd),
        seconds(row.wait_p50_s),
        seconds(row.wait_p95_s),
        seconds(row.wait_p99_s),
        row.max_queue.to_string(),
        format!("{:.0}s", row.over_target_s),
        row.scale_actions.to_string(),
        row.arrived.to_string(),
        row.completed.to_string(),
        row.failed.to_string(),
        row.left.to_string(),
    ]
}

fn seconds(s: f64) -> String {
    format!("{s:.1}s")
}

/// The header row with `over` naming the wait target, e.g. `over 60s`.
fn headers(wait_target: Duration) -> Vec<String> {
    let over = format!("over {}s", wait_target.as_secs());
    HEADERS
        .iter()
        .map(|&h| {
            if h == "over" {
                over.clone()
            } else {
                h.to_owned()
            }
        })
        .collect()
}

/// The table aligned for a terminal: the policy column left, numbers right.
pub fn text_table(rows: &[Summary], wait_target: Duration) -> String {
    let headers = headers(wait_target);
    let body: Vec<[String; 13]> = rows.iter().map(cells).collect();
    let widths: Vec<usize> = (0..HEADERS.len())
        .map(|i| {
            body.iter()
                .map(|r| r[i].len())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let sep = if i == 0 { "" } else { "  " };
            match i {
                0 => write!(out, "{cell:<w$}", w = widths[i]),
                _ => write!(out, "{sep}{cell:>w$}", w = widths[i]),
            }
            .unwrap_or_default();
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&headers);
    for row in &body {
        out += &line(row);
    }
    out
}

/// The table in Markdown, for the docs.
pub fn markdown_table(rows: &[Summary], wait_target: Duration) -> String {
    let headers = headers(wait_target);
    let mut out = format!("| {} |\n", headers.join(" | "));
    let rule: Vec<&str> = (0..HEADERS.len())
        .map(|i| if i == 0 { "---" } else { "---:" })
        .collect();
    out += &format!("|{}|\n", rule.join("|"));
    for row in rows {
        out += &format!("| {} |\n", cells(row).join(" | "));
    }
    out
}

/// The table as CSV, unformatted numbers and every column.
pub fn summary_csv(rows: &[Summary]) -> String {
    let mut out = String::from(
        "policy,worker_seconds,cost_usd,wait_p50_s,wait_p95_s,wait_p99_s,max_queue,\
         over_target_s,scale_actions,arrived,completed,failed,left,spent_usd,policy_failures\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{:.1},{:.4},{:.3},{:.3},{:.3},{},{:.1},{},{},{},{},{},{:.4},{}",
            csv_field(&r.policy),
            r.worker_seconds,
            r.cost_usd,
            r.wait_p50_s,
            r.wait_p95_s,
            r.wait_p99_s,
            r.max_queue,
            r.over_target_s,
            r.scale_actions,
            r.arrived,
            r.completed,
            r.failed,
            r.left,
            r.spent_usd,
            r.policy_failures
        );
    }
    out
}

/// One policy's ticks as CSV.
pub fn ticks_csv(ticks: &[TickRow]) -> String {
    let mut out = String::from(
        "time_s,queue,oldest_wait_s,workers,busy,draining,target,balance_usd,completed,failed,\
         reason\n",
    );
    for t in ticks {
        let oldest = t.oldest_wait_s.map_or(String::new(), |s| format!("{s:.1}"));
        let _ = writeln!(
            out,
            "{:.0},{},{},{},{},{},{},{:.3},{},{},{}",
            t.at_s,
            t.queue,
            oldest,
            t.workers,
            t.busy,
            t.draining,
            t.target,
            t.balance_usd,
            t.completed,
            t.failed,
            csv_field(&t.reason)
        );
    }
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(policy: &str) -> Summary {
        Summary {
            policy: policy.into(),
            worker_seconds: 1234.4,
            cost_usd: 0.0171,
            wait_p50_s: 0.0,
            wait_p95_s: 12.25,
            wait_p99_s: 40.0,
            max_queue: 33,
            over_target_s: 0.0,
            scale_actions: 7,
            arrived: 100,
            completed: 97,
            failed: 2,
            left: 1,
            spent_usd: 0.097,
            policy_failures: 0,
        }
    }

    #[test]
    fn the_text_table_aligns_numbers_right() {
        let table = text_table(
            &[summary("threshold"), summary("static:workers=50")],
            Duration::from_secs(60),
        );
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("policy             worker-s   cost"),
            "{table}"
        );
        assert!(lines[0].contains("over 60s"), "{table}");
        assert!(
            lines[1].starts_with("threshold              1234  $0.02"),
            "{table}"
        );
        assert!(lines[2].ends_with("100    97       2     1"), "{table}");
    }

    #[test]
    fn csv_quotes_reasons_with_commas() {
        let tick = TickRow {
            at_s: 10.0,
            queue: 3,
            oldest_wait_s: None,
            workers: 2,
            busy: 1,
            draining: 0,
            target: 2,
            balance_usd: 1.5,
            completed: 4,
            failed: 0,
            reason: "hold: queue 3, \"ok\"".into(),
        };
        let csv = ticks_csv(&[tick]);
        assert_eq!(
            csv.lines().nth(1),
            Some("10,3,,2,1,0,2,1.500,4,0,\"hold: queue 3, \"\"ok\"\"\"")
        );
    }

    #[test]
    fn the_markdown_table_has_a_rule_per_column() {
        let md = markdown_table(&[summary("a")], Duration::from_secs(60));
        let rule = md.lines().nth(1).expect("a rule line");
        assert_eq!(rule.matches("---").count(), 13);
        assert!(
            md.lines()
                .nth(2)
                .is_some_and(|l| l.starts_with("| a | 1234 | $0.02 |"))
        );
    }
}
