//! The task and result formats shared with producers and consumers.
//!
//! A task is the JSON `{"id", "method", "params"}` a producer pushes; `enqueued_at` and
//! `deadline` (Unix milliseconds) are optional extras that improve the signals and are never
//! required. A result is `{"status":"success","token":…}` or `{"status":"error","error":…}`.
//! Input that cannot be a task is classified here so the worker can answer it with an error
//! result (when an id can be recovered) or a dead letter (when none can).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One CAPTCHA to solve, as a producer wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: String,
    pub method: String,
    pub params: Map<String, Value>,
    /// When the producer pushed it, Unix milliseconds.
    pub enqueued_at_ms: Option<u64>,
    /// When the answer stops being useful, Unix milliseconds.
    pub deadline_ms: Option<u64>,
}

/// The outcome written to the results hash under the task's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum TaskResult {
    Success { token: String },
    Error { error: String },
}

/// Why raw queue input is not a task.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BadTask {
    /// The input names an id, so the producer can be answered with an error result.
    #[error("task {id:?}: {reason}")]
    Answerable { id: String, reason: String },
    /// No id can be recovered: the input goes to the dead-letter list.
    #[error("{reason}")]
    Unanswerable { reason: String },
}

/// The error code written for a task whose JSON is not a valid task.
pub const BAD_TASK_ERROR: &str = "ERROR_BAD_TASK";
/// Largest task accepted, in bytes; the provider refuses far smaller images anyway, and a
/// larger one would only be retried against its request limits until the deadline.
pub const MAX_TASK_BYTES: usize = 1024 * 1024;

impl Task {
    /// Parses one queue entry, keeping the id when the rest is wrong.
    pub fn parse(raw: &[u8]) -> Result<Self, BadTask> {
        let text = std::str::from_utf8(raw).map_err(|_| BadTask::Unanswerable {
            reason: "task is not UTF-8 text".into(),
        })?;
        let value: Value = serde_json::from_str(text).map_err(|e| BadTask::Unanswerable {
            reason: format!("task is not JSON: {e}"),
        })?;
        let Value::Object(mut object) = value else {
            return Err(BadTask::Unanswerable {
                reason: "task is not a JSON object".into(),
            });
        };
        let id = take_id(&mut object)?;
        let answerable = |reason: String| BadTask::Answerable {
            id: id.clone(),
            reason,
        };
        if raw.len() > MAX_TASK_BYTES {
            let size = raw.len();
            return Err(answerable(format!(
                "task is {size} bytes, over the limit of {MAX_TASK_BYTES}; shrink its image"
            )));
        }
        let method = match object.remove("method") {
            Some(Value::String(method)) if !method.is_empty() => method,
            Some(other) => return Err(answerable(format!("method must be a string, not {other}"))),
            None => return Err(answerable("task has no method".into())),
        };
        let params = match object.remove("params") {
            Some(Value::Object(params)) => params,
            None | Some(Value::Null) => Map::new(),
            Some(other) => {
                return Err(answerable(format!("params must be an object, not {other}")));
            }
        };
        Ok(Self {
            enqueued_at_ms: object.get("enqueued_at").and_then(Value::as_u64),
            deadline_ms: object.get("deadline").and_then(Value::as_u64),
            id,
            method,
            params,
        })
    }

    /// Serializes the task as a producer would push it.
    pub fn to_json(&self) -> String {
        let mut object = Map::new();
        object.insert("id".into(), Value::String(self.id.clone()));
        object.insert("method".into(), Value::String(self.method.clone()));
        object.insert("params".into(), Value::Object(self.params.clone()));
        if let Some(at) = self.enqueued_at_ms {
            object.insert("enqueued_at".into(), at.into());
        }
        if let Some(deadline) = self.deadline_ms {
            object.insert("deadline".into(), deadline.into());
        }
        Value::Object(object).to_string()
    }
}

/// Reads the id: a non-empty string, or a number (written back as its decimal text).
fn take_id(object: &mut Map<String, Value>) -> Result<String, BadTask> {
    match object.remove("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(BadTask::Unanswerable {
            reason: format!("task id must be a non-empty string or a number, not {other}"),
        }),
        None => Err(BadTask::Unanswerable {
            reason: "task has no id".into(),
        }),
    }
}

impl TaskResult {
    /// The JSON stored in the results hash.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"status":"error","error":"?"}"#.into())
    }

    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success { .. })
    }
}

/// Reads the `enqueued_at` stamp from a raw queue entry without parsing the whole task.
pub fn enqueued_at_ms(raw: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Stamp {
        enqueued_at: Option<u64>,
    }
    serde_json::from_slice::<Stamp>(raw).ok()?.enqueued_at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_producer_format() {
        let raw =
            br#"{"id":"t1","method":"userrecaptcha","params":{"googlekey":"k","pageurl":"u"}}"#;
        let task = Task::parse(raw).expect("valid task");
        assert_eq!(task.id, "t1");
        assert_eq!(task.method, "userrecaptcha");
        assert_eq!(task.params["googlekey"], "k");
        assert_eq!(task.enqueued_at_ms, None);
    }

    #[test]
    fn optional_stamps_are_read() {
        let raw = br#"{"id":7,"method":"post","params":{},"enqueued_at":1700000000000}"#;
        let task = Task::parse(raw).expect("valid task");
        assert_eq!(task.id, "7");
        assert_eq!(task.enqueued_at_ms, Some(1_700_000_000_000));
        assert_eq!(enqueued_at_ms(raw), Some(1_700_000_000_000));
    }

    #[test]
    fn a_bad_task_with_an_id_is_answerable() {
        let err = Task::parse(br#"{"id":"t2","params":{}}"#).expect_err("no method");
        assert_eq!(
            err,
            BadTask::Answerable {
                id: "t2".into(),
                reason: "task has no method".into()
            }
        );
        let err = Task::parse(br#"{"id":"t3","method":"post","params":[1]}"#).expect_err("bad");
        assert!(matches!(err, BadTask::Answerable { id, .. } if id == "t3"));
    }

    #[test]
    fn an_oversized_task_with_an_id_is_answerable() {
        let body = "a".repeat(MAX_TASK_BYTES);
        let raw = format!(r#"{{"id":"big","method":"base64","params":{{"body":"{body}"}}}}"#);
        let err = Task::parse(raw.as_bytes()).expect_err("too big");
        let BadTask::Answerable { id, reason } = &err else {
            panic!("a big task with an id is answerable: {err}");
        };
        assert_eq!(id, "big");
        assert!(reason.contains("over the limit"), "{err}");
    }

    #[test]
    fn input_without_an_id_is_a_dead_letter() {
        for raw in [
            &b"not json"[..],
            b"[1,2]",
            br#"{"method":"post"}"#,
            b"\xff\xfe",
        ] {
            let err = Task::parse(raw).expect_err("invalid");
            assert!(
                matches!(err, BadTask::Unanswerable { .. }),
                "{raw:?}: {err}"
            );
        }
    }

    #[test]
    fn results_have_the_consumer_format() {
        let ok = TaskResult::Success {
            token: "abc".into(),
        };
        assert_eq!(ok.to_json(), r#"{"status":"success","token":"abc"}"#);
        let err = TaskResult::Error {
            error: "ERROR_CAPTCHA_UNSOLVABLE".into(),
        };
        assert_eq!(
            err.to_json(),
            r#"{"status":"error","error":"ERROR_CAPTCHA_UNSOLVABLE"}"#
        );
    }

    #[test]
    fn a_task_round_trips_through_json() {
        let task = Task {
            id: "x".into(),
            method: "turnstile".into(),
            params: Map::new(),
            enqueued_at_ms: Some(5),
            deadline_ms: None,
        };
        assert_eq!(Task::parse(task.to_json().as_bytes()), Ok(task));
    }
}
