//! Calling a policy every tick, and containing it when it misbehaves.
//!
//! A runtime owns one loaded policy, its parameters, the live instance (a store plus bindings)
//! and the policy's state blob. Every call runs under an epoch deadline and the memory limit.
//! Any failure drops the instance (a trap poisons a store), keeps the last good state, and is
//! returned as a classified [`PolicyError`]; the next call builds a fresh instance.

use std::time::{Duration, Instant};

use wasmtime::Store;

use super::PolicyError;
use super::bindings::Policy;
use super::bindings::autoscaler::policy::types::{LogLevel, Param, ParamValue, Snapshot};
use super::engine::{LoadedPolicy, PolicyEngine};
use super::guest::{GuestState, truncate};
use super::limits::Limits;

/// A decision the host may act on, after the runtime's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDecision {
    pub target: u32,
    pub reason: String,
}

/// One instance of a policy with its store.
struct Live {
    store: Store<GuestState>,
    bindings: Policy,
}

/// A policy ready to decide, with its state and its limits.
pub struct PolicyRuntime {
    engine: PolicyEngine,
    policy: LoadedPolicy,
    params: Vec<Param>,
    limits: Limits,
    live: Option<Live>,
    state: Vec<u8>,
    /// How long the last call took, instantiation included.
    pub last_call: Option<Duration>,
}

impl std::fmt::Debug for PolicyRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyRuntime")
            .field("policy", &self.policy)
            .field("state_bytes", &self.state.len())
            .finish_non_exhaustive()
    }
}

impl PolicyRuntime {
    /// Instantiates the policy and runs its `configure`, so bad parameters are caught now.
    pub fn new(
        engine: PolicyEngine,
        policy: LoadedPolicy,
        params: Vec<Param>,
        limits: Limits,
    ) -> Result<Self, PolicyError> {
        let mut runtime = Self {
            engine,
            policy,
            params,
            limits,
            live: None,
            state: Vec::new(),
            last_call: None,
        };
        runtime.ensure_live()?;
        Ok(runtime)
    }

    pub fn policy(&self) -> &LoadedPolicy {
        &self.policy
    }

    pub fn state(&self) -> &[u8] {
        &self.state
    }

    /// Replaces the state, as when a reloaded policy takes over from the one before it.
    pub fn set_state(&mut self, state: Vec<u8>) {
        self.state = state;
    }

    /// Asks the policy for a decision on `snapshot`.
    ///
    /// Call it off the async runtime's threads (`spawn_blocking`): a guest that writes to
    /// stdout or stderr blocks inside WASI, which enters tokio and panics on a runtime thread.
    pub fn decide(&mut self, snapshot: &Snapshot) -> Result<PolicyDecision, PolicyError> {
        let started = Instant::now();
        let result = self.call_decide(snapshot);
        self.last_call = Some(started.elapsed());
        if result.is_err() {
            self.live = None;
        }
        result
    }

    fn call_decide(&mut self, snapshot: &Snapshot) -> Result<PolicyDecision, PolicyError> {
        self.ensure_live()?;
        let Some(live) = self.live.as_mut() else {
            return Err(PolicyError::Trap {
                detail: "no instance".into(),
            });
        };
        prepare_call(&mut live.store, &self.limits);
        let called = live
            .bindings
            .call_decide(&mut live.store, *snapshot, &self.state);
        flush_log(&live.store, &self.policy.name);
        let decision = called.map_err(|e| classify(e, &live.store, &self.limits))?;
        if decision.state.len() > self.limits.max_state_bytes {
            return Err(PolicyError::BadOutput {
                detail: format!(
                    "its state is {} bytes, more than policy.max_state_bytes ({})",
                    decision.state.len(),
                    self.limits.max_state_bytes
                ),
            });
        }
        self.state = decision.state;
        let reason = truncate(&decision.reason, self.limits.max_reason_bytes).to_owned();
        Ok(PolicyDecision {
            target: decision.target,
            reason,
        })
    }

    /// Builds a fresh instance and configures it, unless one is alive already.
    fn ensure_live(&mut self) -> Result<(), PolicyError> {
        if self.live.is_some() {
            return Ok(());
        }
        let mut store = Store::new(self.engine.engine(), GuestState::new(&self.limits));
        store.limiter(|state| &mut state.limiter);
        prepare_call(&mut store, &self.limits);
        let instantiated = self.policy.pre.instantiate(&mut store);
        let bindings = instantiated.map_err(|e| classify(e, &store, &self.limits))?;
        prepare_call(&mut store, &self.limits);
        let configured = bindings.call_configure(&mut store, &self.params);
        flush_log(&store, &self.policy.name);
        match configured.map_err(|e| classify(e, &store, &self.limits))? {
            Ok(()) => {}
            Err(message) => return Err(PolicyError::Rejected { message }),
        }
        self.live = Some(Live { store, bindings });
        Ok(())
    }
}

/// Sets the call's deadline and empties the log budget.
fn prepare_call(store: &mut Store<GuestState>, limits: &Limits) {
    store.set_epoch_deadline(limits.deadline_ticks());
    let log = store.data().log.clone();
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .reset(limits.max_log_bytes);
}

/// Writes what the policy logged during the call to the host's log.
fn flush_log(store: &Store<GuestState>, policy: &str) {
    let log = store.data().log.clone();
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.finish();
    for (level, line) in &log.lines {
        match level {
            LogLevel::Debug => tracing::debug!(%policy, "policy: {line}"),
            LogLevel::Info => tracing::info!(%policy, "policy: {line}"),
            LogLevel::Warn => tracing::warn!(%policy, "policy: {line}"),
            LogLevel::Error => tracing::error!(%policy, "policy: {line}"),
        }
    }
    if log.dropped > 0 {
        tracing::warn!(
            %policy,
            dropped_bytes = log.dropped,
            "policy log output over policy.max_log_bytes dropped"
        );
    }
}

/// Names what went wrong in a failed call: timeout, out of memory, or another trap (by its
/// trap code alone: the wasm backtrace is noise in a log line, and the guest's own panic
/// message has already gone to the log through its stderr).
fn classify(error: wasmtime::Error, store: &Store<GuestState>, limits: &Limits) -> PolicyError {
    let trap = error.downcast_ref::<wasmtime::Trap>();
    if let Some(wasmtime::Trap::Interrupt) = trap {
        return PolicyError::Timeout {
            deadline: limits.cpu_deadline,
        };
    }
    if store.data().limiter.refused_memory {
        return PolicyError::OutOfMemory {
            limit_mib: limits.memory_mib,
        };
    }
    let detail = match trap {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    };
    PolicyError::Trap { detail }
}

/// Turns the `[policy.params]` table into the contract's parameter list.
pub fn params_from_toml(
    table: &std::collections::BTreeMap<String, toml::Value>,
) -> Result<Vec<Param>, PolicyError> {
    table
        .iter()
        .map(|(name, value)| {
            let value = match value {
                toml::Value::Boolean(b) => ParamValue::Boolean(*b),
                toml::Value::Integer(i) => ParamValue::Integer(*i),
                toml::Value::Float(f) => ParamValue::Float(*f),
                toml::Value::String(s) => ParamValue::Text(s.clone()),
                other => {
                    return Err(PolicyError::Rejected {
                        message: format!(
                            "policy.params.{name} is a {}; use a number, a boolean or a string",
                            other.type_str()
                        ),
                    });
                }
            };
            Ok(Param {
                name: name.clone(),
                value,
            })
        })
        .collect()
}
