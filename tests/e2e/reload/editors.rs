//! Reload under the ways files really change, in process: a slow write in chunks, a burst of
//! saves, a delete and a recreate, a flipped symlink, and bytes seen before. Every test also
//! checks that ticks go on one by one: a reload never skips or doubles a tick.

use std::path::Path;
use std::time::{Duration, Instant};

use autoscaler::policy::embedded::built_policy_path;
use autoscaler::scaler::TickReport;

use crate::containment::harness::{Host, logs_of, messages};

fn built(name: &str) -> Vec<u8> {
    std::fs::read(built_policy_path(name)).expect("built policy")
}

/// Ticks until the status shows the policy with content hash `hash` (at most 60 ticks).
async fn until_hash(host: &mut Host, hash: &str) -> Vec<TickReport> {
    let mut reports = Vec::new();
    for _ in 0..60 {
        reports.extend(host.ticks(1).await);
        if host.status().await["policy"]["hash"] == hash {
            return reports;
        }
    }
    panic!("the policy with hash {hash} never took over: {reports:#?}");
}

/// The content hash the host gives these bytes.
fn hash_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(bytes)[..6])
}

/// No tick skipped, none doubled, and none failed.
fn one_by_one(reports: &[TickReport]) {
    for pair in reports.windows(2) {
        assert_eq!(
            pair[1].tick,
            pair[0].tick + 1,
            "{:?}",
            (pair[0].tick, pair[1].tick)
        );
    }
    assert!(reports.iter().all(|r| r.failure.is_none()), "{reports:#?}");
}

/// Writes `bytes` in place (no rename), in `chunks` parts `pause` apart.
fn write_slowly(path: &Path, bytes: &[u8], chunks: usize, pause: Duration) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("truncate the policy");
    for part in bytes.chunks(bytes.len().div_ceil(chunks)) {
        std::thread::sleep(pause);
        file.write_all(part).expect("write a chunk");
        file.flush().expect("flush");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_write_in_chunks_never_loads_a_half_file() {
    let mut host = Host::start("static", "slow-write", &[], |_| {}).await;
    let mut reports = host.ticks(2).await;
    let threshold = built("threshold");
    let (path, bytes) = (host.policy.clone(), threshold.clone());
    // Pauses longer than the debounce (100 ms): each half-file is seen, and must be refused.
    let writer = tokio::task::spawn_blocking(move || {
        write_slowly(&path, &bytes, 4, Duration::from_millis(250));
    });
    reports.extend(until_hash(&mut host, &hash_of(&threshold)).await);
    writer.await.expect("writer");
    reports.extend(host.ticks(2).await);
    let status = host.status().await;
    host.finish().await;

    one_by_one(&reports);
    assert_eq!(
        status["policy"]["reloads"], 1,
        "only the whole file is swapped in"
    );
    for report in &reports {
        let static_or_threshold =
            report.reason == "static: 4 workers" || !report.reason.starts_with("static");
        assert!(static_or_threshold, "{report:?}");
    }
    let logs = logs_of("slow-write.wasm");
    assert_eq!(messages(&logs, "policy swapped in").len(), 1, "{logs:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_saves_in_a_second_make_one_reload() {
    let mut host = Host::start("static", "burst", &[], |config| {
        config.policy.reload_debounce = Duration::from_millis(300);
    })
    .await;
    let mut reports = host.ticks(2).await;
    let (threshold, fixed) = (built("threshold"), built("static"));
    let path = host.policy.clone();
    let (saves, last) = (threshold.clone(), fixed.clone());
    let burst = tokio::task::spawn_blocking(move || {
        for n in 0..10 {
            let bytes = if n % 2 == 1 { &saves } else { &last };
            let temp = path.with_extension("wasm.tmp");
            std::fs::write(&temp, bytes).expect("write temp");
            std::fs::rename(&temp, &path).expect("rename");
            std::thread::sleep(Duration::from_millis(90));
        }
    });
    reports.extend(until_hash(&mut host, &hash_of(&threshold)).await);
    burst.await.expect("burst");
    reports.extend(host.ticks(6).await);
    let status = host.status().await;
    host.finish().await;

    one_by_one(&reports);
    assert_eq!(status["policy"]["reloads"], 1, "{status}");
    assert_eq!(status["policy"]["hash"], hash_of(&threshold));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_then_recreated_file_is_picked_up() {
    let mut host = Host::start("static", "recreated", &[], |_| {}).await;
    let mut reports = host.ticks(2).await;
    std::fs::remove_file(&host.policy).expect("delete the policy");
    reports.extend(host.ticks(4).await);
    let gone = host.status().await;
    let threshold = built("threshold");
    std::fs::write(&host.policy, &threshold).expect("recreate the policy");
    reports.extend(until_hash(&mut host, &hash_of(&threshold)).await);
    let status = host.status().await;
    host.finish().await;

    one_by_one(&reports);
    assert_eq!(
        gone["policy"]["hash"],
        hash_of(&built("static")),
        "the policy stays"
    );
    assert_eq!(gone["policy"]["last_reload_error"], serde_json::Value::Null);
    assert_eq!(status["policy"]["reloads"], 1);
    assert!(
        reports[2..6]
            .iter()
            .all(|r| r.reason == "static: 4 workers")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_symlink_loads_the_new_target() {
    // The layout of a configuration volume: policy.wasm -> ..data/policy.wasm, ..data -> v1.
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    for (version, policy) in [("v1", "static"), ("v2", "threshold")] {
        std::fs::create_dir(root.join(version)).expect("version dir");
        std::fs::write(root.join(version).join("policy.wasm"), built(policy)).expect("write");
    }
    std::os::unix::fs::symlink("v1", root.join("..data")).expect("..data");
    std::os::unix::fs::symlink("..data/policy.wasm", root.join("policy.wasm")).expect("link");
    let policy = root.join("policy.wasm");
    let mut host = Host::start_on(dir, policy.clone(), &[], |_| {}).await;
    let mut reports = host.ticks(2).await;

    let volume = policy.parent().expect("volume folder").to_owned();
    std::os::unix::fs::symlink("v2", volume.join("..data_tmp")).expect("new link");
    std::fs::rename(volume.join("..data_tmp"), volume.join("..data")).expect("flip");
    reports.extend(until_hash(&mut host, &hash_of(&built("threshold"))).await);
    let status = host.status().await;
    host.finish().await;

    one_by_one(&reports);
    assert_eq!(status["policy"]["reloads"], 1);
    assert_eq!(status["policy"]["name"], "policy.wasm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_through_a_symlink_into_another_folder_is_picked_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (links, store) = (dir.path().join("links"), dir.path().join("store"));
    std::fs::create_dir(&links).expect("links");
    std::fs::create_dir(&store).expect("store");
    std::fs::write(store.join("real.wasm"), built("static")).expect("write");
    let policy = links.join("policy.wasm");
    std::os::unix::fs::symlink(store.join("real.wasm"), &policy).expect("link");
    let mut host = Host::start_on(dir, policy.clone(), &[], |_| {}).await;
    let mut reports = host.ticks(2).await;

    // `cp new.wasm links/policy.wasm` writes the target in place.
    std::fs::write(&policy, built("threshold")).expect("write through the link");
    reports.extend(until_hash(&mut host, &hash_of(&built("threshold"))).await);
    let status = host.status().await;
    host.finish().await;

    one_by_one(&reports);
    assert_eq!(status["policy"]["reloads"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_whose_target_is_deleted_then_recreated_reloads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (links, store) = (dir.path().join("links"), dir.path().join("store"));
    std::fs::create_dir(&links).expect("links");
    std::fs::create_dir(&store).expect("store");
    let target = store.join("real.wasm");
    std::fs::write(&target, built("static")).expect("write");
    let policy = links.join("policy.wasm");
    std::os::unix::fs::symlink(&target, &policy).expect("link");
    let mut host = Host::start_on(dir, policy.clone(), &[], |_| {}).await;
    host.ticks(2).await;

    std::fs::remove_file(&target).expect("delete the target");
    host.ticks(3).await;
    std::fs::write(&target, built("threshold")).expect("recreate it");
    until_hash(&mut host, &hash_of(&built("threshold"))).await;
    let status = host.status().await;
    host.finish().await;
    assert_eq!(status["policy"]["reloads"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_in_place_of_the_policy_is_refused_without_blocking() {
    let mut host = Host::start("static", "fifo", &[], |_| {}).await;
    host.ticks(2).await;
    let policy = host.policy.clone();
    std::fs::remove_file(&policy).expect("remove the file");
    let made = std::process::Command::new("mkfifo")
        .arg(&policy)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    // Ticks keep coming while nobody ever writes to the FIFO.
    let reports = host.ticks(10).await;
    let status = host.status().await;
    host.finish().await;
    one_by_one(&reports);
    let error = status["policy"]["last_reload_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("not a regular file"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_seen_before_are_not_compiled_again() {
    let mut host = Host::start("static", "cache-hit", &[], |_| {}).await;
    host.ticks(2).await;
    let (fresh, fixed) = (built("trap_every_third"), built("static"));
    host.save(&fresh);
    until_hash(&mut host, &hash_of(&fresh)).await;
    host.save(&fixed);
    until_hash(&mut host, &hash_of(&fixed)).await;
    host.finish().await;

    let logs = logs_of("cache-hit.wasm");
    let swaps = messages(&logs, "policy swapped in");
    let cached: Vec<bool> = swaps.iter().map(|l| l["cached"] == true).collect();
    assert_eq!(cached, [false, true], "{swaps:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_keep_their_pace_across_a_reload() {
    let mut host = Host::start("static", "pace", &[], |_| {}).await;
    host.ticks(1).await;
    let tick = host.config.pool.tick;
    let started = Instant::now();
    host.save(&built("threshold"));
    let reports = host.ticks(10).await;
    let took = started.elapsed();
    host.finish().await;

    let ticks: Vec<u64> = reports.iter().map(|r| r.tick).collect();
    assert_eq!(ticks, (2..=11).collect::<Vec<_>>());
    assert!(
        reports.iter().any(|r| !r.reason.starts_with("static")),
        "it reloaded"
    );
    assert!(reports.iter().all(|r| r.failure.is_none()), "{reports:#?}");
    assert!(took >= tick * 9, "ten ticks in {took:?}: none doubled");
    // A loaded machine may delay a tick (the interval then waits), never add one.
    assert!(took <= tick * 13, "ten ticks in {took:?}");
}
