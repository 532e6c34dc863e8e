//! Scaling policies: WebAssembly components that turn a snapshot into a target worker count.
//!
//! `engine` compiles and checks components, `runtime` calls one under limits and contains its
//! failures, `slot` holds the policy in force (counting its failures and falling back to the
//! default after too many), `reload` watches a policy file and swaps a new policy in only once
//! it has worked, and `embedded` holds the default policy built into the binary.

pub mod embedded;
pub mod engine;
pub mod guest;
pub mod limits;
pub mod reload;
pub mod runtime;
pub mod slot;

use std::time::Duration;

pub use engine::{LoadedPolicy, PolicyEngine};
pub use limits::Limits;
pub use runtime::{PolicyDecision, PolicyRuntime, params_from_toml};
pub use slot::{Fallback, PolicyLoader, PolicySlot, PolicyStats};

/// The host side of the contract in `wit/`.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "policy",
    });
}

pub use bindings::autoscaler::policy::types::{ErrorRates, Snapshot};

/// The contract's package name, as it appears in import names.
pub const CONTRACT_PACKAGE: &str = "autoscaler:policy";
/// The contract version this host speaks.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Why a policy could not be loaded or could not decide.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("not a valid policy component: {detail}")]
    Invalid { detail: String },
    #[error(
        "it is a core WebAssembly module, not a component: build it with \
         `cargo build --target wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    #[error(
        "it exports no `{name}` function (exports found: {}); build it with the policy SDK's \
         export_policy! macro against {CONTRACT_PACKAGE}@{CONTRACT_VERSION}",
        found.join(", ")
    )]
    MissingExport { name: String, found: Vec<String> },
    #[error(
        "it was built against contract {CONTRACT_PACKAGE}@{found}, but this host expects \
         {CONTRACT_PACKAGE}@{CONTRACT_VERSION}: rebuild it with the policy SDK for \
         {CONTRACT_VERSION}"
    )]
    ContractVersion { found: String },
    #[error("it does not match contract {CONTRACT_PACKAGE}@{CONTRACT_VERSION}: {detail}")]
    Incompatible { detail: String },
    #[error("its configure rejected the parameters: {message}")]
    Rejected { message: String },
    #[error("it ran past its deadline of {deadline:?} (policy.cpu_deadline)")]
    Timeout { deadline: Duration },
    #[error("it ran out of memory (policy.memory_mib = {limit_mib})")]
    OutOfMemory { limit_mib: u32 },
    #[error("it trapped: {detail}")]
    Trap { detail: String },
    #[error("it returned a bad decision: {detail}")]
    BadOutput { detail: String },
}

impl PolicyError {
    /// A short class name for logs, metrics and the status.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Invalid { .. } | Self::CoreModule => "invalid",
            Self::MissingExport { .. }
            | Self::ContractVersion { .. }
            | Self::Incompatible { .. } => "incompatible_contract",
            Self::Rejected { .. } => "rejected_params",
            Self::Timeout { .. } => "timeout",
            Self::OutOfMemory { .. } => "out_of_memory",
            Self::Trap { .. } => "trap",
            Self::BadOutput { .. } => "bad_output",
        }
    }
}

/// A pool of 2 idle workers with an empty queue, within the config's bounds.
pub fn sample_snapshot(config: &crate::config::Config) -> Snapshot {
    let ms = |d: std::time::Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    Snapshot {
        now_ms: crate::clock::unix_ms(),
        tick_ms: ms(config.pool.tick),
        window_ms: ms(config.pool.window),
        queue_depth: 0,
        oldest_task_age_ms: None,
        arrival_rate: 0.0,
        completion_rate: 0.0,
        workers: 2,
        busy: 0,
        draining: 0,
        utilization: 0.0,
        latency_p50_ms: None,
        latency_p95_ms: None,
        attempts: 0,
        errors: ErrorRates {
            solver_capacity: 0.0,
            account: 0.0,
            task: 0.0,
            transport: 0.0,
        },
        balance_usd: Some(10.0),
        balance_age_ms: Some(0),
        submissions_paused: false,
        min_workers: config.pool.min_workers,
        max_workers: config.pool.max_workers,
        since_scale_up_ms: None,
        since_scale_down_ms: None,
    }
}
