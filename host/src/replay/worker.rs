//! One simulated worker: takes a task, attempts it, retries, and ends it as the real one does.
//!
//! The steps mirror `worker::solve`: an attempt at the provider; on an unsolvable answer,
//! submit again up to `pool.unsolvable_resubmits` times; on a retryable error, wait the real
//! worker's [`Backoff`] (doubling from one second up to `pool.retry_backoff_max`, at least what
//! the provider asked for), unless that wait would pass the task's deadline
//! (`pool.task_timeout` after the take), which fails the task; on any other error, fail the
//! task. Every take, answer, failed attempt and result is recorded in
//! the real [`Recorder`], which is where the scaler's snapshot comes from.
//!
//! The worker joins the pool's sizing rules as a [`Member`]: a stopped worker exits once it
//! holds no task.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::load::TaskSpec;
use super::provider::Provider;
use crate::metrics::Recorder;
use crate::pool::Member;
use crate::solver::{Action, SolveError};
use crate::worker::Backoff;

/// The pool settings a worker follows.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub task_timeout: Duration,
    pub retry_backoff_max: Duration,
    pub unsolvable_resubmits: u32,
    pub price_per_solve_usd: f64,
}

/// What a worker works with: the provider, the recorder, the tasks and the account.
#[derive(Debug)]
pub struct Desk<'a> {
    pub provider: &'a Provider,
    pub recorder: &'a Recorder,
    pub tasks: &'a [TaskSpec],
    pub rules: Rules,
    /// The account's balance, spent per answer.
    pub funds: &'a mut f64,
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Succeeded,
    Failed,
}

/// What the worker does next with the task it holds.
#[derive(Debug)]
enum Step {
    /// The current attempt ends, with this error or an answer.
    Ends(Option<SolveError>),
    /// The backoff is over: attempt again.
    Retry,
}

/// A task in a worker's hands.
#[derive(Debug)]
pub struct Held {
    pub task: usize,
    deadline: Duration,
    resubmits: u32,
    backoff: Backoff,
    rng: StdRng,
    attempt_started: Duration,
    /// When the next step happens.
    pub next: Duration,
    step: Step,
}

/// A simulated worker.
#[derive(Debug, Default)]
pub struct SimWorker {
    pub held: Option<Held>,
    stopped: bool,
}

impl Member for SimWorker {
    fn is_busy(&self) -> bool {
        self.held.is_some()
    }

    fn is_finished(&self) -> bool {
        self.stopped && self.held.is_none()
    }

    fn stop(&mut self) {
        self.stopped = true;
    }
}

impl SimWorker {
    /// When this worker next does something, if it holds a task.
    pub fn next_at(&self) -> Option<Duration> {
        self.held.as_ref().map(|held| held.next)
    }

    /// Takes task `task` at `at` and starts its first attempt.
    pub fn take(&mut self, task: usize, at: Duration, desk: &mut Desk<'_>) -> Option<Done> {
        desk.recorder.taken();
        self.held = Some(Held {
            task,
            deadline: at + desk.rules.task_timeout,
            resubmits: 0,
            backoff: Backoff::new(desk.rules.retry_backoff_max),
            rng: StdRng::seed_from_u64(desk.tasks[task].seed),
            attempt_started: at,
            next: at,
            step: Step::Retry,
        });
        self.attempt(at, desk)
    }

    /// Runs the step due at `at`, if one is; returns how the task ended if it did.
    pub fn step(&mut self, at: Duration, desk: &mut Desk<'_>) -> Option<Done> {
        let held = self.held.as_mut().filter(|held| held.next <= at)?;
        match std::mem::replace(&mut held.step, Step::Retry) {
            Step::Retry => self.attempt(at, desk),
            Step::Ends(None) => {
                desk.recorder.solved(at - held.attempt_started);
                *desk.funds -= desk.rules.price_per_solve_usd;
                self.finish(Done::Succeeded, desk)
            }
            Step::Ends(Some(error)) => self.after_error(error, at, desk),
        }
    }

    /// Starts an attempt at `at`; a task past its deadline fails without one.
    fn attempt(&mut self, at: Duration, desk: &mut Desk<'_>) -> Option<Done> {
        let held = self.held.as_mut()?;
        if at >= held.deadline {
            desk.recorder
                .attempt_failed(SolveError::DeadlineExceeded.class());
            return self.finish(Done::Failed, desk);
        }
        let task = &desk.tasks[held.task];
        let funded = *desk.funds > 0.0;
        let attempt = desk
            .provider
            .attempt(task, &mut held.rng, at, held.deadline, funded);
        held.attempt_started = at;
        held.next = at + attempt.after;
        held.step = Step::Ends(attempt.error);
        None
    }

    /// Resubmits, backs off or fails the task, as the real worker does after `error`.
    fn after_error(
        &mut self,
        error: SolveError,
        at: Duration,
        desk: &mut Desk<'_>,
    ) -> Option<Done> {
        desk.recorder.attempt_failed(error.class());
        let rules = desk.rules;
        let held = self.held.as_mut()?;
        if error.is_unsolvable() && held.resubmits < rules.unsolvable_resubmits {
            held.resubmits += 1;
            return self.attempt(at, desk);
        }
        match error.action() {
            Action::RetryLater => {
                let wait = held.backoff.after(&error);
                if at + wait >= held.deadline {
                    return self.finish(Done::Failed, desk);
                }
                held.next = at + wait;
                held.step = Step::Retry;
                None
            }
            // Account errors (which pause the real pool) are not part of the model.
            Action::FailTask | Action::PausePool => self.finish(Done::Failed, desk),
        }
    }

    fn finish(&mut self, done: Done, desk: &mut Desk<'_>) -> Option<Done> {
        desk.recorder.completed(done == Done::Succeeded);
        self.held = None;
        Some(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CaptchaAiConfig;
    use crate::replay::load::Conditions;

    fn rules() -> Rules {
        Rules {
            task_timeout: Duration::from_secs(180),
            retry_backoff_max: Duration::from_secs(20),
            unsolvable_resubmits: 1,
            price_per_solve_usd: 0.5,
        }
    }

    fn task(solve_s: u64) -> TaskSpec {
        TaskSpec {
            arrival: Duration::ZERO,
            method: "userrecaptcha".into(),
            solve: Some(Duration::from_secs(solve_s)),
            seed: 3,
        }
    }

    /// Runs one task to its end on a fresh worker; returns how it ended, when, and the
    /// attempts the recorder saw.
    fn work(conditions: Conditions, funds: f64) -> (Done, Duration, u32, f64) {
        let provider = Provider::new(conditions, &CaptchaAiConfig::default());
        let recorder = Recorder::new(Duration::from_secs(3600));
        let tasks = [task(12)];
        let mut funds = funds;
        let mut desk = Desk {
            provider: &provider,
            recorder: &recorder,
            tasks: &tasks,
            rules: rules(),
            funds: &mut funds,
        };
        let mut worker = SimWorker::default();
        let mut done = worker.take(0, Duration::ZERO, &mut desk);
        let mut at = Duration::ZERO;
        while done.is_none() {
            at = worker.next_at().expect("a held task has a next step");
            done = worker.step(at, &mut desk);
        }
        let attempts = recorder.summary().attempts;
        (done.expect("ended"), at, attempts, funds)
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_spends_one_price_and_frees_the_worker() {
        let clean = Conditions {
            transport_errors: 0.0,
            unsolvable: 0.0,
            ..Conditions::default()
        };
        let (done, at, attempts, funds) = work(clean, 1.0);
        assert_eq!(done, Done::Succeeded);
        assert_eq!(at, Duration::from_millis(15_300));
        assert_eq!(attempts, 1);
        assert_eq!(funds, 0.5);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unsolvable_task_is_submitted_once_more_then_fails() {
        let hopeless = Conditions {
            transport_errors: 0.0,
            unsolvable: 1.0,
            ..Conditions::default()
        };
        let (done, at, attempts, funds) = work(hopeless, 1.0);
        assert_eq!(done, Done::Failed);
        assert_eq!(attempts, 2);
        assert_eq!(at, Duration::from_millis(2 * 15_300));
        assert_eq!(funds, 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_back_off_until_the_deadline_fails_the_task() {
        let (done, at, attempts, _) = work(Conditions::default(), 0.0);
        assert_eq!(done, Done::Failed);
        // Waits of 5, 5, 5 (the provider's 5 s for a refusal over the backoff's 1, 2, 4),
        // then 8, 16 and 20 s, each after a 0.3 s refusal, until the next wait would pass
        // 180 s: the twelfth refusal ends at 162.6 s.
        assert_eq!(at, Duration::from_millis(162_600));
        assert_eq!(attempts, 12);
    }

    #[test]
    fn a_stopped_worker_exits_only_once_its_task_is_done() {
        let mut worker = SimWorker {
            held: None,
            stopped: false,
        };
        worker.stop();
        assert!(worker.is_finished());
        let mut busy = SimWorker {
            held: Some(Held {
                task: 0,
                deadline: Duration::from_secs(1),
                resubmits: 0,
                backoff: Backoff::new(Duration::from_secs(20)),
                rng: StdRng::seed_from_u64(0),
                attempt_started: Duration::ZERO,
                next: Duration::ZERO,
                step: Step::Retry,
            }),
            stopped: false,
        };
        busy.stop();
        assert!(!busy.is_finished());
        assert!(busy.is_busy());
    }
}
