//! The running policy, and replacing it while the host runs.
//!
//! [`PolicySlot`] holds the runtime the scaler calls and the last snapshot it was called with.
//! [`watch`] follows a policy file: it watches the file's folder (editors save by renaming a
//! temp file over the old one, and configuration volumes flip a symlink, both of which a
//! watch on the file itself misses), waits for the writes to settle, and reloads only when
//! the bytes changed. A new policy must compile, match the contract, accept its parameters
//! and decide once on the last snapshot before it is swapped in; otherwise the running
//! policy stays and the error is reported.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::bindings::autoscaler::policy::types::{Param, Snapshot};
use super::{Limits, PolicyEngine, PolicyError, PolicyRuntime};

/// What the status shows about reloads.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    pub reloads: u64,
    pub last_error: Option<String>,
}

/// The policy in force, shared by the scaler and the reloader.
#[derive(Debug)]
pub struct PolicySlot {
    runtime: Mutex<PolicyRuntime>,
    last_snapshot: Mutex<Option<Snapshot>>,
    status: Mutex<ReloadStatus>,
}

/// Everything needed to build a runtime from new bytes.
#[derive(Debug, Clone)]
pub struct PolicyLoader {
    pub engine: PolicyEngine,
    pub params: Vec<Param>,
    pub limits: Limits,
}

impl PolicyLoader {
    /// Compiles, checks and configures a policy.
    pub fn runtime(&self, name: &str, bytes: &[u8]) -> Result<PolicyRuntime, PolicyError> {
        let policy = self.engine.load(name, bytes)?;
        PolicyRuntime::new(
            self.engine.clone(),
            policy,
            self.params.clone(),
            self.limits.clone(),
        )
    }
}

impl PolicySlot {
    pub fn new(runtime: PolicyRuntime) -> Self {
        Self {
            runtime: Mutex::new(runtime),
            last_snapshot: Mutex::new(None),
            status: Mutex::new(ReloadStatus::default()),
        }
    }

    /// Runs `f` on the runtime in force (and records the snapshot it decides on).
    pub fn with_runtime<R>(&self, f: impl FnOnce(&mut PolicyRuntime) -> R) -> R {
        f(&mut lock(&self.runtime))
    }

    pub fn remember_snapshot(&self, snapshot: &Snapshot) {
        *lock(&self.last_snapshot) = Some(*snapshot);
    }

    pub fn status(&self) -> ReloadStatus {
        lock(&self.status).clone()
    }

    /// The name and content hash of the policy in force.
    pub fn identity(&self) -> (String, String) {
        let runtime = lock(&self.runtime);
        (runtime.policy().name.clone(), runtime.policy().hash.clone())
    }

    /// Tries `candidate` on the last snapshot and swaps it in if it decides; the new policy
    /// receives the state of the one it replaces.
    pub fn replace(&self, mut candidate: PolicyRuntime) -> Result<(), PolicyError> {
        let snapshot = *lock(&self.last_snapshot);
        let state = lock(&self.runtime).state().to_vec();
        if let Some(snapshot) = snapshot {
            candidate.set_state(state.clone());
            candidate.decide(&snapshot)?;
        }
        candidate.set_state(state);
        let mut runtime = lock(&self.runtime);
        tracing::info!(
            from = %runtime.policy().name, to = %candidate.policy().name,
            hash = %candidate.policy().hash, "policy swapped in"
        );
        *runtime = candidate;
        drop(runtime);
        let mut status = lock(&self.status);
        status.reloads += 1;
        status.last_error = None;
        Ok(())
    }

    fn record_error(&self, message: String) {
        lock(&self.status).last_error = Some(message);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Watches `path` and reloads the policy in `slot` whenever its bytes change, until `stop`.
pub async fn watch(
    path: PathBuf,
    slot: Arc<PolicySlot>,
    loader: PolicyLoader,
    debounce: Duration,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let (events, mut changes) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = events.send(event);
    })?;
    let folder = watched_folder(&path);
    watcher.watch(&folder, RecursiveMode::NonRecursive)?;
    tracing::info!(policy = %path.display(), "watching the policy file for changes");
    let mut current_digest = file_digest(&path);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            event = changes.recv() => if event.is_none() { return Ok(()) },
        }
        settle(&mut changes, debounce).await;
        let Some(digest) = file_digest(&path) else {
            tracing::warn!(policy = %path.display(), "policy file is gone; the running policy stays");
            continue;
        };
        if Some(digest) == current_digest {
            continue;
        }
        if reload(&path, &slot, &loader).await {
            current_digest = Some(digest);
        }
    }
}

/// Waits until no change has arrived for `debounce`.
async fn settle<T>(changes: &mut mpsc::UnboundedReceiver<T>, debounce: Duration) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(debounce) => return,
            more = changes.recv() => if more.is_none() { return },
        }
    }
}

/// Loads the file and swaps it in; reports and returns false on any failure.
async fn reload(path: &Path, slot: &Arc<PolicySlot>, loader: &PolicyLoader) -> bool {
    let (path_owned, slot, loader) = (path.to_owned(), slot.clone(), loader.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&path_owned)
            .map_err(|e| format!("failed to read policy \"{}\": {e}", path_owned.display()))?;
        let name = display_name(&path_owned);
        let candidate = loader.runtime(&name, &bytes).map_err(|e| {
            let message = format!("failed to load policy \"{}\": {e}", path_owned.display());
            slot.record_error(message.clone());
            message
        })?;
        slot.replace(candidate).map_err(|e| {
            let message = format!(
                "policy \"{}\" failed its trial decision: {e}",
                path_owned.display()
            );
            slot.record_error(message.clone());
            message
        })
    })
    .await;
    match outcome {
        Ok(Ok(())) => true,
        Ok(Err(message)) => {
            tracing::error!("{message}; the running policy stays");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "policy reload panicked; the running policy stays");
            false
        }
    }
}

/// The folder to watch: the file's own folder (or the current one for a bare name).
fn watched_folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The policy's name in logs: its file name.
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn file_digest(path: &Path) -> Option<[u8; 32]> {
    use sha2::Digest;
    std::fs::read(path)
        .ok()
        .map(|b| sha2::Sha256::digest(&b).into())
}
