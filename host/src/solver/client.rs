//! The CaptchaAI client: submit a task, poll for its answer, read the balance.
//!
//! [`Client::solve`] is what a worker calls: it submits, waits the first delay, then polls
//! every interval until an answer, the task's deadline or the poll budget. A transport
//! failure while polling costs one poll and polling goes on, since the task is already paid
//! for; a failed submit is returned at once for the caller to retry or give up. All waits use
//! `tokio::time`, so paused-time tests drive them.

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::codes;
use super::config::ClientConfig;
use super::error::{Action, BodyKind, SolveError};
use super::protocol::{self, CaptchaId, Reply};
use crate::observe::{ApiCall, ApiCalls, CallResult};

/// Requests in flight at once, for all clones of a client: thousands of workers polling
/// share a few connections instead of opening one each.
const MAX_CONCURRENT_REQUESTS: usize = 256;

/// What one poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// The answer: a token, an image's text, or an object's JSON text.
    Ready(String),
    /// Not solved yet (`CAPCHA_NOT_READY`).
    NotReady,
}

/// The client could not be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("captchaai url {0:?} must start with http:// or https://")]
    BadUrl(String),
    #[error("the captchaai api key is empty; set it in the environment or a key file")]
    EmptyKey,
    #[error("failed to build the http client")]
    Http(#[source] reqwest::Error),
}

/// A CaptchaAI client; cheap to clone, every clone shares one connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Where every call is counted, when the host exports metrics.
    calls: Option<ApiCalls>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    in_url: String,
    res_url: String,
    in_flight: Semaphore,
}

impl Client {
    /// Builds a client; fails on a URL that is not http(s) or an empty key.
    pub fn new(config: ClientConfig) -> Result<Self, ClientBuildError> {
        let base = config.base_url.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientBuildError::BadUrl(config.base_url));
        }
        if config.api_key.is_empty() {
            return Err(ClientBuildError::EmptyKey);
        }
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .pool_max_idle_per_host(MAX_CONCURRENT_REQUESTS)
            .build()
            .map_err(ClientBuildError::Http)?;
        let inner = Inner {
            http,
            in_url: format!("{base}/in.php"),
            res_url: format!("{base}/res.php"),
            in_flight: Semaphore::new(MAX_CONCURRENT_REQUESTS),
            config,
        };
        Ok(Self {
            inner: Arc::new(inner),
            calls: None,
        })
    }

    /// Counts every call into `calls`, by call and result; clones made afterwards count too.
    pub fn with_calls(mut self, calls: ApiCalls) -> Self {
        self.calls = Some(calls);
        self
    }

    /// The config the client was built from.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Submits a task (`POST in.php`); `params` become form fields next to key and method.
    pub async fn submit(
        &self,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<CaptchaId, SolveError> {
        let mut form: Vec<(String, String)> = vec![
            ("key".into(), self.inner.config.api_key.expose().to_owned()),
            ("method".into(), method.to_owned()),
            ("json".into(), "1".into()),
        ];
        form.extend(protocol::form_fields(params)?);

        let request = self.inner.http.post(&self.inner.in_url).form(&form);
        let value = expect_ok(self.send(ApiCall::Submit, request).await?)?;
        let id = protocol::captcha_id(value)?;
        tracing::debug!(method, captcha_id = %id, "task submitted");
        Ok(id)
    }

    /// Asks once for a task's answer (`GET res.php?action=get`).
    pub async fn poll(&self, id: &CaptchaId) -> Result<Poll, SolveError> {
        let query = [("action", "get"), ("id", id.as_str())];
        let reply = self.get(ApiCall::Poll, &query).await?;
        match reply {
            Reply::NotReady => Ok(Poll::NotReady),
            reply => Ok(Poll::Ready(protocol::answer_text(expect_ok(reply)?)?)),
        }
    }

    /// Reads the account balance in US dollars (`GET res.php?action=getbalance`).
    pub async fn balance(&self) -> Result<f64, SolveError> {
        let reply = self
            .get(ApiCall::Balance, &[("action", "getbalance")])
            .await?;
        protocol::balance(expect_ok(reply)?)
    }

    /// Submits a task and polls until its answer, the `deadline` or the poll budget.
    pub async fn solve(
        &self,
        method: &str,
        params: &Map<String, Value>,
        deadline: Instant,
    ) -> Result<String, SolveError> {
        if Instant::now() >= deadline {
            return Err(SolveError::DeadlineExceeded);
        }
        let id = within(deadline, self.submit(method, params)).await?;

        let first_poll = Instant::now() + self.inner.config.first_poll_delay_for(method);
        self.wait_for_answer(&id, first_poll, deadline).await
    }

    /// Polls from `first_poll` on, every interval, within the poll budget and the deadline.
    async fn wait_for_answer(
        &self,
        id: &CaptchaId,
        first_poll: Instant,
        deadline: Instant,
    ) -> Result<String, SolveError> {
        let config = &self.inner.config;
        let mut next = first_poll;
        for polls in 1..=config.max_polls {
            if next >= deadline {
                return Err(SolveError::DeadlineExceeded);
            }
            tokio::time::sleep_until(next).await;

            match within(deadline, self.poll(id)).await {
                Ok(Poll::Ready(answer)) => {
                    tracing::debug!(captcha_id = %id, polls, "task solved");
                    return Ok(answer);
                }
                Ok(Poll::NotReady) => tracing::trace!(captcha_id = %id, polls, "not ready"),
                Err(error) if error.action() == Action::RetryLater => {
                    tracing::debug!(captcha_id = %id, polls, %error, "poll failed; polling on");
                }
                Err(error) => return Err(error),
            }
            next = Instant::now() + config.poll_interval;
        }
        Err(SolveError::PollBudgetExhausted {
            polls: config.max_polls,
        })
    }

    /// One `GET res.php` with the key, `json=1` and `params`.
    async fn get(&self, call: ApiCall, params: &[(&str, &str)]) -> Result<Reply, SolveError> {
        let key = self.inner.config.api_key.expose();
        let mut query = vec![("key", key), ("json", "1")];
        query.extend_from_slice(params);
        let request = self.inner.http.get(&self.inner.res_url).query(&query);
        self.send(call, request).await
    }

    /// Sends a request, reads its answer and counts the call.
    async fn send(
        &self,
        call: ApiCall,
        request: reqwest::RequestBuilder,
    ) -> Result<Reply, SolveError> {
        let reply = self.exchange(request).await;
        if let Some(calls) = &self.calls {
            calls.record(call, call_result(&reply));
        }
        reply
    }

    /// Sends a request and reads its answer. Errors never carry the URL.
    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<Reply, SolveError> {
        let timeout = self.inner.config.http_timeout;
        let transport = |error| SolveError::from_reqwest(error, timeout);
        // The semaphore is never closed, so a permit always comes.
        let _permit = self.inner.in_flight.acquire().await.ok();
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.map_err(transport)?;
        protocol::parse_response(status, retry_after.as_deref(), &body)
    }
}

/// How a call ended, for the call counters: a provider code counts under its class.
fn call_result(reply: &Result<Reply, SolveError>) -> CallResult {
    match reply {
        Ok(Reply::Ok(_)) => CallResult::Ok,
        Ok(Reply::NotReady) => CallResult::NotReady,
        Ok(Reply::Code(code)) => CallResult::Error(codes::lookup(code).class),
        Err(error) => CallResult::Error(error.class()),
    }
}

/// The value of a `status: 1` answer; codes become errors.
fn expect_ok(reply: Reply) -> Result<Value, SolveError> {
    match reply {
        Reply::Ok(value) => Ok(value),
        Reply::Code(code) => Err(SolveError::Api { code }),
        Reply::NotReady => Err(SolveError::BadBody {
            body: BodyKind::Text,
        }),
    }
}

/// Runs `future` until `deadline`; past it the task's deadline is what failed.
async fn within<T>(
    deadline: Instant,
    future: impl Future<Output = Result<T, SolveError>>,
) -> Result<T, SolveError> {
    tokio::time::timeout_at(deadline, future)
        .await
        .unwrap_or(Err(SolveError::DeadlineExceeded))
}
