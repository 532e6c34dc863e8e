//! What can go wrong with a solve, and what the caller should do about it.
//!
//! Every [`SolveError`] has a [`class`](SolveError::class) (for the error-rate signals the
//! policy sees) and an [`action`](SolveError::action) (for the worker): retry later with
//! backoff, fail the task, or pause the whole pool's submissions. No message carries the API
//! key or a request URL, since the result poll's URL holds the key in its query.

use std::fmt;
use std::time::Duration;

use super::codes;

/// Kinds of failure, as the policy's error-rate signals split them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// The provider has no free thread for the account (`ERROR_NO_SLOT_AVAILABLE`, and on
    /// CaptchaAI `ERROR_ZERO_BALANCE`): more workers only add refusals.
    SolverCapacity,
    /// The account cannot work: wrong or unknown key, IP not allowed or banned.
    Account,
    /// This task cannot be solved as sent: bad parameters, unsolvable, deadline passed.
    Task,
    /// The way there failed: network, timeouts, 5xx, HTML or garbled bodies.
    Transport,
}

impl ErrorClass {
    /// Every class, in a fixed order.
    pub const ALL: [ErrorClass; 4] = [
        ErrorClass::SolverCapacity,
        ErrorClass::Account,
        ErrorClass::Task,
        ErrorClass::Transport,
    ];

    /// The name used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::SolverCapacity => "solver_capacity",
            ErrorClass::Account => "account",
            ErrorClass::Task => "task",
            ErrorClass::Transport => "transport",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the caller should do after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Submit the task again after a backoff: the next try may pass.
    RetryLater,
    /// Give up on this task and write its error result. (A caller may resubmit an
    /// [`unsolvable`](SolveError::is_unsolvable) task a bounded number of times first.)
    FailTask,
    /// Stop every submission of the pool for a while and alert: the account cannot work.
    PausePool,
}

/// What a body that is not a provider answer looked like. The body itself is never kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Empty,
    Html,
    /// JSON, but not `{"status", "request"}`.
    Json,
    Text,
}

impl fmt::Display for BodyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BodyKind::Empty => "an empty body",
            BodyKind::Html => "an html page",
            BodyKind::Json => "json that is not an answer",
            BodyKind::Text => "text that is not an answer",
        })
    }
}

/// A failed submit, poll, solve or balance read.
#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    /// The provider answered with one of its codes.
    #[error("captchaai answered {code}: {}", codes::lookup(code).hint)]
    Api { code: String },
    /// A status other than 200, usually an outage page.
    #[error("captchaai returned http {status} with {body}; retry later")]
    HttpStatus { status: u16, body: BodyKind },
    /// A 200 whose body is not an answer.
    #[error("captchaai sent {body} instead of an answer; retry later")]
    BadBody { body: BodyKind },
    /// The request did not complete; the source has no URL, so no key.
    #[error("request to captchaai failed; retry later")]
    Network {
        #[source]
        source: reqwest::Error,
    },
    /// The request took longer than the configured timeout.
    #[error("request to captchaai timed out after {0:?}; retry later")]
    Timeout(Duration),
    /// A task parameter cannot be sent as a form field.
    #[error("task parameter {name:?} {reason}; fix the task")]
    InvalidParam { name: String, reason: &'static str },
    /// The task's deadline passed before an answer.
    #[error("the task deadline passed before captchaai answered")]
    DeadlineExceeded,
    /// Polled as often as allowed without an answer.
    #[error("no answer after {polls} polls; the task fails to keep the account's poll budget")]
    PollBudgetExhausted { polls: u32 },
}

impl SolveError {
    /// The provider's code (`ERROR_NO_SLOT_AVAILABLE`), or one of this client's own for
    /// failures without one: `HTTP_503`, `BAD_RESPONSE`, `NETWORK_ERROR`, `TIMEOUT`,
    /// `INVALID_PARAMS`, `DEADLINE_EXCEEDED`, `POLL_BUDGET_EXHAUSTED`. Fit for a task's
    /// error result.
    pub fn code(&self) -> &str {
        match self {
            SolveError::Api { code } => code,
            SolveError::HttpStatus { status, .. } => http_code(*status),
            SolveError::BadBody { .. } => "BAD_RESPONSE",
            SolveError::Network { .. } => "NETWORK_ERROR",
            SolveError::Timeout(_) => "TIMEOUT",
            SolveError::InvalidParam { .. } => "INVALID_PARAMS",
            SolveError::DeadlineExceeded => "DEADLINE_EXCEEDED",
            SolveError::PollBudgetExhausted { .. } => "POLL_BUDGET_EXHAUSTED",
        }
    }

    /// The class the error counts in.
    pub fn class(&self) -> ErrorClass {
        match self {
            SolveError::Api { code } => codes::lookup(code).class,
            SolveError::HttpStatus { .. }
            | SolveError::BadBody { .. }
            | SolveError::Network { .. }
            | SolveError::Timeout(_) => ErrorClass::Transport,
            SolveError::InvalidParam { .. }
            | SolveError::DeadlineExceeded
            | SolveError::PollBudgetExhausted { .. } => ErrorClass::Task,
        }
    }

    /// What the caller should do.
    pub fn action(&self) -> Action {
        match self {
            SolveError::Api { code } => codes::lookup(code).action,
            _ if self.class() == ErrorClass::Transport => Action::RetryLater,
            _ => Action::FailTask,
        }
    }

    /// The shortest sensible wait before retrying, when the action is to retry.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SolveError::Api { code } => codes::lookup(code).retry_after,
            _ if self.action() == Action::RetryLater => Some(TRANSPORT_RETRY_AFTER),
            _ => None,
        }
    }

    /// Whether the provider gave up on the task (it may pass on a resubmit).
    pub fn is_unsolvable(&self) -> bool {
        self.code() == "ERROR_CAPTCHA_UNSOLVABLE"
    }

    /// Wraps a transport error, dropping its URL (the poll URL holds the key).
    pub(crate) fn from_reqwest(error: reqwest::Error, timeout: Duration) -> Self {
        if error.is_timeout() {
            return SolveError::Timeout(timeout);
        }
        SolveError::Network {
            source: error.without_url(),
        }
    }
}

/// Wait before retrying after a network failure or an outage page.
const TRANSPORT_RETRY_AFTER: Duration = Duration::from_secs(10);

fn http_code(status: u16) -> &'static str {
    match status {
        500 => "HTTP_500",
        502 => "HTTP_502",
        503 => "HTTP_503",
        504 => "HTTP_504",
        429 => "HTTP_429",
        s if s >= 500 => "HTTP_5XX",
        _ => "HTTP_ERROR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str) -> SolveError {
        SolveError::Api { code: code.into() }
    }

    #[test]
    fn every_error_has_a_class_and_an_action() {
        let cases = [
            (
                api("ERROR_NO_SLOT_AVAILABLE"),
                ErrorClass::SolverCapacity,
                Action::RetryLater,
            ),
            (
                api("ERROR_ZERO_BALANCE"),
                ErrorClass::SolverCapacity,
                Action::RetryLater,
            ),
            (
                api("ERROR_WRONG_USER_KEY"),
                ErrorClass::Account,
                Action::PausePool,
            ),
            (
                api("ERROR_KEY_DOES_NOT_EXIST"),
                ErrorClass::Account,
                Action::PausePool,
            ),
            (
                api("ERROR_IP_NOT_ALLOWED"),
                ErrorClass::Account,
                Action::PausePool,
            ),
            (api("IP_BANNED"), ErrorClass::Account, Action::PausePool),
            (
                api("ERROR_CAPTCHA_UNSOLVABLE"),
                ErrorClass::Task,
                Action::FailTask,
            ),
            (
                api("ERROR_WRONG_CAPTCHA_ID"),
                ErrorClass::Task,
                Action::FailTask,
            ),
            (
                api("ERROR_BAD_PARAMETERS"),
                ErrorClass::Task,
                Action::FailTask,
            ),
            (
                api("ERROR_NOT_IN_ANY_LIST"),
                ErrorClass::Task,
                Action::FailTask,
            ),
            (
                api("ERROR_SERVER_ERROR"),
                ErrorClass::Transport,
                Action::RetryLater,
            ),
            (
                SolveError::HttpStatus {
                    status: 503,
                    body: BodyKind::Html,
                },
                ErrorClass::Transport,
                Action::RetryLater,
            ),
            (
                SolveError::BadBody {
                    body: BodyKind::Empty,
                },
                ErrorClass::Transport,
                Action::RetryLater,
            ),
            (
                SolveError::Timeout(Duration::from_secs(1)),
                ErrorClass::Transport,
                Action::RetryLater,
            ),
            (
                SolveError::DeadlineExceeded,
                ErrorClass::Task,
                Action::FailTask,
            ),
            (
                SolveError::PollBudgetExhausted { polls: 20 },
                ErrorClass::Task,
                Action::FailTask,
            ),
            (
                SolveError::InvalidParam {
                    name: "x".into(),
                    reason: "is an object",
                },
                ErrorClass::Task,
                Action::FailTask,
            ),
        ];
        for (error, class, action) in cases {
            assert_eq!((error.class(), error.action()), (class, action), "{error}");
        }
    }

    #[test]
    fn messages_are_lowercase_and_name_the_code() {
        let message = api("ERROR_NO_SLOT_AVAILABLE").to_string();
        assert!(message.starts_with("captchaai answered ERROR_NO_SLOT_AVAILABLE: every thread"));
        let http = SolveError::HttpStatus {
            status: 503,
            body: BodyKind::Html,
        };
        assert_eq!(
            http.to_string(),
            "captchaai returned http 503 with an html page; retry later"
        );
        assert_eq!(http.code(), "HTTP_503");
        assert_eq!(SolveError::DeadlineExceeded.code(), "DEADLINE_EXCEEDED");
    }

    #[test]
    fn class_names_are_stable() {
        let names: Vec<_> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names, ["solver_capacity", "account", "task", "transport"]);
    }

    #[test]
    fn retry_hints_only_for_retryable_errors() {
        assert_eq!(
            api("ERROR_NO_SLOT_AVAILABLE").retry_after(),
            Some(Duration::from_secs(5))
        );
        assert!(
            SolveError::BadBody {
                body: BodyKind::Html
            }
            .retry_after()
            .is_some()
        );
        assert_eq!(api("ERROR_WRONG_USER_KEY").retry_after(), None);
        assert!(api("ERROR_CAPTCHA_UNSOLVABLE").is_unsolvable());
    }
}
