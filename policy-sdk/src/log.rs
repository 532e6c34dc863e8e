//! Writing to the host's log from a policy.
//!
//! In the component these call the host's `log` import; the host tags each line with the
//! policy's name, truncates long lines and rate-limits each instance, so log what explains a
//! decision, not every tick. Built natively (unit tests), they write to stderr instead.
//!
//! ```
//! use autoscaler_policy_sdk::log;
//!
//! log::info("configured: queue_up = 20");
//! log::warn(&format!("ignoring a state blob of {} bytes", 3));
//! ```

use crate::LogLevel;

/// Writes one line at `level`.
pub fn log(level: LogLevel, message: &str) {
    write(level, message);
}

/// Writes one line at debug level.
pub fn debug(message: &str) {
    log(LogLevel::Debug, message);
}

/// Writes one line at info level.
pub fn info(message: &str) {
    log(LogLevel::Info, message);
}

/// Writes one line at warn level.
pub fn warn(message: &str) {
    log(LogLevel::Warn, message);
}

/// Writes one line at error level.
pub fn error(message: &str) {
    log(LogLevel::Error, message);
}

#[cfg(target_arch = "wasm32")]
fn write(level: LogLevel, message: &str) {
    crate::bindings::autoscaler::policy::log::log(level, message);
}

#[cfg(not(target_arch = "wasm32"))]
fn write(level: LogLevel, message: &str) {
    eprintln!("policy {}: {message}", level_name(level));
}

#[cfg(not(target_arch = "wasm32"))]
fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}
