//! The simulator's HTTP face: `in.php`, `res.php`, and `/sim/…` for tests and operators.
//!
//! Requests become calls on the shared [`State`]; its [`Answer`]s are written back with HTTP
//! 200 as `{"status", "request"}` when the request says `json=1`, as plain text otherwise,
//! like the real API. A middleware in front of the two protocol routes delays answers and
//! replaces them with injected [`Fault`]s, or resets the connection.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Query, Request, State as Shared};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Form, Json, Router};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::config::{Fault, Faults};
use super::reset::Conn;
use super::state::{Answer, Params, SimStats, State};

/// The state every handler shares.
pub(crate) type SharedState = Arc<Mutex<State>>;

/// Locks the state; a panic elsewhere leaves counters that are still worth reading.
pub(crate) fn lock(state: &SharedState) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every route of the simulator.
pub(crate) fn router(state: SharedState) -> Router {
    let protocol = Router::new()
        .route("/in.php", get(submit).post(submit))
        .route("/res.php", get(result).post(result))
        .layer(middleware::from_fn_with_state(state.clone(), inject_faults));
    Router::new()
        .merge(protocol)
        .route("/sim/stats", get(stats))
        .route("/sim/faults", put(set_faults))
        .with_state(state)
}

/// Query and form fields in one map; a form field wins over a query field of the same name.
type Fields = Query<Vec<(String, String)>>;
type FormFields = Result<Form<Vec<(String, String)>>, FormRejection>;

fn merge(Query(query): Fields, form: FormFields) -> Params {
    let form = form.map(|Form(fields)| fields).unwrap_or_default();
    query.into_iter().chain(form).collect()
}

/// `in.php`: submit a task.
async fn submit(Shared(state): Shared<SharedState>, query: Fields, form: FormFields) -> Response {
    let params = merge(query, form);
    let answer = lock(&state).submit(&params, Instant::now());
    tracing::trace!(?answer, "in.php");
    render(answer, wants_json(&params), Plain::WithOk)
}

/// `res.php`: `action=get` for an answer, `action=getbalance` for the money left.
async fn result(Shared(state): Shared<SharedState>, query: Fields, form: FormFields) -> Response {
    let params = merge(query, form);
    let now = Instant::now();
    let (answer, plain) = match params.get("action").map(String::as_str) {
        Some("get") => (lock(&state).get(&params, now), Plain::WithOk),
        Some("getbalance") => (lock(&state).balance(&params, now), Plain::Bare),
        _ => (Answer::Error("ERROR_EMPTY_ACTION"), Plain::Bare),
    };
    tracing::trace!(?answer, "res.php");
    render(answer, wants_json(&params), plain)
}

/// `GET /sim/stats`: the counters as JSON.
async fn stats(Shared(state): Shared<SharedState>) -> Json<SimStats> {
    Json(lock(&state).stats(Instant::now()))
}

/// `PUT /sim/faults`: replace the injected faults.
async fn set_faults(Shared(state): Shared<SharedState>, Json(faults): Json<Faults>) -> StatusCode {
    tracing::info!(?faults, "simulator faults set");
    lock(&state).set_faults(faults);
    StatusCode::NO_CONTENT
}

/// Delays the answer, or replaces it with a fault while some are due.
async fn inject_faults(
    Shared(state): Shared<SharedState>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    request: Request,
    next: Next,
) -> Response {
    let (delay, fault) = lock(&state).take_fault();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match fault {
        Some(fault) => {
            tracing::debug!(?fault, path = request.uri().path(), "fault injected");
            if fault == Fault::Reset {
                tracing::debug!(peer = %conn.peer, "resetting the connection");
                conn.reset();
            }
            fault_response(fault)
        }
        None => next.run(request).await,
    }
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::Html { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let page = format!(
                "<!DOCTYPE html>\n<html><head><title>{status}</title></head>\
                 <body><h1>{status}</h1><p>The server is temporarily unable to answer.</p>\
                 </body></html>\n"
            );
            let mut response = (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                page,
            )
                .into_response();
            // Rate limits and outages say when to come back, as real front ends do.
            if matches!(status.as_u16(), 429 | 503) {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            response
        }
        Fault::Garbage => plain_text("Warning: mysqli_connect(): too many connections"),
        Fault::Empty | Fault::Reset => plain_text(""),
        Fault::Code { code } => Json(json!({"status": 0, "request": code})).into_response(),
    }
}

/// How a successful answer reads in plain text.
#[derive(Debug, Clone, Copy)]
enum Plain {
    /// `OK|…`: ids and answers.
    WithOk,
    /// The value alone: the balance.
    Bare,
}

fn wants_json(params: &Params) -> bool {
    params.get("json").is_some_and(|v| v == "1" || v == "true")
}

fn render(answer: Answer, json: bool, plain: Plain) -> Response {
    if json {
        let (status, request) = match answer {
            Answer::Ok(value) => (1, value),
            Answer::NotReady => (0, Value::from("CAPCHA_NOT_READY")),
            Answer::Error(code) => (0, Value::from(code)),
        };
        return Json(json!({"status": status, "request": request})).into_response();
    }
    let text = match (answer, plain) {
        (Answer::Ok(value), Plain::WithOk) => format!("OK|{}", as_text(&value)),
        (Answer::Ok(value), Plain::Bare) => as_text(&value),
        (Answer::NotReady, _) => "CAPCHA_NOT_READY".to_owned(),
        (Answer::Error(code), _) => code.to_owned(),
    };
    plain_text(&text)
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn plain_text(text: &str) -> Response {
    let content_type = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    (StatusCode::OK, content_type, text.to_owned()).into_response()
}
