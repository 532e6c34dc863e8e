//! The CaptchaAI client: submit, poll, balance, and the errors that decide what a worker does.
//!
//! - [`config`]: [`ClientConfig`] and [`ApiKey`], a key that never prints.
//! - [`client`]: [`Client`], whose [`solve`](Client::solve) runs one task end to end.
//! - [`protocol`]: the `in.php` / `res.php` wire format, JSON and plain text.
//! - [`error`]: [`SolveError`] with its [`ErrorClass`] and [`Action`]; [`codes`] is the
//!   table from provider codes to both.
//!
//! The classes feed the policy's error-rate signals; the actions tell the worker to retry
//! later, fail the task, or pause the pool. Two choices worth knowing:
//!
//! - `ERROR_ZERO_BALANCE` is capacity, not account: CaptchaAI sells plans by concurrent
//!   threads and answers it when every thread is busy, so it retries later like
//!   `ERROR_NO_SLOT_AVAILABLE` instead of pausing the pool. An account truly out of funds
//!   shows in the balance the host reads, which the policy sees.
//! - Unknown `ERROR_*` codes fail the task: repeating a request the provider refused for a
//!   reason this client does not know would only be refused again.

pub mod client;
pub mod codes;
pub mod config;
pub mod error;
pub mod protocol;

pub use client::{Client, ClientBuildError, Poll};
pub use config::{ApiKey, ClientConfig};
pub use error::{Action, BodyKind, ErrorClass, SolveError};
pub use protocol::CaptchaId;
