//! Replacing the policy while the host runs.
//!
//! [`watch`] follows a policy file: it watches the file's folder (editors save by renaming a
//! temp file over the old one, and configuration volumes flip a symlink, both of which a
//! watch on the file itself misses), waits for the writes to settle, and reloads only when
//! the bytes changed, or at once on SIGHUP, changed or not. A new policy must compile, match
//! the contract, accept its parameters and decide once on the last snapshot before it is
//! swapped in; otherwise the running policy stays and the error is reported.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::engine::{MAX_POLICY_BYTES, read_policy};

pub use super::slot::{PolicyLoader, PolicySlot};

/// What wakes the watcher.
enum Wake {
    Changed,
    Forced,
    Stop,
}

/// Watches `path` and reloads the policy in `slot` whenever its bytes change or the process
/// gets SIGHUP, until `stop`.
pub async fn watch(
    path: PathBuf,
    slot: Arc<PolicySlot>,
    loader: PolicyLoader,
    debounce: Duration,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let (events, mut changes) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reading the file (as the watcher itself does) is not a change.
        if !event.as_ref().is_ok_and(|e| e.kind.is_access()) {
            let _ = events.send(());
        }
    })?;
    let folder = watched_folder(&path);
    watcher.watch(&folder, RecursiveMode::NonRecursive)?;
    let mut target = None;
    follow_target(&mut watcher, &path, &folder, &mut target);
    tracing::info!(policy = %path.display(), "watching the policy file for changes");
    let mut hangups = signal(SignalKind::hangup())
        .inspect_err(|e| tracing::warn!(error = %e, "SIGHUP cannot force a policy reload"))
        .ok();
    // The bytes last tried, good or bad: the same bytes are not tried again unless asked.
    let mut tried = file_digest(&path);
    loop {
        let wake = tokio::select! {
            _ = stop.cancelled() => Wake::Stop,
            event = changes.recv() => if event.is_some() { Wake::Changed } else { Wake::Stop },
            _ = hangup(&mut hangups) => Wake::Forced,
        };
        let forced = match wake {
            Wake::Stop => return Ok(()),
            Wake::Changed => false,
            Wake::Forced => true,
        };
        if !forced {
            settle(&mut changes, debounce).await;
        }
        follow_target(&mut watcher, &path, &folder, &mut target);
        let Some(digest) = file_digest(&path) else {
            tracing::warn!(
                policy = %path.display(),
                "policy file is gone; the running policy stays"
            );
            continue;
        };
        if !forced && Some(digest) == tried {
            continue;
        }
        tried = Some(digest);
        reload(&path, &slot, &loader, forced).await;
    }
}

/// When `path` resolves (through symlinks) into another folder than `folder`, watches that one
/// too, so a write through the link is seen; called after every change, since a flipped link
/// moves the target.
fn follow_target(
    watcher: &mut notify::RecommendedWatcher,
    path: &Path,
    folder: &Path,
    current: &mut Option<PathBuf>,
) {
    // While the target is missing, its folder stays watched, so its re-creation is seen.
    let Ok(resolved) = std::fs::canonicalize(path) else {
        return;
    };
    let resolved = resolved.parent().map(Path::to_owned);
    let own = std::fs::canonicalize(folder).ok();
    let wanted = resolved.filter(|target| Some(target) != own.as_ref());
    if wanted == *current {
        return;
    }
    if let Some(old) = current.take() {
        let _ = watcher.unwatch(&old);
    }
    if let Some(target) = wanted {
        match watcher.watch(&target, RecursiveMode::NonRecursive) {
            Ok(()) => *current = Some(target),
            Err(e) => tracing::debug!(folder = %target.display(), error = %e, "cannot watch"),
        }
    }
}

/// The next SIGHUP; never, without a signal handler.
async fn hangup(hangups: &mut Option<Signal>) {
    if let Some(signal) = hangups
        && signal.recv().await.is_some()
    {
        return;
    }
    std::future::pending().await
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
pub async fn reload(
    path: &Path,
    slot: &Arc<PolicySlot>,
    loader: &PolicyLoader,
    forced: bool,
) -> bool {
    let policy = display_name(path);
    let (path, slot, loader) = (path.to_owned(), slot.clone(), loader.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        let result = load_and_swap(&path, &slot, &loader);
        if let Err(message) = &result {
            slot.record_reload_error(message.clone());
        }
        result
    })
    .await;
    let why = if forced { "requested" } else { "file changed" };
    match outcome {
        Ok(Ok(())) => true,
        Ok(Err(message)) => {
            tracing::error!(%policy, why, "{message}; the running policy stays");
            false
        }
        Err(e) => {
            tracing::error!(
                %policy,
                error = %e,
                "policy reload panicked; the running policy stays"
            );
            false
        }
    }
}

fn load_and_swap(path: &Path, slot: &PolicySlot, loader: &PolicyLoader) -> Result<(), String> {
    let failed =
        |e: &dyn std::fmt::Display| format!("failed to load policy \"{}\": {e}", path.display());
    let bytes = read_policy(path).map_err(|e| failed(&e))?;
    let cached = loader.engine.is_cached(&bytes);
    let candidate = loader
        .runtime(&display_name(path), &bytes)
        .map_err(|e| failed(&e))?;
    slot.replace(candidate, cached).map_err(|e| {
        format!(
            "policy \"{}\" failed its trial decision: {e}",
            path.display()
        )
    })
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

/// What identifies the file's content: the hash of its bytes, or of its size for a file too
/// large to be a policy (which the reload then reports without reading it whole).
fn file_digest(path: &Path) -> Option<[u8; 32]> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() {
        // Never read (a FIFO blocks, a device never ends); the reload reports it once.
        return Some(Sha256::digest(b"not a regular file").into());
    }
    let size = metadata.len();
    if size > MAX_POLICY_BYTES as u64 {
        return Some(Sha256::digest(size.to_le_bytes()).into());
    }
    std::fs::read(path).ok().map(|b| Sha256::digest(&b).into())
}
