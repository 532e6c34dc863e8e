//! The plain-text protocol, and the `/sim/…` routes that tests of the real binary use.

use super::*;

#[tokio::test]
async fn plain_text_mode_speaks_like_the_real_api() {
    let sim = sim(SimConfig {
        solve_time: (30 * MS, 30 * MS),
        ..fast()
    })
    .await;
    let http = reqwest::Client::new();
    let base = sim.base_url();
    let text = |response: reqwest::Response| async move { response.text().await.expect("body") };

    let form = [("key", KEY), ("method", "base64"), ("body", "aGVsbG8=")];
    let submitted = text(
        http.post(format!("{base}/in.php"))
            .form(&form)
            .send()
            .await
            .expect("in"),
    )
    .await;
    let id = submitted.strip_prefix("OK|").expect("OK|id").to_owned();
    assert!(id.parse::<u64>().is_ok(), "{submitted}");

    let poll = [("key", KEY), ("action", "get"), ("id", id.as_str())];
    let res = format!("{base}/res.php");
    let early = text(http.get(&res).query(&poll).send().await.expect("res")).await;
    assert_eq!(parse_body(&early).ok(), Some(Reply::NotReady));
    tokio::time::sleep(60 * MS).await;
    let ready = text(http.get(&res).query(&poll).send().await.expect("res")).await;
    assert!(ready.starts_with("OK|") && ready.len() == 8, "{ready}");

    let balance = [("key", KEY), ("action", "getbalance")];
    let money = text(
        http.get(&res)
            .query(&balance)
            .send()
            .await
            .expect("balance"),
    )
    .await;
    assert_eq!(money, "9.99900");
    let refused = text(
        http.get(&res)
            .query(&[("key", "x"), ("action", "get")])
            .send()
            .await
            .expect("res"),
    )
    .await;
    assert_eq!(refused, "ERROR_WRONG_USER_KEY");
}

#[tokio::test]
async fn stats_and_faults_are_reachable_over_http() {
    let sim = sim(fast()).await;
    let http = reqwest::Client::new();
    let faults = json!({"count": 1, "fault": {"kind": "html", "status": 502}});
    let put = http
        .put(format!("{}/sim/faults", sim.base_url()))
        .json(&faults)
        .send()
        .await;
    assert_eq!(put.expect("put").status().as_u16(), 204);

    let error = client(&sim).balance().await.expect_err("502");
    assert_eq!(error.code(), "HTTP_502");
    let stats: Value = http
        .get(format!("{}/sim/stats", sim.base_url()))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (
            stats["faults_injected"].as_u64(),
            stats["balance_usd"].as_f64()
        ),
        (Some(1), Some(10.0))
    );
}
