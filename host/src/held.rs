//! The tasks this host holds in memory, and the claims that let it give them up.
//!
//! Every task the dispatcher takes into the processing list is claimed here until its worker
//! has written its outcome. Two things need that record:
//!
//! - the dispatcher's audit: a take whose reply was lost (Redis went away mid-command) leaves a
//!   task in the processing list that nobody holds; comparing the list with the claims finds
//!   it, and it goes back to the queue;
//! - the heartbeat: when another host reclaimed this host's tasks (its heartbeat lapsed), every
//!   claim is marked lost, and workers stop working on tasks that are no longer theirs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio_util::sync::CancellationToken;

/// Every claim of one host.
#[derive(Debug, Default)]
pub struct Held {
    next: AtomicU64,
    claims: Mutex<HashMap<u64, Entry>>,
}

#[derive(Debug)]
struct Entry {
    raw: Vec<u8>,
    lost: CancellationToken,
}

/// One task held by this host; dropping it ends the claim.
#[derive(Debug)]
pub struct Claim {
    ticket: u64,
    held: Arc<Held>,
    lost: CancellationToken,
}

impl Held {
    /// Records that this host holds `raw` from now on.
    pub fn claim(self: &Arc<Self>, raw: &[u8]) -> Claim {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let lost = CancellationToken::new();
        let entry = Entry {
            raw: raw.to_vec(),
            lost: lost.clone(),
        };
        self.lock().insert(ticket, entry);
        Claim {
            ticket,
            held: self.clone(),
            lost,
        }
    }

    /// How many copies of each raw task are claimed now.
    pub fn snapshot(&self) -> HashMap<Vec<u8>, usize> {
        let mut counts = HashMap::new();
        for entry in self.lock().values() {
            *counts.entry(entry.raw.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Marks every claim lost (another host reclaimed them); returns how many there were.
    pub fn lose_all(&self) -> usize {
        let claims = self.lock();
        for entry in claims.values() {
            entry.lost.cancel();
        }
        claims.len()
    }

    /// Tasks claimed now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        self.claims.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Claim {
    /// Cancelled when the task stopped being this host's.
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.held.lock().remove(&self.ticket);
    }
}

/// Entries of `listed` that no claim in `claimed` accounts for, counting duplicates.
pub fn unclaimed(listed: Vec<Vec<u8>>, mut claimed: HashMap<Vec<u8>, usize>) -> Vec<Vec<u8>> {
    listed
        .into_iter()
        .filter(|raw| match claimed.get_mut(raw) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_claim_is_forgotten() {
        let held = Arc::new(Held::default());
        let a = held.claim(b"a");
        let b = held.claim(b"a");
        assert_eq!(held.snapshot().get(b"a".as_slice()), Some(&2));
        drop(a);
        assert_eq!(held.snapshot().get(b"a".as_slice()), Some(&1));
        drop(b);
        assert!(held.is_empty());
    }

    #[test]
    fn losing_all_cancels_every_claim() {
        let held = Arc::new(Held::default());
        let claims = [held.claim(b"x"), held.claim(b"y")];
        assert_eq!(held.lose_all(), 2);
        assert!(claims.iter().all(|c| c.lost().is_cancelled()));
    }

    #[test]
    fn unclaimed_counts_duplicates() {
        let listed = vec![b"a".to_vec(), b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
        let claimed = HashMap::from([(b"a".to_vec(), 1), (b"c".to_vec(), 1)]);
        assert_eq!(
            unclaimed(listed, claimed),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
    }
}
