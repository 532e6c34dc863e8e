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
    /// The account cannot work as configured: wrong or unknown key, IP not allowed or banned,
    /// or an API address that refuses every request (HTTP 401, 403, 404…).
    Account,
    /// This task cannot be solved as sent: bad parameters, unsolvable, deadline passed.
    Task,
    /// The way there failed: network, timeouts, 5xx, 408, HTML or garbled bodies.
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
    /// A status other than 2xx: an outage page, a rate limit, or an address or key the
    /// provider refuses.
    #[error("captchaai returned http {status} with {body}; {}", http_meaning(*status).hint)]
    HttpStatus {
        status: u16,
        body: BodyKind,
        /// The wait the response's `Retry-After` header asked for.
        retry_after: Option<Duration>,
    },
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
    /// `ERROR_INVALID_PARAMS`, `ERROR_DEADLINE_EXCEEDED`, `ERROR_POLL_BUDGET_EXHAUSTED`. Fit
    /// for a task's error result.
    pub fn code(&self) -> &str {
        match self {
            SolveError::Api { code } => code,
            SolveError::HttpStatus { status, .. } => http_meaning(*status).code,
            SolveError::BadBody { .. } => "BAD_RESPONSE",
            SolveError::Network { .. } => "NETWORK_ERROR",
            SolveError::Timeout(_) => "TIMEOUT",
            SolveError::InvalidParam { .. } => "ERROR_INVALID_PARAMS",
            SolveError::DeadlineExceeded => "ERROR_DEADLINE_EXCEEDED",
            SolveError::PollBudgetExhausted { .. } => "ERROR_POLL_BUDGET_EXHAUSTED",
        }
    }

    /// The class the error counts in.
    pub fn class(&self) -> ErrorClass {
        match self {
            SolveError::Api { code } => codes::lookup(code).class,
            SolveError::HttpStatus { status, .. } => http_meaning(*status).class,
            SolveError::BadBody { .. } | SolveError::Network { .. } | SolveError::Timeout(_) => {
                ErrorClass::Transport
            }
            SolveError::InvalidParam { .. }
            | SolveError::DeadlineExceeded
            | SolveError::PollBudgetExhausted { .. } => ErrorClass::Task,
        }
    }

    /// What the caller should do.
    pub fn action(&self) -> Action {
        match self {
            SolveError::Api { code } => codes::lookup(code).action,
            SolveError::HttpStatus { status, .. } => http_meaning(*status).action,
            _ if self.class() == ErrorClass::Transport => Action::RetryLater,
            _ => Action::FailTask,
        }
    }

    /// The wait the provider asks for before the next try, when it says: the hint of a
    /// retryable code (`ERROR_NO_SLOT_AVAILABLE`: 5 s) or an HTTP `Retry-After` header.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SolveError::Api { code } => codes::lookup(code).retry_after,
            SolveError::HttpStatus { retry_after, .. } => *retry_after,
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

/// What an HTTP status other than 2xx says about the pool's next steps.
struct HttpMeaning {
    code: &'static str,
    class: ErrorClass,
    action: Action,
    hint: &'static str,
}

fn http_meaning(status: u16) -> HttpMeaning {
    let meaning = |code, class, action, hint| HttpMeaning {
        code,
        class,
        action,
        hint,
    };
    let outage = |code| {
        meaning(
            code,
            ErrorClass::Transport,
            Action::RetryLater,
            "retry later",
        )
    };
    // The same request will be refused for every task: pausing keeps them in the queue.
    let refused = |code| {
        meaning(
            code,
            ErrorClass::Account,
            Action::PausePool,
            "the provider refuses this key or this ip; check the key and the account's \
             allowed ips",
        )
    };
    let misaddressed = |code| {
        meaning(
            code,
            ErrorClass::Account,
            Action::PausePool,
            "nothing answers protocol requests there; check captchaai.url (CAPTCHAAI_URL)",
        )
    };
    match status {
        500 => outage("HTTP_500"),
        502 => outage("HTTP_502"),
        503 => outage("HTTP_503"),
        504 => outage("HTTP_504"),
        408 => outage("HTTP_408"),
        s if s >= 500 => outage("HTTP_5XX"),
        429 => meaning(
            "HTTP_429",
            ErrorClass::SolverCapacity,
            Action::RetryLater,
            "too many requests; retry later",
        ),
        401 => refused("HTTP_401"),
        403 => refused("HTTP_403"),
        404 => misaddressed("HTTP_404"),
        400..=499 => misaddressed("HTTP_4XX"),
        _ => misaddressed("HTTP_ERROR"),
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
            (http(503), ErrorClass::Transport, Action::RetryLater),
            (http(504), ErrorClass::Transport, Action::RetryLater),
            (http(408), ErrorClass::Transport, Action::RetryLater),
            (http(429), ErrorClass::SolverCapacity, Action::RetryLater),
            (http(401), ErrorClass::Account, Action::PausePool),
            (http(403), ErrorClass::Account, Action::PausePool),
            (http(404), ErrorClass::Account, Action::PausePool),
            (http(410), ErrorClass::Account, Action::PausePool),
            (http(302), ErrorClass::Account, Action::PausePool),
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
        let outage = http(503);
        assert_eq!(
            outage.to_string(),
            "captchaai returned http 503 with an html page; retry later"
        );
        assert_eq!(outage.code(), "HTTP_503");
        let wrong_url = http(404);
        assert_eq!(wrong_url.code(), "HTTP_404");
        assert!(
            wrong_url.to_string().contains("check captchaai.url"),
            "{wrong_url}"
        );
        assert_eq!(http(418).code(), "HTTP_4XX");
        assert_eq!(
            SolveError::DeadlineExceeded.code(),
            crate::worker::DEADLINE_ERROR,
            "one code for a deadline, whichever part saw it pass"
        );
    }

    #[test]
    fn class_names_are_stable() {
        let names: Vec<_> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names, ["solver_capacity", "account", "task", "transport"]);
    }

    #[test]
    fn retry_hints_are_what_the_provider_asked_for() {
        assert_eq!(
            api("ERROR_NO_SLOT_AVAILABLE").retry_after(),
            Some(Duration::from_secs(5))
        );
        let limited = SolveError::HttpStatus {
            status: 429,
            body: BodyKind::Text,
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(http(503).retry_after(), None);
        assert_eq!(
            SolveError::BadBody {
                body: BodyKind::Html
            }
            .retry_after(),
            None
        );
        assert_eq!(api("ERROR_WRONG_USER_KEY").retry_after(), None);
        assert!(api("ERROR_CAPTCHA_UNSOLVABLE").is_unsolvable());
    }

    fn http(status: u16) -> SolveError {
        SolveError::HttpStatus {
            status,
            body: BodyKind::Html,
            retry_after: None,
        }
    }
}
