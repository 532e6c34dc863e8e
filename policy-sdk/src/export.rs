//! [`export_policy!`](crate::export_policy): turning a [`Policy`] into the component's exports.
//!
//! The macro expands in the policy's crate to a hidden type that implements the generated `Guest`
//! trait by forwarding to a [`Slot`], which owns the configured policy. All the behaviour lives
//! in `Slot`, so it is tested natively; the macro is only glue.
//!
//! The glue ends in wit-bindgen's own export macro, which defines `unsafe extern "C"` entry
//! points. rustc does not report `unsafe_code` inside another crate's macro expansion (nor in
//! the `generate!` output in `bindings`), so a policy crate keeps `unsafe_code = "deny"` with no
//! exception.

use std::cell::RefCell;

use crate::{Decision, Param, Params, Policy, Snapshot};

/// Exports a [`Policy`](crate::Policy) type as the component's `configure` and `decide`.
///
/// Put it once in the policy's crate, next to the type:
///
/// ```
/// use autoscaler_policy_sdk::{export_policy, Decision, Params, Policy, Snapshot};
///
/// struct Hold;
///
/// impl Policy for Hold {
///     fn configure(_params: &mut Params) -> Result<Self, String> {
///         Ok(Hold)
///     }
///
///     fn decide(&self, snapshot: &Snapshot, _state: &[u8]) -> Decision {
///         Decision::hold(snapshot, "hold: always")
///     }
/// }
///
/// export_policy!(Hold);
/// # fn main() {}
/// ```
///
/// In the component (`target_arch = "wasm32"`):
/// - `configure` builds the policy, rejects unknown keys, and keeps the policy for the following
///   calls; a later `configure` replaces it, and a failed one returns its message as the error
///   (and leaves the previous policy in place);
/// - `decide` before any successful `configure` first configures with no parameters; if that
///   fails, it holds the active workers, keeps the state, and gives the error as the reason.
///
/// On other targets it only checks that the type implements `Policy`, so the crate builds and
/// tests natively.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __AutoscalerPolicy;

            ::std::thread_local! {
                static SLOT: $crate::__Slot<$policy> = const { $crate::__Slot::new() };
            }

            impl $crate::bindings::Guest for __AutoscalerPolicy {
                fn configure(
                    params: ::std::vec::Vec<$crate::Param>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    SLOT.with(|slot| slot.configure(params))
                }

                fn decide(
                    snapshot: $crate::Snapshot,
                    state: ::std::vec::Vec<u8>,
                ) -> $crate::Decision {
                    SLOT.with(|slot| slot.decide(&snapshot, &state))
                }
            }

            $crate::bindings::export! { __AutoscalerPolicy with_types_in $crate::bindings }
        };

        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            fn assert_policy<P: $crate::Policy>() {}
            let _ = assert_policy::<$policy>;
        };
    };
}

/// The configured policy of one component instance.
///
/// Used by [`export_policy!`](crate::export_policy).
#[doc(hidden)]
#[derive(Debug)]
pub struct Slot<P> {
    policy: RefCell<Option<P>>,
}

impl<P> Default for Slot<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> Slot<P> {
    /// An empty slot: no policy configured yet.
    pub const fn new() -> Self {
        Self {
            policy: RefCell::new(None),
        }
    }
}

impl<P: Policy> Slot<P> {
    /// Builds the policy from `params` and keeps it; on error the previous policy stays.
    pub fn configure(&self, params: Vec<Param>) -> Result<(), String> {
        let policy = crate::build::<P>(Params::new(params))?;
        self.policy.replace(Some(policy));
        Ok(())
    }

    /// Asks the policy for a decision, configuring it with no parameters first if need be.
    pub fn decide(&self, snapshot: &Snapshot, state: &[u8]) -> Decision {
        if self.policy.borrow().is_none()
            && let Err(err) = self.configure(Vec::new())
        {
            let reason = format!("hold: policy not configured: {err}");
            return Decision::hold(snapshot, reason).with_state(state);
        }
        match &*self.policy.borrow() {
            Some(policy) => policy.decide(snapshot, state),
            None => Decision::hold(snapshot, "hold: policy not configured").with_state(state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ParamValue, testing};

    /// Asks for `workers`, which must be given.
    #[derive(Debug)]
    struct Needy {
        workers: u32,
    }

    impl Policy for Needy {
        fn configure(params: &mut Params) -> Result<Self, String> {
            match params.u32("workers", 0)? {
                0 => Err("parameter \"workers\" is required".to_string()),
                workers => Ok(Self { workers }),
            }
        }

        fn decide(&self, _snapshot: &Snapshot, state: &[u8]) -> Decision {
            Decision::new(self.workers, "fixed").with_state(state)
        }
    }

    fn workers(n: i64) -> Vec<Param> {
        vec![Param {
            name: "workers".to_string(),
            value: ParamValue::Integer(n),
        }]
    }

    #[test]
    fn decide_uses_the_configured_policy() {
        let slot = Slot::<Needy>::new();
        assert_eq!(slot.configure(workers(7)), Ok(()));
        assert_eq!(slot.decide(&testing::quiet(), b"s").target, 7);
    }

    #[test]
    fn a_later_configure_replaces_the_policy() {
        let slot = Slot::<Needy>::new();
        assert_eq!(slot.configure(workers(7)), Ok(()));
        assert_eq!(slot.configure(workers(3)), Ok(()));
        assert_eq!(slot.decide(&testing::quiet(), &[]).target, 3);
    }

    #[test]
    fn a_failed_configure_returns_the_message_and_keeps_the_old_policy() {
        let slot = Slot::<Needy>::new();
        assert_eq!(slot.configure(workers(7)), Ok(()));
        assert_eq!(
            slot.configure(workers(0)),
            Err("parameter \"workers\" is required".to_string())
        );
        assert_eq!(slot.decide(&testing::quiet(), &[]).target, 7);
    }

    #[test]
    fn configure_rejects_unknown_keys() {
        let slot = Slot::<Needy>::new();
        let mut params = workers(2);
        params.push(Param {
            name: "wrokers".to_string(),
            value: ParamValue::Integer(2),
        });
        assert_eq!(
            slot.configure(params),
            Err("unknown parameter \"wrokers\": this policy accepts workers".to_string())
        );
    }

    #[test]
    fn decide_without_configure_holds_and_keeps_the_state_when_defaults_fail() {
        let slot = Slot::<Needy>::new();
        let snapshot = testing::quiet();
        let decision = slot.decide(&snapshot, b"kept");
        assert_eq!(decision.target, snapshot.active_workers());
        assert_eq!(decision.state, b"kept");
        assert_eq!(
            decision.reason,
            "hold: policy not configured: parameter \"workers\" is required"
        );
    }
}
