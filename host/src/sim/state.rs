//! The simulated account: keys, threads, money, tasks and their answers, and the counters.
//!
//! Pure protocol logic with no HTTP in it: the handlers in [`super::http`] turn requests into
//! calls here and [`Answer`]s into bodies. Time comes in as `now`, so a task is solved when
//! its moment has passed, whether or not anyone asks; [`State::settle`] books that lazily on
//! every call.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use rand::distr::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use super::config::{Fault, Faults, SimConfig};

/// Rounding slack when comparing dollars.
const MONEY_TOLERANCE: f64 = 1e-9;

/// Request parameters, from the query and the form merged.
pub(crate) type Params = HashMap<String, String>;

/// What the protocol answers, before it is written as JSON or plain text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Ok(Value),
    NotReady,
    Error(&'static str),
}

/// Counters of what the simulator saw, also served as JSON at `GET /sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SimStats {
    /// Tasks accepted by `in.php`.
    pub submitted: u64,
    /// `res.php?action=get` requests.
    pub polls: u64,
    /// `res.php?action=getbalance` requests.
    pub balance_checks: u64,
    /// Tasks solved (and charged).
    pub solved: u64,
    /// Tasks answered `ERROR_CAPTCHA_UNSOLVABLE`.
    pub unsolvable: u64,
    /// Submits refused with `ERROR_NO_SLOT_AVAILABLE`.
    pub no_slot: u64,
    /// Submits refused with `ERROR_ZERO_BALANCE`.
    pub zero_balance: u64,
    /// Requests refused for a bad key, method or parameter.
    pub rejected: u64,
    /// Answers replaced by an injected fault.
    pub faults_injected: u64,
    /// Tasks being solved now.
    pub in_flight: u32,
    /// Most tasks in flight at once so far.
    pub max_concurrent: u32,
    /// Money left, in US dollars.
    pub balance_usd: f64,
}

/// One submitted task.
#[derive(Debug)]
struct Task {
    outcome: Option<String>,
    settled: bool,
}

/// The whole simulated service.
#[derive(Debug)]
pub(crate) struct State {
    config: SimConfig,
    rng: StdRng,
    tasks: HashMap<u64, Task>,
    /// Tasks not yet due, soonest first.
    pending: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Finished tasks in the order they finished, for forgetting them.
    expiring: VecDeque<(Instant, u64)>,
    next_id: u64,
    stats: SimStats,
    faults: Faults,
}

impl State {
    pub(crate) fn new(config: SimConfig) -> Self {
        let mut rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let next_id = rng.random_range(70_000_000_000..80_000_000_000);
        let stats = SimStats {
            balance_usd: config.balance_usd,
            ..SimStats::default()
        };
        let faults = config.faults.clone();
        Self {
            config,
            rng,
            tasks: HashMap::new(),
            pending: BinaryHeap::new(),
            expiring: VecDeque::new(),
            next_id,
            stats,
            faults,
        }
    }

    /// `in.php`: checks the key, the method and its parameters, money, then threads.
    pub(crate) fn submit(&mut self, params: &Params, now: Instant) -> Answer {
        self.settle(now);
        match self.check_key(params).and_then(|()| method_of(params)) {
            Ok(method) => self.accept(method, now),
            Err(code) => self.reject(code),
        }
    }

    /// `res.php?action=get`: the answer once the task's time has come, readable repeatedly.
    pub(crate) fn get(&mut self, params: &Params, now: Instant) -> Answer {
        self.settle(now);
        if let Err(code) = self.check_key(params) {
            return self.reject(code);
        }
        self.stats.polls += 1;
        let Some(id) = params
            .get("id")
            .and_then(|id| id.trim().parse::<u64>().ok())
        else {
            return Answer::Error("ERROR_WRONG_ID_FORMAT");
        };
        match self.tasks.get(&id) {
            None => Answer::Error("ERROR_WRONG_CAPTCHA_ID"),
            Some(task) if !task.settled => Answer::NotReady,
            Some(Task {
                outcome: Some(answer),
                ..
            }) => Answer::Ok(Value::String(answer.clone())),
            Some(_) => Answer::Error("ERROR_CAPTCHA_UNSOLVABLE"),
        }
    }

    /// `res.php?action=getbalance`: the money left, as the real service sends it (a string).
    pub(crate) fn balance(&mut self, params: &Params, now: Instant) -> Answer {
        self.settle(now);
        if let Err(code) = self.check_key(params) {
            return self.reject(code);
        }
        self.stats.balance_checks += 1;
        Answer::Ok(Value::String(format!("{:.5}", self.stats.balance_usd)))
    }

    /// The counters, with the tasks whose time has come booked.
    pub(crate) fn stats(&mut self, now: Instant) -> SimStats {
        self.settle(now);
        self.stats.clone()
    }

    pub(crate) fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// The delay to add to the next answer, and the fault that replaces it if any is due.
    pub(crate) fn take_fault(&mut self) -> (Duration, Option<Fault>) {
        let delay = self.faults.delay;
        if self.faults.count == 0 {
            return (delay, None);
        }
        self.faults.count -= 1;
        self.stats.faults_injected += 1;
        (delay, Some(self.faults.fault.clone()))
    }

    fn check_key(&self, params: &Params) -> Result<(), &'static str> {
        let key = params.get("key").map(String::as_str).unwrap_or_default();
        if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("ERROR_WRONG_USER_KEY");
        }
        match &self.config.allowed_keys {
            Some(keys) if !keys.iter().any(|k| k == key) => Err("ERROR_KEY_DOES_NOT_EXIST"),
            _ => Ok(()),
        }
    }

    fn reject(&mut self, code: &'static str) -> Answer {
        self.stats.rejected += 1;
        Answer::Error(code)
    }

    /// Takes a valid task if money and threads allow.
    fn accept(&mut self, method: Method, now: Instant) -> Answer {
        let committed = f64::from(self.stats.in_flight) * self.config.price_usd;
        if self.stats.balance_usd - committed < self.config.price_usd - MONEY_TOLERANCE {
            self.stats.zero_balance += 1;
            return Answer::Error("ERROR_ZERO_BALANCE");
        }
        if self.stats.in_flight >= self.config.threads {
            self.stats.no_slot += 1;
            return Answer::Error("ERROR_NO_SLOT_AVAILABLE");
        }

        let id = self.next_id;
        self.next_id += 1;
        let ready_at = now + self.draw_solve_time();
        let task = Task {
            outcome: self.draw_outcome(method),
            settled: false,
        };
        self.tasks.insert(id, task);
        self.pending.push(Reverse((ready_at, id)));
        self.stats.submitted += 1;
        self.stats.in_flight += 1;
        self.stats.max_concurrent = self.stats.max_concurrent.max(self.stats.in_flight);
        Answer::Ok(Value::from(id))
    }

    fn draw_solve_time(&mut self) -> Duration {
        let (min, max) = self.config.solve_time;
        if max <= min {
            return min;
        }
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.random_range(nanos(min)..=nanos(max)))
    }

    /// The answer the task will have, or `None` for unsolvable.
    fn draw_outcome(&mut self, method: Method) -> Option<String> {
        let rate = self.config.error_rate.clamp(0.0, 1.0);
        if self.rng.random_bool(rate) {
            return None;
        }
        let (prefix, len) = match method {
            Method::Token(prefix) => (prefix, 160),
            Method::Image => ("", 5),
        };
        let tail: String = (&mut self.rng)
            .sample_iter(&Alphanumeric)
            .take(len)
            .map(char::from)
            .collect();
        Some(format!("{prefix}{tail}"))
    }

    /// Books the tasks whose time has come, and forgets results past their time to live.
    /// Tasks come due in `ready_at` order, so both steps stop at the first one not due.
    fn settle(&mut self, now: Instant) {
        while let Some(&Reverse((ready_at, id))) = self.pending.peek() {
            if ready_at > now {
                break;
            }
            self.pending.pop();
            self.finish(id);
            self.expiring.push_back((ready_at, id));
        }
        let ttl = self.config.result_ttl;
        while let Some(&(ready_at, id)) = self.expiring.front() {
            if ready_at + ttl > now {
                break;
            }
            self.expiring.pop_front();
            self.tasks.remove(&id);
        }
    }

    /// Marks a task solved (and charges it) or unsolvable.
    fn finish(&mut self, id: u64) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        task.settled = true;
        self.stats.in_flight -= 1;
        if task.outcome.is_some() {
            self.stats.solved += 1;
            self.stats.balance_usd -= self.config.price_usd;
        } else {
            self.stats.unsolvable += 1;
        }
    }
}

/// What a method produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// A token, starting like the real ones do.
    Token(&'static str),
    /// A few characters read off an image.
    Image,
}

/// The method and whether its required parameters are there.
fn method_of(params: &Params) -> Result<Method, &'static str> {
    let has = |name: &str| params.get(name).is_some_and(|v| !v.trim().is_empty());
    let require = |name: &str, code: &'static str| if has(name) { Ok(()) } else { Err(code) };
    match params.get("method").map(String::as_str) {
        Some("userrecaptcha") => {
            require("googlekey", "ERROR_GOOGLEKEY")?;
            require("pageurl", "ERROR_PAGEURL")?;
            Ok(Method::Token("03A"))
        }
        Some(method @ ("turnstile" | "hcaptcha")) => {
            require("sitekey", "ERROR_BAD_PARAMETERS")?;
            require("pageurl", "ERROR_PAGEURL")?;
            Ok(Method::Token(if method == "turnstile" {
                "0."
            } else {
                "P1_"
            }))
        }
        Some("post" | "base64") if has("body") || has("file") => Ok(Method::Image),
        Some("post" | "base64") => Err("ERROR_ZERO_CAPTCHA_FILESIZE"),
        _ => Err("ERROR_BAD_PARAMETERS"),
    }
}

#[cfg(test)]
mod tests;
