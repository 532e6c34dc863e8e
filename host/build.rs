//! Builds the policies under `policies/` for `wasm32-wasip2`, so the default one can be
//! embedded in the binary and the others can serve as test fixtures and examples.
//!
//! The inner cargo uses its own target directory: sharing the outer build's would deadlock on
//! its lock. Its output folder is handed to the crate as `AUTOSCALER_POLICY_DIR`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest crates built here; the first is the default policy embedded in the host.
const POLICIES: &[&str] = &["threshold", "static"];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ sits in the workspace root");
    for watched in ["policies", "policy-sdk", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let target_dir = out_dir.join("guest-target");
    build_policies(root, &target_dir);
    let built = target_dir.join("wasm32-wasip2").join("release");
    for name in POLICIES {
        let wasm = built.join(format!("{name}.wasm"));
        assert!(
            wasm.exists(),
            "the policy build did not produce {}",
            wasm.display()
        );
    }
    println!("cargo:rustc-env=AUTOSCALER_POLICY_DIR={}", built.display());
}

fn build_policies(root: &Path, target_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(target_dir);
    for name in POLICIES {
        command.args(["-p", name]);
    }
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
        .expect("failed to run cargo to build the policies");
    assert!(
        status.success(),
        "building the policies for wasm32-wasip2 failed ({status}); is the target installed? \
         run `rustup target add wasm32-wasip2`"
    );
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}
