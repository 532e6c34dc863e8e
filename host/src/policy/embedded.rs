//! The policies built from `policies/` at compile time.
//!
//! The default threshold policy is embedded, so `autoscaler run` works with no policy file and
//! the host can fall back to it. The other built policies are found in the build's output
//! folder, which tests and examples use as fixtures.

use std::path::PathBuf;

/// The default threshold policy's component bytes.
pub const DEFAULT_POLICY: &[u8] =
    include_bytes!(concat!(env!("AUTOSCALER_POLICY_DIR"), "/threshold.wasm"));

/// The name logs and the status give the embedded policy.
pub const DEFAULT_POLICY_NAME: &str = "threshold (embedded)";

/// Where the build put the compiled policy `name` (e.g. `static`), as `name.wasm`.
pub fn built_policy_path(name: &str) -> PathBuf {
    PathBuf::from(env!("AUTOSCALER_POLICY_DIR")).join(format!("{name}.wasm"))
}
