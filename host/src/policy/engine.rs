//! Compiling and checking policy components.
//!
//! One wasmtime `Engine` serves every policy the host loads: epoch interruption on (one ticker
//! thread for the engine), a bounded wasm stack, and a cache of compiled components keyed by
//! the SHA-256 of their bytes, so reloading bytes already seen skips compilation. Loading
//! checks the component against the contract before anything runs, and says what is wrong in
//! words a policy author can act on.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, types::ComponentItem};
use wasmtime::{Config, Engine};

use super::bindings::{Policy, PolicyPre};
use super::guest::GuestState;
use super::limits::{EPOCH_TICK, Limits};
use super::{CONTRACT_PACKAGE, CONTRACT_VERSION, PolicyError};

/// Magic and layer bytes of a WebAssembly component and of a core module.
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const MODULE_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
/// The WASI clock interface as wasmtime-wasi defines it (guests built against any 0.2.x
/// version are linked to it).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";
/// Largest policy file the host will compile.
pub const MAX_POLICY_BYTES: usize = 32 * 1024 * 1024;

/// A policy that compiled and matches the contract, ready to instantiate.
#[derive(Clone)]
pub struct LoadedPolicy {
    /// What logs and the status call it: the file name, or `threshold (embedded)`.
    pub name: String,
    /// The first 12 hex digits of the SHA-256 of its bytes.
    pub hash: String,
    /// The component's exports and imports, sorted by name.
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    /// The contract version named by its imports; `None` if it imports no contract interface.
    pub contract: Option<String>,
    pub pre: PolicyPre<GuestState>,
}

impl std::fmt::Debug for LoadedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPolicy")
            .field("name", &self.name)
            .field("hash", &self.hash)
            .finish()
    }
}

/// The host's one wasmtime engine, its linker and its compile cache.
#[derive(Clone)]
pub struct PolicyEngine {
    engine: Engine,
    linker: Arc<Linker<GuestState>>,
    cache: Arc<Mutex<HashMap<[u8; 32], Component>>>,
    compiles: Arc<AtomicU64>,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine").finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// An engine with the default limits' wasm stack.
    pub fn new() -> anyhow::Result<Self> {
        Self::with_stack(Limits::default().stack_bytes)
    }

    /// Builds the engine with `stack_bytes` of wasm stack per call and starts its epoch
    /// ticker, which stops when the engine is dropped.
    pub fn with_stack(stack_bytes: usize) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.max_wasm_stack(stack_bytes);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        refuse_waiting(&mut linker)?;
        Policy::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)?;
        start_epoch_ticker(engine.weak());
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache: Arc::default(),
            compiles: Arc::default(),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles (or takes from the cache) and checks a policy.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<LoadedPolicy, PolicyError> {
        check_header(bytes)?;
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let component = self.compile(digest, bytes)?;
        check_exports(&self.engine, &component)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| incompatible_imports(&self.engine, &component, e))?;
        let pre = PolicyPre::new(instance_pre).map_err(|e| PolicyError::Incompatible {
            detail: format!("{e:#}"),
        })?;
        let ty = component.component_type();
        let imports = sorted(ty.imports(&self.engine).map(|(n, _)| n));
        Ok(LoadedPolicy {
            name: name.to_owned(),
            hash: hex::encode(&digest[..6]),
            exports: sorted(ty.exports(&self.engine).map(|(n, _)| n)),
            contract: imports
                .iter()
                .find_map(|n| contract_version(n))
                .map(str::to_owned),
            imports,
            pre,
        })
    }

    /// How many components this engine has compiled (cache hits excluded).
    pub fn compiles(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
    }

    /// Whether these bytes are already compiled.
    pub fn is_cached(&self, bytes: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        self.lock_cache().contains_key(&digest)
    }

    fn compile(&self, digest: [u8; 32], bytes: &[u8]) -> Result<Component, PolicyError> {
        if let Some(component) = self.lock_cache().get(&digest) {
            return Ok(component.clone());
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| PolicyError::Invalid {
            detail: format!("{e:#}"),
        })?;
        self.compiles.fetch_add(1, Ordering::Relaxed);
        self.lock_cache().insert(digest, component.clone());
        Ok(component)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Component>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Makes the clock subscriptions behind `sleep` and timed waits trap. A wait happens inside a
/// WASI call, out of the epoch deadline's reach, so an hour's sleep would hold the tick for an
/// hour; a policy has nothing to wait for.
fn refuse_waiting(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    for name in ["subscribe-duration", "subscribe-instant"] {
        clock.func_new(name, move |_, _, _, _| {
            Err(wasmtime::Error::msg(format!(
                "it tried to wait ({name}): a policy may not sleep"
            )))
        })?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

fn start_epoch_ticker(engine: wasmtime::EngineWeak) {
    let spawned = std::thread::Builder::new()
        .name("policy-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "failed to start the policy deadline ticker");
    }
}

/// Reads a policy file, refusing one too large to be a policy before reading it whole.
pub fn read_policy(path: &Path) -> Result<Vec<u8>, ReadError> {
    // A FIFO would block the open, a device would never end: only regular files are read.
    if !std::fs::metadata(path)?.is_file() {
        return Err(ReadError::NotAFile);
    }
    let file = std::fs::File::open(path)?;
    let limit = MAX_POLICY_BYTES as u64;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

/// Why a policy file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The cause is in the message (not a source), so every way of printing shows it once.
    #[error("failed to read the file: {0}")]
    Io(std::io::Error),
    #[error("the file is larger than the {MAX_POLICY_BYTES} bytes a policy may have")]
    TooLarge,
    #[error("it is not a regular file (a folder, a FIFO or a device); point it at a .wasm file")]
    NotAFile,
}

impl From<std::io::Error> for ReadError {
    fn from(error: std::io::Error) -> Self {
        ReadError::Io(error)
    }
}

/// The contract version in an import name such as `autoscaler:policy/log@0.1.0`.
fn contract_version(import: &str) -> Option<&str> {
    let rest = import.strip_prefix(CONTRACT_PACKAGE)?.strip_prefix('/')?;
    Some(rest.split_once('@').map_or("none", |(_, version)| version))
}

/// Rejects files that cannot be a component before the compiler sees them.
fn check_header(bytes: &[u8]) -> Result<(), PolicyError> {
    if bytes.is_empty() {
        return Err(PolicyError::Invalid {
            detail: "the file is empty".into(),
        });
    }
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::Invalid {
            detail: format!(
                "the file is {} bytes, more than the {MAX_POLICY_BYTES} a policy may have",
                bytes.len()
            ),
        });
    }
    if bytes.starts_with(&MODULE_HEADER) {
        return Err(PolicyError::CoreModule);
    }
    if !bytes.starts_with(&COMPONENT_HEADER) {
        return Err(PolicyError::Invalid {
            detail: "the file is not a WebAssembly component (wrong magic bytes)".into(),
        });
    }
    Ok(())
}

/// Names a missing or mistyped export before wasmtime's generic type check does.
fn check_exports(engine: &Engine, component: &Component) -> Result<(), PolicyError> {
    let ty = component.component_type();
    let exports: HashMap<String, ComponentItem> = ty
        .exports(engine)
        .map(|(n, e)| (n.to_owned(), e.ty))
        .collect();
    for name in ["decide", "configure"] {
        match exports.get(name) {
            Some(ComponentItem::ComponentFunc(_)) => {}
            Some(_) => {
                return Err(PolicyError::Incompatible {
                    detail: format!("its export `{name}` is not a function"),
                });
            }
            None => {
                return Err(PolicyError::MissingExport {
                    name: name.to_owned(),
                    found: sorted(exports.keys()),
                });
            }
        }
    }
    Ok(())
}

/// Explains an import the host cannot satisfy, naming a contract version mismatch as such.
fn incompatible_imports(engine: &Engine, component: &Component, e: wasmtime::Error) -> PolicyError {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        if let Some(version) = contract_version(name)
            && version != CONTRACT_VERSION
        {
            return PolicyError::ContractVersion {
                found: version.to_owned(),
            };
        }
    }
    let imports = sorted(ty.imports(engine).map(|(n, _)| n));
    PolicyError::Incompatible {
        detail: format!(
            "the host cannot satisfy its imports ({}): {e:#}",
            imports.join(", ")
        ),
    }
}

fn sorted<'a>(names: impl Iterator<Item = impl Into<String> + 'a>) -> Vec<String> {
    let mut names: Vec<String> = names.map(Into::into).collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::embedded::{DEFAULT_POLICY, built_policy_path};

    #[test]
    fn loading_the_same_bytes_again_does_not_compile_again() {
        let engine = PolicyEngine::new().expect("engine");
        assert!(!engine.is_cached(DEFAULT_POLICY));
        engine.load("first", DEFAULT_POLICY).expect("loads");
        engine.load("second", DEFAULT_POLICY).expect("loads again");
        assert!(engine.is_cached(DEFAULT_POLICY));
        assert_eq!(engine.compiles(), 1);
    }

    #[test]
    fn a_loaded_policy_names_its_contract_and_exports() {
        let engine = PolicyEngine::new().expect("engine");
        let policy = engine.load("threshold", DEFAULT_POLICY).expect("loads");
        assert_eq!(policy.contract.as_deref(), Some(CONTRACT_VERSION));
        assert_eq!(policy.exports, ["configure", "decide"]);
    }

    #[test]
    fn a_newer_contract_is_named_with_both_versions() {
        let engine = PolicyEngine::new().expect("engine");
        let bytes = std::fs::read(built_policy_path("newer_contract")).expect("fixture");
        let error = engine.load("newer", &bytes).expect_err("refused");
        assert_eq!(
            error,
            PolicyError::ContractVersion {
                found: "0.2.0".into()
            }
        );
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_unread() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("big.wasm");
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(MAX_POLICY_BYTES as u64 + 1).expect("grow");
        assert!(matches!(read_policy(&path), Err(ReadError::TooLarge)));
    }
}
