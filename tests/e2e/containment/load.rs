//! Files that never become the running policy: a panic in `configure`, another contract
//! version, a missing export, and hand-made files (a core module, empty, truncated, random
//! bytes, 50 MB). Each is renamed over the running policy's file; the reload is refused with
//! a message that says what is wrong, and the running policy keeps deciding.

use rand::{RngCore, SeedableRng};

use autoscaler::policy::embedded::built_policy_path;

use super::harness::{Host, logs_of, messages};

/// Runs the static policy, saves `bytes` over it, and checks that the reload is refused with
/// an error containing `expected` while the static policy keeps deciding.
async fn refused(name: &str, bytes: &[u8], expected: &str) {
    let mut host = Host::start("static", name, &[("workers", 5.into())], |_| {}).await;
    let before = host.ticks(2).await;
    let hash = host.status().await["policy"]["hash"].clone();
    host.save(bytes);
    let mut after = Vec::new();
    for _ in 0..60 {
        after.extend(host.ticks(1).await);
        if host.status().await["policy"]["last_reload_error"].is_string() {
            break;
        }
    }
    after.extend(host.ticks(2).await);
    let status = host.status().await;
    assert!(host.running(), "a bad file never stops the host");
    host.finish().await;

    let error = status["policy"]["last_reload_error"]
        .as_str()
        .expect("the refusal is in the status");
    assert!(error.contains(expected), "{error}");
    assert_eq!(status["policy"]["hash"], hash, "the running policy stays");
    assert_eq!(status["policy"]["reloads"], 0);
    for report in before.iter().chain(&after) {
        assert_eq!(report.target, 5, "{report:?}");
        assert_eq!(report.reason, "static: 5 workers");
    }
    let ticks: Vec<u64> = before.iter().chain(&after).map(|r| r.tick).collect();
    assert_eq!(ticks, (1..=ticks.len() as u64).collect::<Vec<_>>());
    let logs = logs_of(&format!("{name}.wasm"));
    assert_eq!(
        messages(&logs, "failed to load policy").len(),
        1,
        "{logs:#?}"
    );
}

fn built(name: &str) -> Vec<u8> {
    std::fs::read(built_policy_path(name)).expect("built policy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_configure_is_refused_as_a_trap() {
    let expected = "it trapped: wasm trap: wasm `unreachable` instruction executed";
    refused("configure-panic", &built("configure_panic"), expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_contract_version_is_refused_naming_both() {
    let expected = "built against contract autoscaler:policy@0.2.0, but this host expects \
                    autoscaler:policy@0.1.0";
    refused("newer-contract", &built("newer_contract"), expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_without_decide_is_refused_naming_the_export() {
    let expected = "it exports no `decide` function (exports found: choose, configure)";
    refused("no-decide", &built("no_decide"), expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_core_module_is_refused_with_how_to_build_a_component() {
    let module = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    let expected = "it is a core WebAssembly module, not a component: build it with \
                    `cargo build --target wasm32-wasip2`";
    refused("core-module", &module, expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_file_is_refused() {
    refused(
        "empty",
        b"",
        "not a valid policy component: the file is empty",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_component_is_refused() {
    let whole = built("static");
    let half = &whole[..whole.len() / 2];
    refused("truncated", half, "not a valid policy component: ").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_are_refused() {
    let mut bytes = vec![0u8; 64 * 1024];
    rand::rngs::StdRng::seed_from_u64(3).fill_bytes(&mut bytes);
    refused(
        "random",
        &bytes,
        "not a WebAssembly component (wrong magic bytes)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_file_is_refused_unread() {
    let mut bytes = vec![0u8; 50 * 1024 * 1024];
    bytes[..8].copy_from_slice(&[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]);
    refused(
        "fifty-mb",
        &bytes,
        "the file is larger than the 33554432 bytes",
    )
    .await;
}
