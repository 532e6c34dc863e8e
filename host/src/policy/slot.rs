//! The policy in force: calling it every tick, counting what goes wrong, falling back.
//!
//! [`PolicySlot`] holds the runtime the scaler calls, the last snapshot it was called with,
//! and what the status shows about the policy ([`PolicyStats`]). After
//! `policy.fallback_after` failed calls in a row it swaps in the embedded default policy,
//! logs why and shows it in the status; a good file loaded later takes over again through
//! [`PolicySlot::replace`], which tries a candidate on the last snapshot before swapping it in.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::bindings::autoscaler::policy::types::{Param, Snapshot};
use super::embedded::{DEFAULT_POLICY, DEFAULT_POLICY_NAME};
use super::{Limits, PolicyDecision, PolicyEngine, PolicyError, PolicyRuntime};

/// Everything needed to build a runtime from new bytes.
#[derive(Debug, Clone)]
pub struct PolicyLoader {
    pub engine: PolicyEngine,
    pub params: Vec<Param>,
    pub limits: Limits,
}

impl PolicyLoader {
    /// Compiles (or takes from the cache), checks and configures a policy.
    pub fn runtime(&self, name: &str, bytes: &[u8]) -> Result<PolicyRuntime, PolicyError> {
        let policy = self.engine.load(name, bytes)?;
        PolicyRuntime::new(
            self.engine.clone(),
            policy,
            self.params.clone(),
            self.limits.clone(),
        )
    }

    /// The embedded default policy with its own default parameters: `[policy.params]` belong
    /// to the policy file it stands in for.
    pub fn default_policy(&self) -> Result<PolicyRuntime, PolicyError> {
        let loader = Self {
            params: Vec::new(),
            ..self.clone()
        };
        loader.runtime(DEFAULT_POLICY_NAME, DEFAULT_POLICY)
    }
}

/// When to give up on a failing policy file and run the embedded default instead.
#[derive(Debug, Clone)]
pub struct Fallback {
    /// Failed calls in a row that trigger the fallback (`policy.fallback_after`); 0 never.
    pub after: u32,
    pub loader: PolicyLoader,
}

impl Fallback {
    /// A fallback with the default policy compiled ahead, so falling back is quick.
    pub fn prepared(after: u32, loader: PolicyLoader) -> Self {
        if let Err(error) = loader.engine.load(DEFAULT_POLICY_NAME, DEFAULT_POLICY) {
            tracing::error!(%error, "the embedded default policy does not load: no fallback");
        }
        Self { after, loader }
    }
}

/// What the status shows about the policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyStats {
    pub calls: u64,
    pub failures: u64,
    pub consecutive_failures: u32,
    pub failures_by_class: BTreeMap<String, u64>,
    /// The class and message of the latest failure.
    pub last_failure: Option<String>,
    /// When the policy was last called, Unix milliseconds.
    pub last_call_at_ms: Option<u64>,
    /// How long that call took, a fresh instance included, in microseconds.
    pub last_call_micros: Option<u64>,
    /// Decisions outside `[min_workers, max_workers]` that the host clamped.
    pub clamped: u64,
    pub reloads: u64,
    pub last_reload_error: Option<String>,
    /// Why the embedded default policy is deciding instead of the configured file.
    pub fallback: Option<String>,
}

/// The policy in force, shared by the scaler and the reloader.
#[derive(Debug)]
pub struct PolicySlot {
    runtime: Mutex<PolicyRuntime>,
    last_snapshot: Mutex<Option<Snapshot>>,
    stats: Mutex<PolicyStats>,
    fallback: Option<Fallback>,
}

impl PolicySlot {
    pub fn new(runtime: PolicyRuntime) -> Self {
        Self {
            runtime: Mutex::new(runtime),
            last_snapshot: Mutex::new(None),
            stats: Mutex::new(PolicyStats::default()),
            fallback: None,
        }
    }

    /// Falls back to the embedded default policy after `fallback.after` failures in a row.
    pub fn with_fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// Asks the policy in force for a decision, and keeps the books on the call.
    pub fn decide(&self, snapshot: &Snapshot) -> Result<PolicyDecision, PolicyError> {
        *lock(&self.last_snapshot) = Some(*snapshot);
        let mut runtime = lock(&self.runtime);
        let result = runtime.decide(snapshot);
        let failed_in_a_row = self.record_call(&result, runtime.last_call);
        if let Some(fallback) = &self.fallback
            && fallback.after > 0
            && failed_in_a_row >= fallback.after
        {
            self.fall_back(&mut runtime, fallback);
        }
        result
    }

    /// Counts a call; returns the failures in a row so far.
    fn record_call(
        &self,
        result: &Result<PolicyDecision, PolicyError>,
        took: Option<Duration>,
    ) -> u32 {
        let mut stats = lock(&self.stats);
        stats.calls += 1;
        stats.last_call_at_ms = Some(crate::clock::unix_ms());
        stats.last_call_micros = took.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        match result {
            Ok(_) => stats.consecutive_failures = 0,
            Err(error) => {
                stats.failures += 1;
                stats.consecutive_failures += 1;
                *stats
                    .failures_by_class
                    .entry(error.class().to_owned())
                    .or_default() += 1;
                stats.last_failure = Some(format!("{}: {error}", error.class()));
            }
        }
        stats.consecutive_failures
    }

    /// Swaps the embedded default policy in for a policy that keeps failing.
    fn fall_back(&self, runtime: &mut PolicyRuntime, fallback: &Fallback) {
        let from = runtime.policy().name.clone();
        if from == DEFAULT_POLICY_NAME {
            return;
        }
        let mut default = match fallback.loader.default_policy() {
            Ok(default) => default,
            Err(error) => {
                tracing::error!(
                    %error,
                    policy = %from,
                    "failed to start the embedded default policy: the failing policy stays"
                );
                return;
            }
        };
        default.set_state(runtime.state().to_vec());
        *runtime = default;
        let mut stats = lock(&self.stats);
        let why = stats.last_failure.clone().unwrap_or_default();
        let reason = format!("{from} failed {} calls in a row ({why})", fallback.after);
        tracing::warn!(
            policy = %from, to = DEFAULT_POLICY_NAME, failures = fallback.after,
            "policy keeps failing: falling back to the embedded default policy until a good \
             file is loaded"
        );
        stats.fallback = Some(reason);
        stats.consecutive_failures = 0;
    }

    /// Tries `candidate` on the last snapshot and swaps it in if it decides; the new policy
    /// receives the state of the one it replaces, as it is at the swap.
    pub fn replace(&self, mut candidate: PolicyRuntime, cached: bool) -> Result<(), PolicyError> {
        let snapshot = *lock(&self.last_snapshot);
        if let Some(snapshot) = snapshot {
            candidate.set_state(lock(&self.runtime).state().to_vec());
            candidate.decide(&snapshot)?;
        }
        let mut runtime = lock(&self.runtime);
        candidate.set_state(runtime.state().to_vec());
        tracing::info!(
            from = %runtime.policy().name, to = %candidate.policy().name,
            hash = %candidate.policy().hash, cached, "policy swapped in"
        );
        *runtime = candidate;
        drop(runtime);
        let mut stats = lock(&self.stats);
        stats.reloads += 1;
        stats.last_reload_error = None;
        stats.fallback = None;
        stats.consecutive_failures = 0;
        Ok(())
    }

    /// Notes a decision the host had to clamp.
    pub fn record_clamp(&self) {
        lock(&self.stats).clamped += 1;
    }

    /// Notes a reload that was refused.
    pub fn record_reload_error(&self, message: String) {
        lock(&self.stats).last_reload_error = Some(message);
    }

    pub fn stats(&self) -> PolicyStats {
        lock(&self.stats).clone()
    }

    /// The name and content hash of the policy in force.
    pub fn identity(&self) -> (String, String) {
        let runtime = lock(&self.runtime);
        (runtime.policy().name.clone(), runtime.policy().hash.clone())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
