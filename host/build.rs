//! Builds the policies under `policies/` for `wasm32-wasip2`, so the default one can be
//! embedded in the binary and the others can serve as test fixtures and examples; then the
//! hostile fixture policies under `tests/fixtures/policies/` (a workspace of their own).
//!
//! The inner cargo uses its own target directory: sharing the outer build's would deadlock on
//! its lock. Both inner builds share that directory, so the fixtures reuse the SDK already
//! compiled for the policies. The output folder is handed to the crate as
//! `AUTOSCALER_POLICY_DIR`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest crates built here; the first is the default policy embedded in the host.
const POLICIES: &[&str] = &["threshold", "static", "fixed-step", "target-tracking"];

/// The workspace of hostile fixture policies, relative to the workspace root.
const FIXTURES: &str = "tests/fixtures/policies";
/// The fixture crates, built in one invocation with `--workspace`; checked by file name.
const FIXTURE_FILES: &[&str] = &[
    "spin",
    "sleeper",
    "deep_recursion",
    "memory_bomb",
    "trap_always",
    "trap_every_third",
    "configure_panic",
    "wild_target",
    "huge_reason",
    "huge_state",
    "log_flood",
    "sandbox_escape",
    "newer_contract",
    "no_decide",
];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ sits in the workspace root");
    for watched in ["policies", "policy-sdk", "wit", "Cargo.lock", FIXTURES] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let target_dir = out_dir.join("guest-target");
    let policies = POLICIES.iter().flat_map(|name| ["-p", name]);
    guest_build(root, &target_dir, policies, "the policies");
    guest_build(
        &root.join(FIXTURES),
        &target_dir,
        ["--workspace"],
        "the fixture policies",
    );
    let built = target_dir.join("wasm32-wasip2").join("release");
    for name in POLICIES.iter().chain(FIXTURE_FILES) {
        // Cargo names a crate's output with underscores for its hyphens.
        let wasm = built.join(format!("{}.wasm", name.replace('-', "_")));
        assert!(
            wasm.exists(),
            "the policy build did not produce {}",
            wasm.display()
        );
    }
    println!("cargo:rustc-env=AUTOSCALER_POLICY_DIR={}", built.display());
}

/// Runs `cargo build --release --target wasm32-wasip2` in `dir` with `selection`.
fn guest_build<'a>(
    dir: &Path,
    target_dir: &Path,
    selection: impl IntoIterator<Item = &'a str>,
    what: &str,
) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(target_dir)
        .args(selection);
    // Policies ship small: no debug tables (the release profile keeps line tables for the host).
    command
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true");
    // Flags meant for the host build must not leak into the guest build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("failed to run cargo to build {what}: {e}"));
    assert!(
        status.success(),
        "building {what} for wasm32-wasip2 failed ({status}); is the target installed? \
         run `rustup target add wasm32-wasip2`"
    );
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}
