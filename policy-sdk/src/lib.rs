//! Write an autoscaler scaling policy as a plain Rust struct.
//!
//! A policy is a WebAssembly component (`wasm32-wasip2`) that the autoscaler host calls every
//! tick. This crate hides the component plumbing generated from `wit/policy.wit`: a policy is a
//! type that implements [`Policy`], and one [`export_policy!`] line turns it into the component's
//! exports.
//!
//! - [`Policy::configure`] builds the policy from the host's `[policy.params]` table, read
//!   through [`Params`]. Keys the policy did not ask for are rejected for it.
//! - [`Policy::decide`] turns a [`Snapshot`] of the pool and the queue into a [`Decision`]: a
//!   target worker count, a short reason the host logs, and the policy's state for the next tick.
//! - State lives in the host, not in the policy: the instance can be rebuilt at any time (after a
//!   trap, or a reload). [`PolicyState`] gives a small fixed encoding that decodes a foreign or
//!   empty blob to the default.
//! - [`log`] writes to the host's log; [`testing`] runs a policy natively in unit tests.
//!
//! # Example
//!
//! A policy that keeps one worker per ten queued tasks:
//!
//! ```
//! use autoscaler_policy_sdk::{export_policy, Decision, Params, Policy, Snapshot};
//!
//! struct PerTen {
//!     tasks_per_worker: u32,
//! }
//!
//! impl Policy for PerTen {
//!     fn configure(params: &mut Params) -> Result<Self, String> {
//!         let tasks_per_worker = params.u32("tasks_per_worker", 10)?;
//!         if tasks_per_worker == 0 {
//!             return Err("parameter \"tasks_per_worker\" must be at least 1".into());
//!         }
//!         Ok(Self { tasks_per_worker })
//!     }
//!
//!     fn decide(&self, snapshot: &Snapshot, _state: &[u8]) -> Decision {
//!         let target = snapshot.busy + snapshot.queue_depth.div_ceil(self.tasks_per_worker);
//!         Decision::new(target, format!("queue {}: {target} workers", snapshot.queue_depth))
//!     }
//! }
//!
//! export_policy!(PerTen);
//! # fn main() {}
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` from a `cdylib` crate; the
//! `.wasm` file is the component the host loads. The same crate builds natively for `cargo test`,
//! where [`export_policy!`] expands to nothing.

mod decision;
mod export;
pub mod log;
mod params;
mod state;
pub mod testing;

/// The code `wit-bindgen` generates from `wit/policy.wit`.
///
/// Not part of the SDK's API: use the re-exported types and [`export_policy!`] instead.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "policy",
        pub_export_macro: true,
        default_bindings_module: "autoscaler_policy_sdk::bindings",
        additional_derives: [PartialEq],
    });
}

pub use bindings::autoscaler::policy::types::{
    Decision, ErrorRates, LogLevel, Param, ParamValue, Snapshot,
};
pub use params::Params;
pub use state::{PolicyState, StateReader, StateWriter};

#[doc(hidden)]
pub use export::Slot as __Slot;

/// A scaling policy: built once from its parameters, then asked for a decision every tick.
///
/// The host calls [`configure`](Policy::configure) on every fresh instance, then
/// [`decide`](Policy::decide) once per tick. An instance may be thrown away and rebuilt between
/// any two ticks (after a trap, or when the policy file is reloaded), so anything a policy must
/// remember from one tick to the next goes into [`Decision::state`], never into `self`: that is
/// why `decide` takes `&self`.
///
/// # Example
///
/// ```
/// use autoscaler_policy_sdk::{Decision, Params, Policy, Snapshot};
///
/// /// Keeps a fixed number of workers.
/// struct Fixed {
///     workers: u32,
/// }
///
/// impl Policy for Fixed {
///     fn configure(params: &mut Params) -> Result<Self, String> {
///         Ok(Self { workers: params.u32("workers", 4)? })
///     }
///
///     fn decide(&self, _snapshot: &Snapshot, _state: &[u8]) -> Decision {
///         Decision::new(self.workers, format!("fixed at {}", self.workers))
///     }
/// }
/// ```
pub trait Policy: Sized + 'static {
    /// Builds the policy from the host's `[policy.params]` table.
    ///
    /// Read every parameter through `params`, each with its default; the SDK then rejects any
    /// key the policy did not read (see [`Params::finish`]), so a typo in the host's config is an
    /// error rather than a silently ignored setting. Return `Err` with a message naming the key
    /// to reject a value: the host refuses to load the policy and shows the message.
    fn configure(params: &mut Params) -> Result<Self, String>;

    /// Decides the worker count for one tick.
    ///
    /// `state` is the [`Decision::state`] of the previous tick: empty on the first tick, and
    /// possibly written by a different policy after a reload. Decode it leniently (see
    /// [`PolicyState::decode`]). The host clamps the target to
    /// `[snapshot.min_workers, snapshot.max_workers]`.
    fn decide(&self, snapshot: &Snapshot, state: &[u8]) -> Decision;
}

/// Builds a policy the way the host does: `configure`, then reject the keys it did not read.
fn build<P: Policy>(mut params: Params) -> Result<P, String> {
    let policy = P::configure(&mut params)?;
    params.finish()?;
    Ok(policy)
}
