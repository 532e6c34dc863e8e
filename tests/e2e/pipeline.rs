//! Tasks in, results out: the formats producers and consumers rely on.

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;
use serde_json::Value;

use crate::support::{self, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_tasks_get_three_hundred_matching_results() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(support::fast_sim_config()).await;
    let config = support::fast_config(&redis.url(), &sim.base_url());
    let mut conn = support::conn(&redis.url()).await;

    let methods = ["userrecaptcha", "turnstile", "hcaptcha", "base64"];
    let mut sent = HashMap::new();
    for n in 0..300 {
        let method = methods[n % methods.len()];
        let id = format!("job-{n}");
        let task = autoscaler::cli::commands::enqueue::synthetic(&id, method, 1, 1)
            .pop()
            .expect("one task");
        let mut value: Value = serde_json::from_str(&task).expect("json");
        value["id"] = Value::String(id.clone());
        let _: () = conn
            .rpush("captcha:tasks", value.to_string())
            .await
            .expect("push");
        sent.insert(id, method);
    }

    let running = support::InProcess::start(config.clone());
    let done = support::eventually(Duration::from_secs(60), || {
        let mut conn = conn.clone();
        async move { conn.hlen::<_, usize>("captcha:results").await.unwrap_or(0) >= 300 }
    })
    .await;
    let summary = running.stop().await;
    assert!(done, "not all results arrived; summary: {summary:?}");

    let results: HashMap<String, String> = conn.hgetall("captcha:results").await.expect("hgetall");
    assert_eq!(results.len(), 300);
    for (id, method) in &sent {
        let raw = results
            .get(id)
            .unwrap_or_else(|| panic!("no result for {id}"));
        let result: Value = serde_json::from_str(raw).expect("result is JSON");
        let object = result.as_object().expect("result is an object");
        assert_eq!(
            object.len(),
            2,
            "{id} ({method}): exactly status and token: {raw}"
        );
        assert_eq!(result["status"], "success", "{id}: {raw}");
        let token = result["token"].as_str().expect("token is a string");
        assert!(!token.is_empty(), "{id}: empty token");
    }
    let processing: usize = conn
        .llen(format!("captcha:processing:{}", config.host_id()))
        .await
        .expect("llen");
    assert_eq!(processing, 0, "nothing may stay in the processing list");
    let queued: usize = conn.llen("captcha:tasks").await.expect("llen");
    assert_eq!(queued, 0);
    assert_eq!(summary.succeeded, 300);
    assert_eq!(summary.taken, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tasks_become_error_results_or_dead_letters_and_good_ones_still_run() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(support::fast_sim_config()).await;
    let config = support::fast_config(&redis.url(), &sim.base_url());
    let mut conn = support::conn(&redis.url()).await;
    let inputs: Vec<Vec<u8>> = vec![
        b"not json at all".to_vec(),
        br#"{"id":"no-method","params":{}}"#.to_vec(),
        br#"{"method":"userrecaptcha","params":{}}"#.to_vec(),
        br#"{"id":"wrong-params","method":"userrecaptcha","params":"x"}"#.to_vec(),
        b"\xff\xfe\x00binary".to_vec(),
        concat!(
            r#"{"id":"good","method":"userrecaptcha","#,
            r#""params":{"googlekey":"k","pageurl":"https://a.example"}}"#
        )
        .as_bytes()
        .to_vec(),
    ];
    for input in &inputs {
        let _: () = conn.rpush("captcha:tasks", input).await.expect("push");
    }
    let running = support::InProcess::start(config);
    let done = support::eventually(Duration::from_secs(30), || {
        let mut conn = conn.clone();
        async move {
            let results: usize = conn.hlen("captcha:results").await.unwrap_or(0);
            let dead: usize = conn.llen("captcha:dead").await.unwrap_or(0);
            results == 3 && dead == 3
        }
    })
    .await;
    running.stop().await;
    assert!(done, "expected 3 results and 3 dead letters");
    let results: HashMap<String, String> = conn.hgetall("captcha:results").await.expect("hgetall");
    assert_eq!(
        results["no-method"],
        r#"{"status":"error","error":"ERROR_BAD_TASK"}"#
    );
    assert_eq!(
        results["wrong-params"],
        r#"{"status":"error","error":"ERROR_BAD_TASK"}"#
    );
    assert!(results["good"].starts_with(r#"{"status":"success","token":"#));
    let dead: Vec<String> = conn.lrange("captcha:dead", 0, -1).await.expect("lrange");
    let reasons: Vec<Value> = dead
        .iter()
        .map(|d| serde_json::from_str(d).expect("json"))
        .collect();
    let with_reason = |needle: &str| {
        reasons
            .iter()
            .find(|r| r["reason"].as_str().is_some_and(|t| t.contains(needle)))
            .unwrap_or_else(|| panic!("no dead letter says {needle:?}: {dead:?}"))
    };
    assert_eq!(with_reason("not JSON")["raw"], "not json at all");
    assert!(
        with_reason("no id")["raw"]
            .as_str()
            .expect("raw")
            .contains("userrecaptcha")
    );
    with_reason("UTF-8");
}
