//! A host killed with SIGKILL in the middle of a burst loses nothing: the next start returns
//! its in-flight tasks to the queue, and every task ends with exactly one result.

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;

use crate::support::{self, Accounting, Host, Stage};

const TASKS: usize = 1200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_mid_burst_and_restarted_answers_every_task_once() {
    let solve = (Duration::from_millis(50), Duration::from_millis(150));
    let Stage {
        redis,
        sim,
        mut conn,
    } = Stage::new("crash", TASKS, solve).await;
    let pool = "min_workers = 40\nmax_workers = 40";
    let processing = "captcha:processing:crash-host";

    let mut host = Host::start("crash-host", &redis.url(), &sim.base_url(), pool);
    let mid_burst = support::underway(&conn, processing, (200, 10), Duration::from_secs(60)).await;
    assert!(mid_burst, "the host never got well into the burst");
    host.kill();
    let orphans: usize = conn.llen(processing).await.expect("llen");
    let answered: usize = conn.hlen("captcha:results").await.expect("hlen");
    assert!(orphans > 0, "the kill should leave tasks in flight");
    assert!(answered < TASKS, "the kill should come mid-burst");

    let host = Host::start("crash-host", &redis.url(), &sim.base_url(), pool);
    let accounting = support::settle(&redis.url(), TASKS, Duration::from_secs(90)).await;
    assert_eq!(accounting, Accounting::answered(TASKS));
    let results: HashMap<String, String> = conn.hgetall("captcha:results").await.expect("all");
    for i in 0..TASKS {
        let result = results
            .get(&format!("crash-{i}"))
            .expect("every id has a result");
        assert!(
            result.starts_with(r#"{"status":"success","token":"#),
            "{result}"
        );
    }
    let recovered = host.logged("returned tasks left by a previous run");
    assert_eq!(recovered.len(), 1, "one recovery at the restart");
    assert_eq!(recovered[0]["fields"]["recovered"], orphans as u64);
    let submitted = sim.stats().submitted as usize;
    assert!(
        (TASKS..=TASKS + orphans).contains(&submitted),
        "only the orphans may be solved twice: \
         {submitted} submits for {TASKS} tasks, {orphans} orphans"
    );
}
