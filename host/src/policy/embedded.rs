//! The policies built from `policies/` at compile time.
//!
//! The default threshold policy is embedded, so `autoscaler run` works with no policy file and
//! the host can fall back to it; the reference policies are embedded too, for `replay` and
//! `policy export`. The build's output folder also holds the test fixtures.

use std::path::PathBuf;

/// The default threshold policy's component bytes.
pub const DEFAULT_POLICY: &[u8] =
    include_bytes!(concat!(env!("AUTOSCALER_POLICY_DIR"), "/threshold.wasm"));

/// The name logs and the status give the embedded policy.
pub const DEFAULT_POLICY_NAME: &str = "threshold (embedded)";

/// The bundled policies' names, the default first.
pub const BUNDLED: [&str; 4] = ["threshold", "static", "fixed-step", "target-tracking"];

const STATIC: &[u8] = include_bytes!(concat!(env!("AUTOSCALER_POLICY_DIR"), "/static.wasm"));
const FIXED_STEP: &[u8] =
    include_bytes!(concat!(env!("AUTOSCALER_POLICY_DIR"), "/fixed_step.wasm"));
const TARGET_TRACKING: &[u8] = include_bytes!(concat!(
    env!("AUTOSCALER_POLICY_DIR"),
    "/target_tracking.wasm"
));

/// The component bytes of the bundled policy `name`.
pub fn bundled(name: &str) -> Option<&'static [u8]> {
    match name {
        "threshold" => Some(DEFAULT_POLICY),
        "static" => Some(STATIC),
        "fixed-step" => Some(FIXED_STEP),
        "target-tracking" => Some(TARGET_TRACKING),
        _ => None,
    }
}

/// Where the build put the compiled policy `name` (e.g. `static`), as `name.wasm`.
pub fn built_policy_path(name: &str) -> PathBuf {
    PathBuf::from(env!("AUTOSCALER_POLICY_DIR")).join(format!("{name}.wasm"))
}
