//! A bounded soak: two hosts on one queue while a fixed-seed schedule mixes every fault at
//! random (host crashes, drains and restarts, a Redis restart, API faults, bad input). At the
//! end every input is accounted for: tasks with an id = results, the rest = dead letters, and
//! nothing is left in the queue or in any processing list.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use autoscaler::sim::{Fault, Faults, SimConfig, SimHandle};

use crate::support::{self, Accounting, Host, RedisServer};

const SEED: u64 = 20_261_204;
const EVENTS: usize = 20;
const POOL: &str = "min_workers = 5\nmax_workers = 15\nheartbeat_ttl = \"2s\"\n\
                    account_pause = \"2s\"\ntask_timeout = \"30s\"";

/// What the schedule has pushed, by how each input must end.
#[derive(Debug, Default)]
struct Pushed {
    with_id: usize,
    without_id: usize,
    batches: usize,
}

struct Soak {
    redis: RedisServer,
    sim: SimHandle,
    hosts: [Option<Host>; 2],
    conn: redis::aio::MultiplexedConnection,
    pushed: Pushed,
    /// What the schedule did, in order, for the failure message.
    schedule: Vec<String>,
}

impl Soak {
    fn start_host(&mut self, i: usize) {
        let id = format!("soak-{i}");
        self.hosts[i] = Some(Host::start(
            &id,
            &self.redis.url(),
            &self.sim.base_url(),
            POOL,
        ));
    }

    async fn push(&mut self, rng: &mut StdRng) {
        let batch = self.pushed.batches;
        self.pushed.batches += 1;
        let n = rng.random_range(40..120);
        support::push(&mut self.conn, &support::tasks(&format!("soak-{batch}"), n)).await;
        self.pushed.with_id += n;
        if rng.random_bool(0.5) {
            let bad: Vec<Vec<u8>> = vec![
                b"not json".to_vec(),
                br#"{"method":"userrecaptcha"}"#.to_vec(),
                format!(r#"{{"id":"soak-bad-{batch}","params":{{}}}}"#).into_bytes(),
                b"\xff\xfe\xfd".to_vec(),
            ];
            for raw in bad {
                let _: () = redis::AsyncCommands::rpush(&mut self.conn, "captcha:tasks", raw)
                    .await
                    .expect("push bad input");
            }
            self.pushed.with_id += 1;
            self.pushed.without_id += 3;
        }
    }

    fn api_fault(&mut self, rng: &mut StdRng) {
        let count = rng.random_range(3..20);
        let faults = match rng.random_range(0..9) {
            0 => Faults {
                count,
                fault: Fault::Html {
                    status: [500, 502, 503][rng.random_range(0..3)],
                },
                ..Faults::default()
            },
            1 => Faults {
                count,
                fault: Fault::Garbage,
                ..Faults::default()
            },
            2 => Faults {
                count,
                fault: Fault::Empty,
                ..Faults::default()
            },
            3 => Faults::resets(count),
            4 => Faults::code("ERROR_NO_SLOT_AVAILABLE", count * 3),
            5 => Faults::code("ERROR_ZERO_BALANCE", count * 3),
            6 => Faults::code("IP_BANNED", 1),
            7 => Faults::code("ERROR_CAPTCHA_UNSOLVABLE", count),
            _ => Faults::delayed(Duration::from_millis(2500)),
        };
        self.schedule.push(format!("{faults:?}"));
        self.sim.set_faults(faults);
    }

    async fn event(&mut self, rng: &mut StdRng) {
        let kind = rng.random_range(0..6);
        self.schedule.push(
            [
                "push",
                "push",
                "api fault",
                "kill -9",
                "sigterm",
                "redis restart",
            ][kind]
                .into(),
        );
        match kind {
            0 | 1 => self.push(rng).await,
            2 => self.api_fault(rng),
            3 => {
                let i = rng.random_range(0..2);
                if let Some(mut host) = self.hosts[i].take() {
                    host.kill();
                }
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..3000))).await;
                self.start_host(i);
            }
            4 => {
                let i = rng.random_range(0..2);
                if let Some(mut host) = self.hosts[i].take() {
                    host.signal("TERM");
                    let code = host.wait_exit(Duration::from_secs(15));
                    let stderr = host.stderr();
                    let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
                    assert_eq!(code, Some(0), "drained; the host's last lines: {tail:#?}");
                }
                self.start_host(i);
            }
            _ => {
                self.redis.stop();
                tokio::time::sleep(Duration::from_millis(rng.random_range(500..3000))).await;
                self.redis.restart();
                self.conn = support::conn(&self.redis.url()).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_mix_of_every_fault_loses_no_task() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(SimConfig {
        solve_time: (Duration::from_millis(50), Duration::from_millis(400)),
        ..support::fast_sim_config()
    })
    .await;
    let conn = support::conn(&redis.url()).await;
    let mut soak = Soak {
        redis,
        sim,
        hosts: [None, None],
        conn,
        pushed: Pushed::default(),
        schedule: Vec::new(),
    };
    let mut rng = StdRng::seed_from_u64(SEED);
    soak.start_host(0);
    soak.start_host(1);
    soak.push(&mut rng).await;
    for _ in 0..EVENTS {
        soak.event(&mut rng).await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(1000..3000))).await;
        soak.sim.set_faults(Faults::default());
    }

    let schedule = soak.schedule.join(", ");
    for kind in ["push", "api fault", "kill -9", "sigterm", "redis restart"] {
        assert!(
            soak.schedule.iter().any(|e| e == kind),
            "the seed never ran {kind}: {schedule}"
        );
    }
    let pushed = &soak.pushed;
    let total = pushed.with_id + pushed.without_id;
    let accounting = support::settle(&soak.redis.url(), total, Duration::from_secs(60)).await;
    assert_eq!(
        accounting,
        Accounting {
            results: pushed.with_id,
            dead: pushed.without_id,
            queued: 0,
            processing: 0
        },
        "pushed {pushed:?} over the schedule: {schedule}"
    );
}
