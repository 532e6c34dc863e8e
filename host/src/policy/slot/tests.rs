//! The slot's books and its fallback, on real compiled fixture policies.

use super::*;
use crate::policy::bindings::autoscaler::policy::types::ParamValue;
use crate::policy::embedded::built_policy_path;

fn loader(params: Vec<Param>) -> PolicyLoader {
    PolicyLoader {
        engine: PolicyEngine::new().expect("engine"),
        params,
        limits: Limits::default(),
    }
}

fn integer(name: &str, value: i64) -> Param {
    Param {
        name: name.to_owned(),
        value: ParamValue::Integer(value),
    }
}

fn slot_with(fixture: &str, params: Vec<Param>, after: u32) -> PolicySlot {
    let loader = loader(params);
    let bytes = std::fs::read(built_policy_path(fixture)).expect("built fixture");
    let runtime = loader.runtime(fixture, &bytes).expect("loads");
    PolicySlot::new(runtime).with_fallback(Fallback { after, loader })
}

fn snapshot(workers: u32) -> Snapshot {
    Snapshot {
        workers,
        ..crate::policy::sample_snapshot(&crate::config::Config::default())
    }
}

#[test]
fn three_failures_in_a_row_fall_back_to_the_embedded_default() {
    let slot = slot_with("trap_always", vec![integer("good_ticks", 1)], 3);
    assert!(slot.decide(&snapshot(2)).is_ok());
    for _ in 0..3 {
        let error = slot.decide(&snapshot(4)).expect_err("traps");
        assert_eq!(error.class(), "trap");
    }
    let stats = slot.stats();
    assert_eq!(stats.failures, 3);
    assert_eq!(stats.failures_by_class.get("trap"), Some(&3));
    assert_eq!(stats.consecutive_failures, 0);
    assert!(
        stats
            .fallback
            .as_deref()
            .is_some_and(|f| f.starts_with("trap_always failed 3 calls in a row (trap:")),
        "{stats:?}"
    );
    assert_eq!(slot.identity().0, DEFAULT_POLICY_NAME);
    assert!(slot.decide(&snapshot(4)).is_ok(), "the default decides");
}

#[test]
fn a_success_between_failures_restarts_the_count() {
    let slot = slot_with("trap_every_third", vec![], 2);
    for _ in 0..4 {
        let _ = slot.decide(&snapshot(2));
    }
    let stats = slot.stats();
    assert_eq!((stats.calls, stats.failures), (4, 1));
    assert_eq!(stats.fallback, None);
    assert_eq!(slot.identity().0, "trap_every_third");
}

#[test]
fn a_fallback_of_zero_never_falls_back() {
    let slot = slot_with("trap_always", vec![], 0);
    for _ in 0..5 {
        assert!(slot.decide(&snapshot(2)).is_err());
    }
    assert_eq!(slot.stats().consecutive_failures, 5);
    assert_eq!(slot.identity().0, "trap_always");
}

#[test]
fn a_good_reload_ends_the_fallback() {
    let slot = slot_with("trap_always", vec![], 1);
    assert!(slot.decide(&snapshot(2)).is_err());
    assert!(slot.stats().fallback.is_some());
    let fixed = std::fs::read(built_policy_path("static")).expect("built static");
    let candidate = loader(vec![]).runtime("static", &fixed).expect("loads");
    slot.replace(candidate, false).expect("decides");
    let stats = slot.stats();
    assert_eq!((stats.fallback, stats.reloads), (None, 1));
    assert_eq!(slot.identity().0, "static");
}

#[test]
fn a_call_is_timed_and_stamped() {
    let slot = slot_with("static", vec![], 3);
    let before = crate::clock::unix_ms();
    slot.decide(&snapshot(2)).expect("decides");
    let stats = slot.stats();
    assert!(stats.last_call_at_ms.is_some_and(|at| at >= before));
    assert!(stats.last_call_micros.is_some_and(|us| us > 0));
}
