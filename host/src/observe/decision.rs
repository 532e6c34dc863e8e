//! A decision's bounded labels: which way it went and what kind of reason it gave.
//!
//! A reason is free text written by the policy, so it cannot be a metric label as it is: every
//! number in it would make a new series. [`kind`] keeps its first word or two, lowercased, after
//! a leading `hold:` (`queue`, `low_load`, `within_thresholds`, `static`), and names the host's
//! own reasons itself (`policy_failed`, `metrics_unavailable`). [`KindCap`] bounds the number of
//! distinct kinds one process ever exports; the log line keeps the full reason.

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::scaler::TickReport;

/// Words of a reason kept as its kind.
const KIND_WORDS: usize = 2;
/// Longest word kept in a kind; longer ones are cut.
const KIND_WORD_CHARS: usize = 24;
/// Distinct kinds one process exports; kinds first seen after that count as [`OTHER`].
pub const MAX_KINDS: usize = 32;
/// The kind of reasons past the cap, and of reasons that start with no word.
pub const OTHER: &str = "other";
/// The kind of a tick whose queue could not be measured (the policy was not asked).
pub const METRICS_UNAVAILABLE: &str = "metrics_unavailable";
/// The kind of a tick whose policy call failed (the pool kept its size).
pub const POLICY_FAILED: &str = "policy_failed";

/// Which way a decision moves the active workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Up,
    Down,
    Hold,
}

impl Direction {
    /// The direction of a tick's target against the active workers it started with.
    pub fn of(report: &TickReport) -> Self {
        match report.target.cmp(&report.before.active()) {
            std::cmp::Ordering::Greater => Self::Up,
            std::cmp::Ordering::Less => Self::Down,
            std::cmp::Ordering::Equal => Self::Hold,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::Hold => "hold",
        }
    }
}

/// The kind of a tick's decision: the host's own for its holds, else the reason's first words.
pub fn kind(report: &TickReport) -> String {
    if report.queue.is_none() {
        return METRICS_UNAVAILABLE.to_owned();
    }
    if report.failure.is_some() {
        return POLICY_FAILED.to_owned();
    }
    reason_kind(&report.reason)
}

/// The first words of a reason, lowercased and joined by `_`, after a leading `hold:`. The kind
/// ends at the first token that is not a plain word (a number, `>`, `+3`) or after a word that
/// ends in `:` or `,`.
pub fn reason_kind(reason: &str) -> String {
    let text = reason.trim_start();
    let text = text.strip_prefix("hold:").unwrap_or(text);
    let mut words = Vec::new();
    for token in text.split_whitespace().take(KIND_WORDS) {
        let bare = token.trim_end_matches([':', ',', ';']);
        let Some(word) = plain_word(bare) else { break };
        words.push(word);
        if bare.len() < token.len() {
            break;
        }
    }
    if words.is_empty() {
        return OTHER.to_owned();
    }
    words.join("_")
}

/// A token that starts with a letter and holds only letters, digits, `_` and `-`, lowercased
/// and cut to [`KIND_WORD_CHARS`].
fn plain_word(token: &str) -> Option<String> {
    let starts_with_letter = token.starts_with(|c: char| c.is_ascii_alphabetic());
    let plain = token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !(starts_with_letter && plain) {
        return None;
    }
    let word = token.to_ascii_lowercase().replace('-', "_");
    Some(word.chars().take(KIND_WORD_CHARS).collect())
}

/// Keeps the set of exported kinds bounded: the first [`MAX_KINDS`] distinct kinds pass, any
/// later new one becomes [`OTHER`].
#[derive(Debug, Default)]
pub struct KindCap {
    seen: Mutex<BTreeSet<String>>,
}

impl KindCap {
    /// The label to export for `kind`.
    pub fn admit(&self, kind: String) -> String {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(&kind) {
            return kind;
        }
        if seen.len() >= MAX_KINDS {
            return OTHER.to_owned();
        }
        seen.insert(kind.clone());
        kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::Counts;
    use crate::queue::QueueMeasure;

    #[test]
    fn threshold_reasons_keep_their_signal_word() {
        let cases = [
            ("queue 140 > 20: +16 for backlog", "queue"),
            ("hold: within thresholds", "within_thresholds"),
            ("low load for 60s: -3", "low_load"),
            ("hold: low load for 15s of 60s", "low_load"),
            ("utilization 90% > 80%: +5 to reach 60%", "utilization"),
            ("hold: p95 90s > 60s, scaled up 20s ago", "p95"),
            ("hold: balance $0.50 < $1.00", "balance"),
            ("static: 3 workers", "static"),
            ("Scale-Up, because", "scale_up"),
        ];
        for (reason, kind) in cases {
            assert_eq!(reason_kind(reason), kind, "{reason}");
        }
    }

    #[test]
    fn reasons_without_a_leading_word_are_other() {
        assert_eq!(reason_kind(""), OTHER);
        assert_eq!(reason_kind("+3 workers"), OTHER);
        assert_eq!(reason_kind("hold:"), OTHER);
    }

    #[test]
    fn long_words_are_cut() {
        let kind = reason_kind(&"a".repeat(1000));
        assert_eq!(kind.len(), KIND_WORD_CHARS);
    }

    #[test]
    fn host_holds_are_named_by_the_host() {
        let mut report = TickReport {
            target: 1,
            reason: "hold: queue metrics unavailable (refused)".into(),
            ..TickReport::default()
        };
        assert_eq!(kind(&report), METRICS_UNAVAILABLE);
        report.queue = Some(QueueMeasure {
            depth: 0,
            oldest_age_ms: None,
        });
        report.failure = Some("trap");
        assert_eq!(kind(&report), POLICY_FAILED);
    }

    #[test]
    fn direction_compares_the_target_with_the_active_workers() {
        let before = Counts {
            workers: 5,
            busy: 0,
            draining: 2,
            busy_active: 0,
        };
        let report = |target| TickReport {
            before,
            target,
            ..TickReport::default()
        };
        assert_eq!(Direction::of(&report(4)), Direction::Up);
        assert_eq!(Direction::of(&report(3)), Direction::Hold);
        assert_eq!(Direction::of(&report(2)), Direction::Down);
    }

    #[test]
    fn kinds_past_the_cap_become_other() {
        let cap = KindCap::default();
        for n in 0..MAX_KINDS {
            assert_eq!(cap.admit(format!("k{n}")), format!("k{n}"));
        }
        assert_eq!(cap.admit("one_more".into()), OTHER);
        assert_eq!(cap.admit("k0".into()), "k0");
    }
}
