//! The wire format of `in.php` and `res.php`: task parameters out, answers in.
//!
//! With `json=1` the provider answers `{"status": 1|0, "request": …}` with HTTP 200, errors
//! included; `request` may be a string, a number or an object. Plain-text bodies (`OK|123`,
//! `ERROR_…`, a bare balance) are read too, in case a proxy or an older endpoint sends them.
//! Anything else (an HTML outage page, an empty or garbled body) is a transport error.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use super::codes::{self, NOT_READY};
use super::error::{BodyKind, SolveError};

/// The id the provider gives a submitted task. Not a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CaptchaId(String);

impl CaptchaId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CaptchaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One answer of the provider, before the caller says what it expected.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    /// `status: 1`: the id, the answer or the balance.
    Ok(Value),
    /// `CAPCHA_NOT_READY`: poll again later.
    NotReady,
    /// `status: 0` with an error code.
    Code(String),
}

/// Reads a response: a status other than 2xx is an error whatever the body says.
/// `retry_after` is the response's `Retry-After` header, if any.
pub(crate) fn parse_response(
    status: u16,
    retry_after: Option<&str>,
    body: &str,
) -> Result<Reply, SolveError> {
    if !(200..300).contains(&status) {
        let body = body_kind(body);
        let retry_after = retry_after.and_then(parse_retry_after);
        return Err(SolveError::HttpStatus {
            status,
            body,
            retry_after,
        });
    }
    parse_body(body)
}

/// A `Retry-After` in whole seconds; the HTTP-date form is not used by the provider and is
/// ignored, as is anything over an hour.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: u64 = value.trim().parse().ok()?;
    (secs <= 3600).then(|| Duration::from_secs(secs))
}

/// Reads a 2xx body, JSON or plain text.
pub(crate) fn parse_body(body: &str) -> Result<Reply, SolveError> {
    let text = body.trim();
    match body_kind(text) {
        BodyKind::Json => parse_json(text),
        BodyKind::Text => parse_plain(text),
        other => Err(SolveError::BadBody { body: other }),
    }
}

fn body_kind(body: &str) -> BodyKind {
    let text = body.trim_start();
    if text.is_empty() {
        BodyKind::Empty
    } else if text.starts_with('<') {
        BodyKind::Html
    } else if text.starts_with('{') || text.starts_with('[') {
        BodyKind::Json
    } else {
        BodyKind::Text
    }
}

fn parse_json(text: &str) -> Result<Reply, SolveError> {
    let bad = || SolveError::BadBody {
        body: BodyKind::Json,
    };
    let mut value: Value = serde_json::from_str(text).map_err(|_| bad())?;
    let object = value.as_object_mut().ok_or_else(bad)?;
    let request = object.remove("request").ok_or_else(bad)?;
    match (status_of(object.get("status")), request) {
        (Some(1), request) => Ok(Reply::Ok(request)),
        (Some(0), Value::String(code)) => Ok(code_reply(code)),
        _ => Err(bad()),
    }
}

/// `status` as a number, also when sent as a string.
fn status_of(status: Option<&Value>) -> Option<i64> {
    match status? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn code_reply(code: String) -> Reply {
    // The T-less spelling is the real one; the other is accepted in case it is ever fixed.
    if code == NOT_READY || code == "CAPTCHA_NOT_READY" {
        Reply::NotReady
    } else {
        Reply::Code(code)
    }
}

fn parse_plain(text: &str) -> Result<Reply, SolveError> {
    if let Some(answer) = text.strip_prefix("OK|") {
        return Ok(Reply::Ok(Value::String(answer.to_owned())));
    }
    if codes::looks_like_code(text) || text == "CAPTCHA_NOT_READY" {
        return Ok(code_reply(text.to_owned()));
    }
    match text.parse::<f64>() {
        Ok(number) if number.is_finite() => Ok(Reply::Ok(Value::from(number))),
        _ => Err(SolveError::BadBody {
            body: BodyKind::Text,
        }),
    }
}

/// The task id of a submit answer: a string or a number.
pub(crate) fn captcha_id(value: Value) -> Result<CaptchaId, SolveError> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Ok(CaptchaId::new(s.trim())),
        Value::Number(n) => Ok(CaptchaId::new(n.to_string())),
        _ => Err(not_an_answer()),
    }
}

/// The answer of a ready task: text as is, an object (a token with extras) as its JSON text.
pub(crate) fn answer_text(value: Value) -> Result<String, SolveError> {
    match value {
        Value::String(s) if !s.is_empty() => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        value @ (Value::Object(_) | Value::Array(_)) => Ok(value.to_string()),
        _ => Err(not_an_answer()),
    }
}

/// The balance in US dollars: a number or a numeric string.
pub(crate) fn balance(value: Value) -> Result<f64, SolveError> {
    let number = match &value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    number.filter(|n| n.is_finite()).ok_or_else(not_an_answer)
}

fn not_an_answer() -> SolveError {
    SolveError::BadBody {
        body: BodyKind::Json,
    }
}

/// Names the client sets itself; a task may not override them.
const RESERVED: [&str; 3] = ["key", "method", "json"];

/// Task parameters as form fields: strings as they are, numbers in decimal, booleans as
/// `1`/`0`, nulls left out. Objects and arrays cannot be flattened and fail the task.
pub(crate) fn form_fields(
    params: &Map<String, Value>,
) -> Result<Vec<(String, String)>, SolveError> {
    let mut fields = Vec::with_capacity(params.len());
    for (name, value) in params {
        if RESERVED.contains(&name.as_str()) {
            return Err(invalid(name, "is set by the client, not by the task"));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
            Value::Null => continue,
            Value::Object(_) | Value::Array(_) => {
                return Err(invalid(
                    name,
                    "is an object or array; send strings or numbers",
                ));
            }
        };
        fields.push((name.clone(), text));
    }
    Ok(fields)
}

fn invalid(name: &str, reason: &'static str) -> SolveError {
    SolveError::InvalidParam {
        name: name.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::solver::ErrorClass;

    fn ok(body: &str) -> Value {
        match parse_body(body) {
            Ok(Reply::Ok(value)) => value,
            other => panic!("{body}: {other:?}"),
        }
    }

    fn bad_body(body: &str) -> BodyKind {
        match parse_body(body) {
            Err(SolveError::BadBody { body }) => body,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn request_may_be_a_string_a_number_or_an_object() {
        assert_eq!(
            answer_text(ok(r#"{"status":1,"request":"03AGdBq2"}"#)).ok(),
            Some("03AGdBq2".into())
        );
        assert_eq!(
            captcha_id(ok(r#"{"status":1,"request":7254383961}"#)).ok(),
            Some(CaptchaId::new("7254383961"))
        );
        let object = ok(r#"{"status":1,"request":{"token":"t","userAgent":"ua"}}"#);
        let text = answer_text(object).expect("object answer");
        assert_eq!(
            serde_json::from_str::<Value>(&text).ok(),
            Some(json!({"token":"t","userAgent":"ua"}))
        );
    }

    #[test]
    fn not_ready_means_keep_polling() {
        assert_eq!(
            parse_body(r#"{"status":0,"request":"CAPCHA_NOT_READY"}"#).ok(),
            Some(Reply::NotReady)
        );
        assert_eq!(parse_body("CAPCHA_NOT_READY").ok(), Some(Reply::NotReady));
    }

    #[test]
    fn error_codes_arrive_with_status_zero() {
        let reply =
            parse_body(r#"{"status":0,"request":"ERROR_NO_SLOT_AVAILABLE","error_text":"x"}"#);
        assert_eq!(
            reply.ok(),
            Some(Reply::Code("ERROR_NO_SLOT_AVAILABLE".into()))
        );
        assert_eq!(
            parse_body(r#"{"status":"0","request":"IP_BANNED"}"#).ok(),
            Some(Reply::Code("IP_BANNED".into()))
        );
    }

    #[test]
    fn plain_text_bodies_are_read() {
        assert_eq!(captcha_id(ok("OK|123")).ok(), Some(CaptchaId::new("123")));
        assert_eq!(answer_text(ok("OK|W68HP")).ok(), Some("W68HP".into()));
        assert_eq!(
            parse_body("ERROR_ZERO_BALANCE\n").ok(),
            Some(Reply::Code("ERROR_ZERO_BALANCE".into()))
        );
        assert_eq!(balance(ok("2.75")).ok(), Some(2.75));
        assert_eq!(
            balance(ok(r#"{"status":1,"request":"12.5"}"#)).ok(),
            Some(12.5)
        );
    }

    #[test]
    fn html_empty_and_garbled_bodies_are_transport_errors() {
        assert_eq!(
            bad_body("<html><body>502 Bad Gateway</body></html>"),
            BodyKind::Html
        );
        assert_eq!(bad_body(""), BodyKind::Empty);
        assert_eq!(bad_body("  \n"), BodyKind::Empty);
        assert_eq!(bad_body(r#"{"status":1}"#), BodyKind::Json);
        assert_eq!(bad_body(r#"{"status":0,"request":5}"#), BodyKind::Json);
        assert_eq!(bad_body("{not json"), BodyKind::Json);
        assert_eq!(bad_body("service temporarily unavailable"), BodyKind::Text);
        let error = parse_body("<!doctype html>").expect_err("html");
        assert_eq!(error.class(), ErrorClass::Transport);
    }

    #[test]
    fn a_non_2xx_status_wins_over_the_body() {
        let error = parse_response(503, None, "<html>down</html>").expect_err("503");
        assert!(matches!(
            error,
            SolveError::HttpStatus {
                status: 503,
                body: BodyKind::Html,
                retry_after: None,
            }
        ));
        let error = parse_response(500, None, r#"{"status":1,"request":"x"}"#).expect_err("500");
        assert_eq!(error.code(), "HTTP_500");
    }

    #[test]
    fn a_retry_after_header_in_seconds_is_kept() {
        let wait = |header| {
            parse_response(429, Some(header), "slow down")
                .expect_err("429")
                .retry_after()
        };
        assert_eq!(wait("12"), Some(Duration::from_secs(12)));
        assert_eq!(wait(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(wait("Wed, 21 Oct 2026 07:28:00 GMT"), None);
        assert_eq!(wait("86400"), None, "a day is not a retry hint");
    }

    #[test]
    fn params_flatten_to_form_fields() {
        let params = json!({"googlekey": "k", "invisible": true, "min_score": 0.3, "data_s": null});
        let fields = form_fields(params.as_object().expect("object")).expect("flat");
        let get = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            (get("googlekey"), get("invisible"), get("min_score")),
            (Some("k"), Some("1"), Some("0.3"))
        );
        assert_eq!(get("data_s"), None);
    }

    #[test]
    fn nested_or_reserved_params_fail_the_task() {
        for params in [
            json!({"cookies": {"a": "b"}}),
            json!({"list": [1]}),
            json!({"key": "other"}),
        ] {
            let error = form_fields(params.as_object().expect("object")).expect_err("invalid");
            assert_eq!(error.class(), ErrorClass::Task, "{error}");
            assert_eq!(error.code(), "ERROR_INVALID_PARAMS");
        }
    }
}
