//! Several hosts on one queue: each heartbeats, a live host reclaims a dead host's processing
//! list once its heartbeat has expired, and no task is ever held by two hosts at once.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use crate::support::{self, Accounting, Host, Stage};

const TASKS: usize = 1000;
const HOSTS: [&str; 3] = ["host-a", "host-b", "host-c"];
const POOL: &str = "min_workers = 15\nmax_workers = 15\nheartbeat_ttl = \"2s\"";

/// Samples every processing list in one atomic step, again and again, and counts the
/// samples in which a task sits in two lists.
fn watch_for_double_holds(url: String, stop: CancellationToken) -> Arc<AtomicUsize> {
    let doubles = Arc::new(AtomicUsize::new(0));
    let counter = doubles.clone();
    tokio::spawn(async move {
        let mut conn = support::conn(&url).await;
        while !stop.is_cancelled() {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for host in HOSTS {
                pipe.lrange(format!("captcha:processing:{host}"), 0, -1);
            }
            let lists: Vec<Vec<Vec<u8>>> = pipe.query_async(&mut conn).await.unwrap_or_default();
            let mut seen = HashSet::new();
            if lists.into_iter().flatten().any(|raw| !seen.insert(raw)) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    doubles
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_hosts_tasks_are_reclaimed_after_its_heartbeat_expires_and_none_is_held_twice() {
    let solve = (Duration::from_millis(100), Duration::from_millis(300));
    let Stage {
        redis,
        sim,
        mut conn,
    } = Stage::new("multi", TASKS, solve).await;
    let stop_watch = CancellationToken::new();
    let doubles = watch_for_double_holds(redis.url(), stop_watch.clone());
    let mut hosts: Vec<Host> = HOSTS
        .iter()
        .map(|id| Host::start(id, &redis.url(), &sim.base_url(), POOL))
        .collect();

    let dead_list = "captcha:processing:host-b";
    let busy = support::underway(&conn, dead_list, (150, 5), Duration::from_secs(60)).await;
    assert!(busy, "host-b never held tasks mid-burst");
    hosts[1].kill();
    let killed_at = Instant::now();
    let orphans: usize = conn.llen(dead_list).await.expect("llen");
    assert!(orphans > 0);

    let reclaimed = support::eventually(Duration::from_secs(10), || {
        let mut conn = conn.clone();
        async move { conn.llen::<_, usize>(dead_list).await.unwrap_or(1) == 0 }
    })
    .await;
    let after = killed_at.elapsed();
    assert!(reclaimed, "host-b's tasks were never reclaimed");
    assert!(
        after >= Duration::from_millis(1300) && after < Duration::from_secs(5),
        "reclaimed {after:?} after the kill; the 2 s heartbeat was renewed at most 0.7 s before it"
    );

    let accounting = support::settle(&redis.url(), TASKS, Duration::from_secs(90)).await;
    stop_watch.cancel();
    assert_eq!(accounting, Accounting::answered(TASKS));
    assert_eq!(
        doubles.load(Ordering::Relaxed),
        0,
        "a task sat in two lists"
    );
    let reclaims: Vec<_> = [&hosts[0], &hosts[2]]
        .iter()
        .flat_map(|h| h.logged("reclaimed the tasks of a host"))
        .collect();
    assert_eq!(
        reclaims.len(),
        1,
        "one live host reclaims, once: {reclaims:?}"
    );
    assert_eq!(reclaims[0]["fields"]["dead_host"], "host-b");
    assert_eq!(reclaims[0]["fields"]["tasks"], orphans as u64);
    let submitted = sim.stats().submitted as usize;
    assert!(
        (TASKS..=TASKS + orphans).contains(&submitted),
        "only the reclaimed tasks may be solved twice: {submitted} submits, {orphans} reclaimed"
    );
    let live: HashSet<String> = conn.smembers("autoscaler:hosts").await.expect("smembers");
    assert_eq!(
        live,
        HashSet::from(["host-a".to_owned(), "host-c".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_host_whose_tasks_were_reclaimed_drops_them_instead_of_answering() {
    let solve = (Duration::from_millis(800), Duration::from_millis(1200));
    let Stage { redis, sim, conn } = Stage::new("stall", 60, solve).await;
    let pool = "min_workers = 10\nmax_workers = 10\nheartbeat_ttl = \"1500ms\"";
    let stalled = Host::start("stalled", &redis.url(), &sim.base_url(), pool);
    let held = support::eventually(Duration::from_secs(20), || {
        let mut conn = conn.clone();
        async move {
            conn.llen::<_, usize>("captcha:processing:stalled")
                .await
                .unwrap_or(0)
                == 10
        }
    })
    .await;
    assert!(held, "the host should hold ten tasks");
    stalled.signal("STOP");
    let _rescuer = Host::start("rescuer", &redis.url(), &sim.base_url(), pool);
    let reclaimed = support::eventually(Duration::from_secs(10), || {
        let mut conn = conn.clone();
        async move {
            conn.llen::<_, usize>("captcha:processing:stalled")
                .await
                .unwrap_or(1)
                == 0
        }
    })
    .await;
    assert!(
        reclaimed,
        "the rescuer should reclaim the stalled host's tasks"
    );
    stalled.signal("CONT");

    let accounting = support::settle(&redis.url(), 60, Duration::from_secs(60)).await;
    assert_eq!(accounting.results, 60, "{accounting:?}");
    assert!(accounting.settled(60), "{accounting:?}");
    let dropped = stalled.logged("another host took its tasks");
    assert_eq!(
        dropped.len(),
        1,
        "the stalled host learns it lost its tasks"
    );
    assert_eq!(dropped[0]["fields"]["reclaimed_by"], "rescuer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_under_a_live_host_id_is_refused_and_takes_nothing() {
    let solve = (Duration::from_millis(300), Duration::from_millis(600));
    let Stage { redis, sim, conn } = Stage::new("twin", 100, solve).await;
    let pool = "min_workers = 5\nmax_workers = 5";
    let live = Host::start("twin", &redis.url(), &sim.base_url(), pool);
    let list = "captcha:processing:twin";
    let busy = support::underway(&conn, list, (1, 3), Duration::from_secs(20)).await;
    assert!(busy, "the first run should be solving");

    let mut second = Host::start("twin", &redis.url(), &sim.base_url(), pool);
    let code = second.wait_exit(Duration::from_secs(10));
    let stderr = second.stderr();
    assert_eq!(code, Some(2), "a configuration error: {stderr}");
    assert!(
        stderr.contains(r#"another live run uses host_id "twin""#),
        "the refusal names the id and what to do: {stderr}"
    );

    let accounting = support::settle(&redis.url(), 100, Duration::from_secs(60)).await;
    assert!(accounting.settled(100), "{accounting:?}");
    assert!(
        live.logged("another host reclaimed this task").is_empty(),
        "the live run kept every task it held"
    );
    assert_eq!(sim.stats().submitted, 100, "no task was solved twice");
}
