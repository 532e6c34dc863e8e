//! The provider's answer codes: what each means, which class it is in, what to do about it.
//!
//! One table, [`lookup`], so the classification reads in one place. Codes not in it are
//! unknown: a task error that fails the task, since retrying a request the provider did not
//! understand only repeats it.

use std::time::Duration;

use super::error::{Action, ErrorClass};

/// The result poll answer that means "keep polling"; the provider spells it without the T.
pub const NOT_READY: &str = "CAPCHA_NOT_READY";

/// What the host knows about one provider code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    pub class: ErrorClass,
    pub action: Action,
    /// What to do, for the error message.
    pub hint: &'static str,
    /// The shortest sensible wait before the next submit, for retryable codes.
    pub retry_after: Option<Duration>,
}

const fn info(class: ErrorClass, action: Action, hint: &'static str) -> CodeInfo {
    CodeInfo {
        class,
        action,
        hint,
        retry_after: None,
    }
}

const fn retry(class: ErrorClass, secs: u64, hint: &'static str) -> CodeInfo {
    CodeInfo {
        class,
        action: Action::RetryLater,
        hint,
        retry_after: Some(Duration::from_secs(secs)),
    }
}

const CAPACITY: ErrorClass = ErrorClass::SolverCapacity;
const ACCOUNT: ErrorClass = ErrorClass::Account;
const TASK: ErrorClass = ErrorClass::Task;
const TRANSPORT: ErrorClass = ErrorClass::Transport;
const FAIL: Action = Action::FailTask;
const PAUSE: Action = Action::PausePool;

/// Class, action and hint of a provider code; unknown codes fail the task.
pub fn lookup(code: &str) -> CodeInfo {
    match code {
        // Every thread of the plan is busy: more workers only add refusals.
        "ERROR_NO_SLOT_AVAILABLE" => retry(CAPACITY, 5, "every thread of the plan is busy"),
        // On CaptchaAI this means "no free thread", not only "no money" (plans sell threads).
        "ERROR_ZERO_BALANCE" => retry(
            CAPACITY,
            5,
            "no free thread or no funds on the account; retry later, and top up or upgrade \
             the plan if it persists",
        ),
        "ERROR_SERVER_ERROR" | "ERROR_INTERNAL_SERVER_ERROR" => {
            retry(TRANSPORT, 10, "the provider had an internal error")
        }
        "MAX_USER_TURN" | "ERROR_TOO_MUCH_REQUESTS" => {
            retry(TRANSPORT, 10, "too many requests; slow down")
        }
        "ERROR_WRONG_USER_KEY" => info(ACCOUNT, PAUSE, "the api key is malformed (32 characters)"),
        "ERROR_KEY_DOES_NOT_EXIST" => info(
            ACCOUNT,
            PAUSE,
            "the api key is unknown or its account has no plan",
        ),
        "ERROR_IP_NOT_ALLOWED" => info(
            ACCOUNT,
            PAUSE,
            "this ip is not in the account's allowed list",
        ),
        "IP_BANNED" | "ERROR_IP_BLOCKED" => info(
            ACCOUNT,
            PAUSE,
            "this ip is banned for a while after bad requests",
        ),
        "ERROR_CAPTCHA_UNSOLVABLE" => info(TASK, FAIL, "the provider could not solve it"),
        "ERROR_WRONG_CAPTCHA_ID" | "ERROR_NO_SUCH_CAPCHA_ID" | "ERROR_WRONG_ID_FORMAT" => {
            info(TASK, FAIL, "the provider does not know this captcha id")
        }
        "ERROR_PAGEURL" => info(TASK, FAIL, "the task needs a valid pageurl"),
        "ERROR_GOOGLEKEY" => info(TASK, FAIL, "the task needs a valid site key (googlekey)"),
        "ERROR_BAD_TOKEN_OR_PAGEURL" => info(
            TASK,
            FAIL,
            "the site key and pageurl do not belong together",
        ),
        "ERROR_BAD_PARAMETERS" | "ERROR_NO_SUCH_METHOD" | "ERROR_EMPTY_ACTION" => {
            info(TASK, FAIL, "the method or its parameters are wrong")
        }
        "ERROR_ZERO_CAPTCHA_FILESIZE"
        | "ERROR_TOO_BIG_CAPTCHA_FILESIZE"
        | "ERROR_WRONG_FILE_EXTENSION"
        | "ERROR_IMAGE_TYPE_NOT_SUPPORTED"
        | "ERROR_UPLOAD"
        | "ERROR_CAPTCHAIMAGE_BLOCKED" => {
            info(TASK, FAIL, "the image is empty, too big or unreadable")
        }
        "ERROR_BAD_PROXY" | "ERROR_PROXY_CONNECTION_FAILED" => {
            info(TASK, FAIL, "the task's proxy does not work")
        }
        "ERROR_BAD_DUPLICATES" | "ERROR_TOKEN_EXPIRED" => {
            info(TASK, FAIL, "the provider gave up on this task")
        }
        _ => info(TASK, FAIL, "an answer code this client does not know"),
    }
}

/// Whether a plain-text body is one of the provider's codes rather than an answer.
pub fn looks_like_code(text: &str) -> bool {
    let shaped = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    shaped && (text.starts_with("ERROR") || text == NOT_READY || lookup(text) != unknown())
}

fn unknown() -> CodeInfo {
    lookup("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_codes_pause_the_pool() {
        for code in [
            "ERROR_WRONG_USER_KEY",
            "ERROR_KEY_DOES_NOT_EXIST",
            "ERROR_IP_NOT_ALLOWED",
            "IP_BANNED",
        ] {
            let info = lookup(code);
            assert_eq!((info.class, info.action), (ACCOUNT, PAUSE), "{code}");
        }
    }

    #[test]
    fn capacity_codes_retry_later_and_never_pause() {
        for code in ["ERROR_NO_SLOT_AVAILABLE", "ERROR_ZERO_BALANCE"] {
            let info = lookup(code);
            assert_eq!(
                (info.class, info.action),
                (CAPACITY, Action::RetryLater),
                "{code}"
            );
            assert!(info.retry_after.is_some());
        }
    }

    #[test]
    fn task_codes_fail_the_task() {
        for code in [
            "ERROR_CAPTCHA_UNSOLVABLE",
            "ERROR_WRONG_CAPTCHA_ID",
            "ERROR_BAD_PARAMETERS",
            "ERROR_PAGEURL",
            "ERROR_GOOGLEKEY",
            "ERROR_ZERO_CAPTCHA_FILESIZE",
            "ERROR_SOMETHING_NEW",
        ] {
            let info = lookup(code);
            assert_eq!((info.class, info.action), (TASK, FAIL), "{code}");
        }
    }

    #[test]
    fn server_errors_are_transport_and_retry() {
        let info = lookup("ERROR_SERVER_ERROR");
        assert_eq!((info.class, info.action), (TRANSPORT, Action::RetryLater));
    }

    #[test]
    fn codes_are_told_from_answers() {
        assert!(looks_like_code("ERROR_ZERO_BALANCE"));
        assert!(looks_like_code("IP_BANNED"));
        assert!(looks_like_code(NOT_READY));
        assert!(!looks_like_code("W68HP"));
        assert!(!looks_like_code("ERROR with spaces"));
        assert!(!looks_like_code(""));
    }
}
