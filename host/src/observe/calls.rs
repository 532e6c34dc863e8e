//! Counting calls to the solving API by call and result, with labels from fixed sets.
//!
//! The solver client records every HTTP exchange it completes here: which call it was
//! (`submit`, `poll`, `balance`) and how it ended (`ok`, `not_ready`, or the error class).
//! Both label sets are closed enums, so the series stay bounded whatever the provider answers.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::solver::ErrorClass;

/// Which API call was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiCall {
    /// `in.php`: a task submitted.
    Submit,
    /// `res.php?action=get`: an answer asked for.
    Poll,
    /// `res.php?action=getbalance`: the balance read.
    Balance,
}

impl ApiCall {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Poll => "poll",
            Self::Balance => "balance",
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallResult {
    /// A `status: 1` answer.
    Ok,
    /// `CAPCHA_NOT_READY`: the task is still being solved.
    NotReady,
    /// An error of this class: a provider code, an outage page, a network failure.
    Error(ErrorClass),
}

impl CallResult {
    /// The label value: `ok`, `not_ready`, or the error class's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NotReady => "not_ready",
            Self::Error(class) => class.as_str(),
        }
    }
}

/// The label set of one series: `call` and `result`.
pub type CallLabels = [(&'static str, &'static str); 2];

/// API calls by call and result; cheap to clone, every clone counts into the same family.
#[derive(Debug, Clone, Default)]
pub struct ApiCalls {
    family: Family<CallLabels, Counter>,
}

impl ApiCalls {
    /// Counts one call.
    pub fn record(&self, call: ApiCall, result: CallResult) {
        self.family.get_or_create(&labels(call, result)).inc();
    }

    /// Calls counted so far with this call and result.
    pub fn count(&self, call: ApiCall, result: CallResult) -> u64 {
        self.family
            .get(&labels(call, result))
            .map_or(0, |counter| counter.get())
    }

    /// The family, for the registry.
    pub fn family(&self) -> Family<CallLabels, Counter> {
        self.family.clone()
    }
}

fn labels(call: ApiCall, result: CallResult) -> CallLabels {
    [("call", call.as_str()), ("result", result.as_str())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_count_into_the_same_series() {
        let calls = ApiCalls::default();
        let clone = calls.clone();
        calls.record(ApiCall::Poll, CallResult::NotReady);
        clone.record(ApiCall::Poll, CallResult::NotReady);
        clone.record(ApiCall::Submit, CallResult::Error(ErrorClass::Transport));
        assert_eq!(calls.count(ApiCall::Poll, CallResult::NotReady), 2);
        assert_eq!(
            calls.count(ApiCall::Submit, CallResult::Error(ErrorClass::Transport)),
            1
        );
        assert_eq!(calls.count(ApiCall::Submit, CallResult::Ok), 0);
    }

    #[test]
    fn error_results_are_labelled_by_class() {
        let result = CallResult::Error(ErrorClass::SolverCapacity);
        assert_eq!(result.as_str(), "solver_capacity");
    }
}
