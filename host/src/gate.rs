//! The pool-wide submission gate.
//!
//! An account-class error (wrong key, banned IP) means no submission can succeed, so the first
//! worker to see one closes the gate for a while: tasks stay safely in the queue, the scaler
//! sees `submissions_paused`, and the gate reopens by itself to try again.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Why and until when submissions are paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub until: Instant,
    /// The provider's code that caused the pause, e.g. `ERROR_WRONG_USER_KEY`.
    pub code: String,
}

/// Shared by the dispatcher, every worker and the scaler.
#[derive(Debug)]
pub struct Gate {
    pause: watch::Sender<Option<Pause>>,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            pause: watch::Sender::new(None),
        }
    }
}

impl Gate {
    /// Closes the gate for `duration`; an already longer pause is kept.
    pub fn pause(&self, code: &str, duration: Duration) {
        let until = Instant::now() + duration;
        self.pause.send_if_modified(|current| match current {
            Some(p) if p.until >= until => false,
            _ => {
                *current = Some(Pause {
                    until,
                    code: code.to_owned(),
                });
                true
            }
        });
    }

    /// The pause in force now, if any.
    pub fn current(&self) -> Option<Pause> {
        let now = Instant::now();
        self.pause.borrow().clone().filter(|p| p.until > now)
    }

    /// Waits until no pause is in force.
    pub async fn wait_open(&self) {
        let mut changes = self.pause.subscribe();
        while let Some(pause) = self.current() {
            tokio::select! {
                _ = tokio::time::sleep_until(pause.until) => {}
                _ = changes.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_pause_opens_by_itself_when_it_ends() {
        let gate = Gate::default();
        assert_eq!(gate.current(), None);
        gate.pause("ERROR_WRONG_USER_KEY", Duration::from_secs(60));
        assert_eq!(
            gate.current().map(|p| p.code).as_deref(),
            Some("ERROR_WRONG_USER_KEY")
        );
        let start = Instant::now();
        gate.wait_open().await;
        assert_eq!(start.elapsed(), Duration::from_secs(60));
        assert_eq!(gate.current(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_pause_does_not_cut_a_longer_one() {
        let gate = Gate::default();
        gate.pause("IP_BANNED", Duration::from_secs(120));
        gate.pause("ERROR_WRONG_USER_KEY", Duration::from_secs(10));
        assert_eq!(gate.current().map(|p| p.code).as_deref(), Some("IP_BANNED"));
    }
}
