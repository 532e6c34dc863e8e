//! Why a replay cannot run: a policy, a trace, a setting or an output at fault.

use std::path::PathBuf;

use crate::policy::PolicyError;

/// The bundled policies by name, for messages and `--policy`.
pub use crate::policy::embedded::BUNDLED;

/// A replay's failure; each names the value at fault and, where known, what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(
        "unknown policy {name:?}: give a .wasm file or a bundled policy ({})",
        BUNDLED.join(", ")
    )]
    UnknownPolicy { name: String },
    #[error(
        "policy parameter {param:?} in {spec:?} is not key=value: write it like static:workers=50"
    )]
    BadParam { spec: String, param: String },
    #[error("failed to read policy \"{}\"", path.display())]
    ReadPolicy {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to load policy {name:?}")]
    LoadPolicy {
        name: String,
        #[source]
        source: PolicyError,
    },
    #[error("failed to read trace \"{}\"", path.display())]
    ReadTrace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("trace \"{}\"{}: {detail}", path.display(), at_line(*line))]
    Trace {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    #[error("{0}")]
    Settings(String),
    #[error("failed to write \"{}\"", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// ` line N` for an error on a line; nothing for one about the whole trace (line 0).
fn at_line(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" line {line}")
    }
}
