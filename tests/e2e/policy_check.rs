//! `autoscaler policy check` against the real binary: what it reports for a good policy, and
//! the exact message and exit code for each way a file can be wrong.

use std::path::Path;
use std::process::{Command, Output};

use autoscaler::policy::embedded::built_policy_path;

/// Runs `autoscaler policy check FILE` with `args`; returns the exit code, stdout, stderr.
fn check(file: &Path, args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args(["policy", "check"])
        .arg(file)
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run autoscaler policy check");
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (status.code().unwrap_or(-1), text(stdout), text(stderr))
}

/// Checks a file that must be refused with exit code 1 and a message containing `expected`.
fn refused(file: &Path, args: &[&str], expected: &str) {
    let (code, stdout, stderr) = check(file, args);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in:\n{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write the file");
    path
}

#[test]
fn a_good_policy_shows_its_name_contract_exports_and_decision() {
    let (code, stdout, stderr) = check(&built_policy_path("static"), &[]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("policy:   static.wasm ("), "{stdout}");
    assert_eq!(lines[1], "contract: autoscaler:policy@0.1.0");
    assert_eq!(lines[2], "exports:  configure, decide");
    assert!(lines[3].starts_with("imports:  autoscaler:policy/types@0.1.0"));
    assert_eq!(lines[4], "decision: target 4 — static: 4 workers");
    assert!(lines[5].starts_with("call:     "), "{stdout}");
}

#[test]
fn a_given_snapshot_is_decided_on() {
    let snapshot = r#"{"queue_depth": 100, "workers": 2, "busy": 2, "utilization": 1.0}"#;
    let (code, stdout, stderr) = check(&built_policy_path("threshold"), &["--snapshot", snapshot]);
    assert_eq!(code, 0, "{stderr}");
    let decision = stdout
        .lines()
        .find(|l| l.starts_with("decision: "))
        .expect("a decision line");
    assert!(decision.contains("queue 100 > 20"), "{decision}");
}

#[test]
fn a_missing_export_is_named_with_the_exports_found() {
    refused(
        &built_policy_path("no_decide"),
        &[],
        "it exports no `decide` function (exports found: choose, configure)",
    );
}

#[test]
fn another_contract_version_names_the_expected_and_the_found() {
    refused(
        &built_policy_path("newer_contract"),
        &[],
        "it was built against contract autoscaler:policy@0.2.0, but this host expects \
         autoscaler:policy@0.1.0: rebuild it with the policy SDK for 0.1.0",
    );
}

#[test]
fn a_core_module_is_told_how_to_build_a_component() {
    let dir = tempfile::tempdir().expect("temp dir");
    let module = write(dir.path(), "core.wasm", b"\0asm\x01\0\0\0");
    refused(
        &module,
        &[],
        "it is a core WebAssembly module, not a component: build it with \
         `cargo build --target wasm32-wasip2` (or wrap it with `wasm-tools component new`)",
    );
}

#[test]
fn rejected_parameters_are_shown_with_the_policys_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write(
        dir.path(),
        "autoscaler.toml",
        b"[policy.params]\nwrokers = 9\n",
    );
    let config = config.to_str().expect("utf-8 path");
    refused(
        &built_policy_path("static"),
        &["--config", config],
        "its configure rejected the parameters: ",
    );
    let (_, _, stderr) = check(&built_policy_path("static"), &["--config", config]);
    assert!(stderr.contains("wrokers"), "{stderr}");
}

#[test]
fn a_policy_that_runs_past_its_deadline_says_so() {
    refused(
        &built_policy_path("spin"),
        &[],
        "failed to decide: it ran past its deadline of 50ms (policy.cpu_deadline)",
    );
}

#[test]
fn a_panic_in_configure_is_reported_as_a_trap() {
    refused(
        &built_policy_path("configure_panic"),
        &[],
        "it trapped: wasm trap: wasm `unreachable` instruction executed",
    );
}

#[test]
fn empty_truncated_and_random_files_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let whole = std::fs::read(built_policy_path("static")).expect("built static");
    let empty = write(dir.path(), "empty.wasm", b"");
    refused(
        &empty,
        &[],
        "not a valid policy component: the file is empty",
    );
    let truncated = write(dir.path(), "half.wasm", &whole[..whole.len() / 2]);
    refused(&truncated, &[], "not a valid policy component: ");
    let random = write(dir.path(), "random.wasm", b"MZ\x90\0 not wasm at all");
    refused(
        &random,
        &[],
        "not a WebAssembly component (wrong magic bytes)",
    );
}

#[test]
fn a_bad_snapshot_is_a_usage_error() {
    let (code, _, stderr) = check(
        &built_policy_path("static"),
        &["--snapshot", "{\"queue\": 1}"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("unknown snapshot field \"queue\""),
        "{stderr}"
    );
}

#[test]
fn a_bundled_policy_is_checked_by_name_and_exported_to_a_file() {
    let (code, stdout, stderr) = check(Path::new("threshold"), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("decision: target"), "{stdout}");

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("mine.wasm");
    let export = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_autoscaler"))
            .args(["policy", "export", name, "--out"])
            .arg(&out)
            .output()
            .expect("run autoscaler policy export")
    };
    let written = export("fixed-step");
    assert!(written.status.success(), "{written:?}");
    let bytes = std::fs::read(&out).expect("the exported file");
    assert_eq!(
        bytes,
        std::fs::read(built_policy_path("fixed_step")).expect("built")
    );
    let (code, stdout, stderr) = check(&out, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("policy:   mine.wasm"), "{stdout}");

    let unknown = export("nope");
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no bundled policy is called \"nope\"")
            && stderr.contains("threshold, static, fixed-step, target-tracking"),
        "{stderr}"
    );
}
