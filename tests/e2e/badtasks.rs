//! Bad input and late duplicates: every bad task becomes an error result (when it names an
//! id) or a dead letter with its reason and raw bytes, the pool keeps serving good tasks, a
//! late error never replaces a stored success, and results expire after their retention.

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;
use serde_json::Value;

use autoscaler::queue::{Completion, Keys, Queue};
use autoscaler::task::TaskResult;

use crate::support::{self, Accounting, RedisServer};

const BAD_TASK: &str = r#"{"status":"error","error":"ERROR_BAD_TASK"}"#;

fn inputs() -> Vec<Vec<u8>> {
    let big = "A".repeat(2 * 1024 * 1024);
    let good = concat!(
        r#"{"id":"dup","method":"userrecaptcha","#,
        r#""params":{"googlekey":"k","pageurl":"https://a.example"}}"#
    );
    vec![
        br#"{"id":"broken","method":"#.to_vec(),
        br#"{"method":"userrecaptcha","params":{"googlekey":"k","pageurl":"u"}}"#.to_vec(),
        good.as_bytes().to_vec(),
        good.as_bytes().to_vec(),
        br#"{"id":"unknown-method","method":"teleport","params":{}}"#.to_vec(),
        br#"{"id":"params-string","method":"userrecaptcha","params":"googlekey=k"}"#.to_vec(),
        concat!(
            r#"{"id":"params-array","method":"userrecaptcha","#,
            r#""params":{"googlekey":["k"],"pageurl":"u"}}"#
        )
        .as_bytes()
        .to_vec(),
        format!(r#"{{"id":"huge","method":"base64","params":{{"body":"{big}"}}}}"#).into_bytes(),
        b"\xff\xfe{\"id\":\"latin\"}\x00".to_vec(),
        concat!(
            r#"{"id":"after","method":"turnstile","#,
            r#""params":{"sitekey":"s","pageurl":"https://b.example"}}"#
        )
        .as_bytes()
        .to_vec(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_task_is_answered_or_dead_lettered_and_the_pool_keeps_going() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(support::fast_sim_config()).await;
    let config = support::fast_config(&redis.url(), &sim.base_url());
    let mut conn = support::conn(&redis.url()).await;
    for input in inputs() {
        let _: () = conn.rpush("captcha:tasks", input).await.expect("push");
    }
    let running = support::InProcess::start(config);
    // Ten inputs: two share the id "dup", so six ids and three dead letters.
    let accounting = support::settle(&redis.url(), 9, Duration::from_secs(30)).await;
    let summary = running.stop().await;
    assert_eq!(
        accounting,
        Accounting {
            results: 6,
            dead: 3,
            queued: 0,
            processing: 0
        }
    );
    assert_eq!(summary.taken, 10, "{summary:?}");

    let results: HashMap<String, String> = conn.hgetall("captcha:results").await.expect("all");
    let error = |code: &str| format!(r#"{{"status":"error","error":"{code}"}}"#);
    assert!(
        results["dup"].starts_with(r#"{"status":"success""#),
        "one result per id"
    );
    assert_eq!(results["unknown-method"], error("ERROR_BAD_PARAMETERS"));
    assert_eq!(results["params-string"], BAD_TASK);
    assert_eq!(results["params-array"], error("ERROR_INVALID_PARAMS"));
    assert_eq!(results["huge"], BAD_TASK);
    assert!(
        results["after"].starts_with(r#"{"status":"success""#),
        "the next good task is served"
    );

    let dead: Vec<Value> = conn
        .lrange::<_, Vec<String>>("captcha:dead", 0, -1)
        .await
        .expect("dead letters")
        .iter()
        .map(|d| serde_json::from_str(d).expect("a dead letter is json"))
        .collect();
    let malformed = dead
        .iter()
        .find(|d| d["raw"] == r#"{"id":"broken","method":"#);
    let malformed = malformed.expect("the malformed json is kept raw");
    assert!(
        malformed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not JSON"))
    );
    let no_id = dead.iter().find(|d| d["reason"] == "task has no id");
    assert!(
        no_id.expect("input without an id")["raw"]
            .as_str()
            .is_some_and(|r| r.contains("googlekey"))
    );
    let binary = dead
        .iter()
        .find(|d| d.get("raw_hex").is_some())
        .expect("non-utf-8 input");
    assert_eq!(binary["raw_hex"], hex_of(b"\xff\xfe{\"id\":\"latin\"}\x00"));
    assert_eq!(binary["reason"], "task is not UTF-8 text");
    assert_eq!(
        sim.stats().submitted,
        3,
        "dup twice and after once; nothing else reached the api"
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A queue on the test's Redis, for a host that holds `raw` in its processing list.
async fn holding(redis: &RedisServer, raw: &str) -> Queue {
    let config = autoscaler::config::RedisConfig::default();
    let keys = Keys::new(&config, "dup-host");
    let mut conn = support::conn(&redis.url()).await;
    let _: () = conn.rpush(&keys.processing, raw).await.expect("hold");
    Queue::connect(&redis.url(), keys, None)
        .await
        .expect("connect")
}

#[tokio::test]
async fn a_late_error_duplicate_never_replaces_a_stored_success() {
    let redis = RedisServer::start();
    let raw = r#"{"id":"twice","method":"post","params":{"body":"x"}}"#;
    let mut queue = holding(&redis, raw).await;
    let success = TaskResult::Success {
        token: "t0k3n".into(),
    };
    let late = TaskResult::Error {
        error: "ERROR_CAPTCHA_UNSOLVABLE".into(),
    };
    assert_eq!(
        queue
            .complete(raw.as_bytes(), "twice", &success)
            .await
            .expect("write"),
        Completion::Written
    );
    let mut conn = support::conn(&redis.url()).await;
    let _: () = conn
        .rpush(&queue.keys().processing, raw)
        .await
        .expect("the duplicate");
    assert_eq!(
        queue
            .complete(raw.as_bytes(), "twice", &late)
            .await
            .expect("write"),
        Completion::KeptSuccess
    );
    let stored: String = conn.hget("captcha:results", "twice").await.expect("hget");
    assert_eq!(stored, success.to_json());
    assert_eq!(
        queue.in_processing().await.expect("llen"),
        0,
        "both acknowledged"
    );
}

#[tokio::test]
async fn a_task_no_longer_held_is_not_answered_by_this_host() {
    let redis = RedisServer::start();
    let raw = r#"{"id":"gone","method":"post","params":{"body":"x"}}"#;
    let mut queue = holding(&redis, raw).await;
    let mut conn = support::conn(&redis.url()).await;
    let _: () = conn
        .del(&queue.keys().processing)
        .await
        .expect("another host reclaimed it");
    let result = TaskResult::Success { token: "t".into() };
    assert_eq!(
        queue
            .complete(raw.as_bytes(), "gone", &result)
            .await
            .expect("write"),
        Completion::NotHeld
    );
    assert!(
        !queue.requeue(raw.as_bytes()).await.expect("requeue"),
        "nothing to return"
    );
    assert_eq!(queue.result_count().await.expect("hlen"), 0);
    assert_eq!(queue.measure().await.expect("llen").depth, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_leave_the_hash_after_their_retention() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(support::fast_sim_config()).await;
    let mut config = support::fast_config(&redis.url(), &sim.base_url());
    config.redis.result_retention = Duration::from_secs(1);
    let mut conn = support::conn(&redis.url()).await;
    support::push(&mut conn, &support::tasks("kept", 5)).await;
    let running = support::InProcess::start(config);
    let written = support::settle(&redis.url(), 5, Duration::from_secs(20)).await;
    assert!(written.settled(5), "{written:?}");
    let indexed: usize = conn.zcard("captcha:results:written").await.expect("zcard");
    assert_eq!(indexed, 5, "each result is indexed by its write time");
    let swept = support::eventually(Duration::from_secs(5), || {
        let mut conn = conn.clone();
        async move {
            let results: usize = conn.hlen("captcha:results").await.unwrap_or(1);
            let indexed: usize = conn.zcard("captcha:results:written").await.unwrap_or(1);
            results == 0 && indexed == 0
        }
    })
    .await;
    running.stop().await;
    assert!(
        swept,
        "results older than the retention are removed with their index"
    );
}

#[tokio::test]
async fn the_dead_letter_list_keeps_its_newest_entries() {
    let redis = RedisServer::start();
    let config = autoscaler::config::RedisConfig {
        dead_letter_max: 3,
        ..autoscaler::config::RedisConfig::default()
    };
    let keys = Keys::new(&config, "dead-host");
    let mut conn = support::conn(&redis.url()).await;
    let inputs: Vec<String> = (0..5).map(|n| format!("not json {n}")).collect();
    for raw in &inputs {
        let _: () = conn.rpush(&keys.processing, raw).await.expect("hold");
    }
    let mut queue = Queue::connect(&redis.url(), keys.clone(), None)
        .await
        .expect("connect");
    for raw in &inputs {
        assert!(
            queue
                .dead_letter(raw.as_bytes(), "not JSON", "dead-host")
                .await
                .expect("dead letter"),
            "held, so moved"
        );
    }
    let kept: Vec<String> = conn.lrange(&keys.dead_letter, 0, -1).await.expect("lrange");
    let raws: Vec<String> = kept
        .iter()
        .map(|entry| {
            let entry: serde_json::Value = serde_json::from_str(entry).expect("json entry");
            entry["raw"].as_str().expect("raw").to_owned()
        })
        .collect();
    assert_eq!(raws, ["not json 2", "not json 3", "not json 4"]);
    assert_eq!(queue.in_processing().await.expect("llen"), 0);
}
