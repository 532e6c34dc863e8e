//! How the simulated CaptchaAI behaves: solve times, failures, threads, money and faults.
//!
//! [`SimConfig`] is fixed at start; [`Faults`] can be changed while the simulator runs,
//! through [`SimHandle::set_faults`](super::SimHandle::set_faults) or `PUT /sim/faults`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Shortest simulated solve by default.
pub const DEFAULT_SOLVE_MIN: Duration = Duration::from_secs(5);
/// Longest simulated solve by default.
pub const DEFAULT_SOLVE_MAX: Duration = Duration::from_secs(15);
/// Concurrent tasks the simulated plan allows by default.
pub const DEFAULT_THREADS: u32 = 50;
/// Starting balance by default, in US dollars.
pub const DEFAULT_BALANCE_USD: f64 = 10.0;
/// Price of one solved task by default, in US dollars.
pub const DEFAULT_PRICE_USD: f64 = 0.001;
/// How long a solved result can still be read, like the real service keeps it.
pub const DEFAULT_RESULT_TTL: Duration = Duration::from_secs(300);

/// The simulated account and its solvers.
///
/// The simulator models one account: every accepted key draws on the same threads and the
/// same balance.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Solve time, drawn uniformly from `min..=max`.
    pub solve_time: (Duration, Duration),
    /// Fraction of tasks answered `ERROR_CAPTCHA_UNSOLVABLE` (not charged), 0.0 to 1.0.
    pub error_rate: f64,
    /// Concurrent tasks; a submit beyond them gets `ERROR_NO_SLOT_AVAILABLE`.
    pub threads: u32,
    /// Starting balance. A submit the balance cannot pay for, counting the tasks in flight,
    /// gets `ERROR_ZERO_BALANCE`.
    pub balance_usd: f64,
    /// Charged per solved task.
    pub price_usd: f64,
    /// Seed for solve times, failures and answers; `None` seeds from the OS.
    pub seed: Option<u64>,
    /// Keys the account has; `None` accepts every well-formed key (32 letters or digits).
    pub allowed_keys: Option<Vec<String>>,
    /// How long a finished task's result stays readable.
    pub result_ttl: Duration,
    /// Faults from the start; change them later through the handle.
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            solve_time: (DEFAULT_SOLVE_MIN, DEFAULT_SOLVE_MAX),
            error_rate: 0.0,
            threads: DEFAULT_THREADS,
            balance_usd: DEFAULT_BALANCE_USD,
            price_usd: DEFAULT_PRICE_USD,
            seed: None,
            allowed_keys: None,
            result_ttl: DEFAULT_RESULT_TTL,
            faults: Faults::default(),
        }
    }
}

/// Misbehaviour of the HTTP layer, injected before the protocol sees a request.
///
/// `delay` slows every answer; the next `count` answers are replaced by `fault`. More fault
/// kinds go into [`Fault`] without changing this shape. In JSON (`PUT /sim/faults`):
/// `{"delay_ms": 200, "count": 3, "fault": {"kind": "html", "status": 503}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added before every `in.php` / `res.php` answer.
    #[serde(rename = "delay_ms", with = "millis")]
    pub delay: Duration,
    /// How many of the next answers are replaced by `fault`.
    pub count: u32,
    /// What replaces them.
    pub fault: Fault,
}

impl Faults {
    /// The next `count` answers are HTTP 503 outage pages.
    pub fn unavailable(count: u32) -> Self {
        Self {
            count,
            fault: Fault::Html { status: 503 },
            ..Self::default()
        }
    }

    /// The next `count` answers are the provider's error `code`.
    pub fn code(code: &str, count: u32) -> Self {
        Self {
            count,
            fault: Fault::Code { code: code.into() },
            ..Self::default()
        }
    }

    /// The next `count` requests get their connection reset.
    pub fn resets(count: u32) -> Self {
        Self {
            count,
            fault: Fault::Reset,
            ..Self::default()
        }
    }

    /// Every answer comes `delay` late.
    pub fn delayed(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }
}

/// One kind of broken answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fault {
    /// An HTML error page with this status (500, 502, 503, 429…), as a provider outage or a
    /// front end sends; 429 and 503 carry `Retry-After: 1`.
    Html { status: u16 },
    /// HTTP 200 with a body that is neither JSON nor a protocol answer.
    Garbage,
    /// HTTP 200 with an empty body.
    Empty,
    /// The connection is reset (TCP RST) instead of answered.
    Reset,
    /// A protocol error answer with this code, e.g. `ERROR_NO_SLOT_AVAILABLE` or `IP_BANNED`,
    /// whatever the request was.
    Code { code: String },
}

impl Default for Fault {
    fn default() -> Self {
        Fault::Html { status: 503 }
    }
}

/// Durations as whole milliseconds in JSON.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        let ms = u64::try_from(value.as_millis()).unwrap_or(u64::MAX);
        serializer.serialize_u64(ms)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_from_json() {
        let faults: Faults =
            serde_json::from_str(r#"{"delay_ms": 20, "count": 2, "fault": {"kind": "garbage"}}"#)
                .expect("faults");
        assert_eq!(faults.delay, Duration::from_millis(20));
        assert_eq!((faults.count, faults.fault), (2, Fault::Garbage));
        let none: Faults = serde_json::from_str("{}").expect("empty");
        assert_eq!(none, Faults::default());
        assert!(serde_json::from_str::<Faults>(r#"{"dely_ms": 1}"#).is_err());
        let banned: Faults =
            serde_json::from_str(r#"{"count": 1, "fault": {"kind": "code", "code": "IP_BANNED"}}"#)
                .expect("code fault");
        assert_eq!(banned, Faults::code("IP_BANNED", 1));
    }
}
