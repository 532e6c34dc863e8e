//! `autoscaler replay`, the real binary with the real compiled policies: the table accounts for
//! every task, each policy gets a chart that parses as SVG with its series, a trace replays its
//! own tasks, and the same seed gives the same table.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `autoscaler replay` with `args`; returns its output.
fn replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .arg("replay")
        .args(args)
        .output()
        .expect("run autoscaler replay")
}

/// Runs a replay that must succeed; returns its stdout.
fn replay_ok(args: &[&str]) -> String {
    let output = replay(args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "replay {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

/// The rows of `summary.csv` in `dir`, each a map from column to value.
fn summary(dir: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("summary.csv")).expect("summary.csv written");
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("a header")
        .split(',')
        .map(str::to_owned)
        .collect();
    lines
        .map(|line| {
            header
                .iter()
                .cloned()
                .zip(line.split(',').map(str::to_owned))
                .collect()
        })
        .collect()
}

fn number(row: &HashMap<String, String>, column: &str) -> f64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} is not a number in {row:?}"))
}

#[test]
fn every_task_is_accounted_for_on_two_scenarios() {
    for scenario in ["step-burst", "error-storm"] {
        let out = tempfile::tempdir().expect("temp dir");
        let dir = out.path().to_str().expect("utf-8 path");
        let stdout = replay_ok(&[
            "--policy",
            "threshold",
            "--policy",
            "fixed-step",
            "--scenario",
            scenario,
            "--out",
            dir,
        ]);
        let rows = summary(out.path());
        assert_eq!(rows.len(), 2, "{scenario}");
        for row in &rows {
            let arrived = number(row, "arrived");
            let accounted = number(row, "completed") + number(row, "failed") + number(row, "left");
            assert_eq!(arrived, accounted, "{scenario}: {row:?}");
            assert!(arrived > 1500.0, "{scenario}: an hour of load: {row:?}");
            assert!(number(row, "worker_seconds") > 0.0, "{row:?}");
            let line = stdout
                .lines()
                .find(|l| l.starts_with(&row["policy"]))
                .unwrap_or_else(|| panic!("no row for {} in\n{stdout}", row["policy"]));
            assert!(
                line.contains(&row["arrived"]),
                "the table shows the CSV: {line}"
            );
        }
    }
}

#[test]
fn each_policy_gets_a_chart_with_its_series() {
    let out = tempfile::tempdir().expect("temp dir");
    let dir = out.path().to_str().expect("utf-8 path");
    replay_ok(&[
        "--policy",
        "threshold",
        "--policy",
        "static:workers=50",
        "--scenario",
        "spikes",
        "--out",
        dir,
    ]);
    for stem in ["threshold", "static-workers-50"] {
        let svg = std::fs::read_to_string(out.path().join(format!("{stem}.svg"))).expect("svg");
        let doc = roxmltree::Document::parse(&svg).expect("the chart parses as XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        let series: HashMap<&str, usize> = doc
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .filter_map(|n| {
                Some((
                    n.attribute("id")?,
                    n.attribute("points")?.split(' ').count(),
                ))
            })
            .collect();
        let csv = std::fs::read_to_string(out.path().join(format!("{stem}.csv"))).expect("csv");
        let ticks = csv.lines().count() - 1;
        assert_eq!(ticks, 360, "an hour of 10 s ticks");
        assert_eq!(
            series.get("queue"),
            Some(&ticks),
            "{stem}: one point a tick"
        );
        for stepped in ["workers", "busy", "target"] {
            assert_eq!(
                series.get(stepped),
                Some(&(2 * ticks - 1)),
                "{stem}: {stepped}"
            );
        }
    }
}

#[test]
fn a_trace_replays_its_own_tasks() {
    let out = tempfile::tempdir().expect("temp dir");
    let trace = out.path().join("burst.csv");
    let mut text = String::from("arrival_s,method,solve_s\n");
    for i in 0..120 {
        let method = if i % 4 == 0 {
            "base64"
        } else {
            "userrecaptcha"
        };
        text += &format!("{}.5,{method},{}\n", i / 2, 10 + i % 7);
    }
    std::fs::write(&trace, text).expect("write trace");
    let dir = out.path().join("out");
    replay_ok(&[
        "--policy",
        "target-tracking",
        "--trace",
        trace.to_str().expect("utf-8 path"),
        "--out",
        dir.to_str().expect("utf-8 path"),
    ]);
    let rows = summary(&dir);
    assert_eq!(number(&rows[0], "arrived"), 120.0);
    assert_eq!(
        number(&rows[0], "left"),
        0.0,
        "a minute after the last arrival: {rows:?}"
    );
}

#[test]
fn the_same_seed_gives_the_same_table() {
    let args = |seed| {
        [
            "--policy",
            "threshold",
            "--policy",
            "target-tracking",
            "--scenario",
            "diurnal",
            "--seed",
            seed,
        ]
    };
    let first = replay_ok(&args("7"));
    assert_eq!(replay_ok(&args("7")), first);
    assert_ne!(
        replay_ok(&args("8")),
        first,
        "another seed draws another load"
    );
}

#[test]
fn an_unknown_policy_is_a_usage_error_naming_the_bundled_ones() {
    let output = replay(&["--policy", "thresold", "--scenario", "steady"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown policy \"thresold\"") && stderr.contains("fixed-step"),
        "{stderr}"
    );
}

#[test]
fn a_policy_that_prints_replays_like_any_other() {
    // It floods its log, stdout and stderr every call: WASI's blocking writes must not meet
    // the replay's runtime.
    // The flood costs wall-clock time under a loaded debug build; the deadline is not what
    // this test is about, so it gets room.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("autoscaler.toml");
    std::fs::write(&config, "[policy]\ncpu_deadline = \"5s\"\n").expect("write config");
    let flood = autoscaler::policy::embedded::built_policy_path("log_flood");
    let stdout = replay_ok(&[
        "--config",
        config.to_str().expect("utf-8 path"),
        "--policy",
        flood.to_str().expect("utf-8 path"),
        "--scenario",
        "steady",
    ]);
    assert!(
        stdout.lines().any(|l| l.starts_with("log_flood.wasm ")),
        "{stdout}"
    );
}
