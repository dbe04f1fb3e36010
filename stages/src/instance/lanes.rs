//! Instances committed two at a time. On two cores one instance's LDE leaves a core idle in its
//! serial steps (reading a block out of the mapping, page faults, the small cross transforms);
//! a second instance in flight fills it, at the cost of a second instance's buffers (measured in
//! `docs/one-instance.md`, "Two instances at a time").
//!
//! The results are still taken in instance order, so the transcript, the checkpoints and the
//! proof bytes do not depend on which instance finished first.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::error::Error;

/// How many instances a pass works on at once.
pub const LANES: usize = 2;

struct Shared<I, R, C> {
    queue: I,
    ready: BTreeMap<usize, R>,
    next: usize,
    take: C,
    failed: Option<Error>,
}

/// Runs `work` on every item, at most [`LANES`] at a time, and hands each result to `take` in
/// item order as soon as it and every result before it are done. The first error stops the
/// lanes (work already started finishes) and is returned.
pub fn in_order<T: Send, R: Send>(
    items: Vec<T>,
    work: impl Fn(T) -> Result<R, Error> + Sync,
    take: impl FnMut(R) -> Result<(), Error> + Send,
) -> Result<(), Error> {
    let shared = Mutex::new(Shared {
        queue: items.into_iter().enumerate(),
        ready: BTreeMap::new(),
        next: 0,
        take,
        failed: None,
    });
    let lock = || {
        shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    rayon::scope(|scope| {
        for _ in 0..LANES {
            scope.spawn(|_| {
                loop {
                    let (i, item) = {
                        let mut s = lock();
                        if s.failed.is_some() {
                            return;
                        }
                        match s.queue.next() {
                            Some(next) => next,
                            None => return,
                        }
                    };
                    let result = work(item);
                    let mut s = lock();
                    let s = &mut *s;
                    match result {
                        Ok(r) => {
                            s.ready.insert(i, r);
                        }
                        Err(e) => {
                            s.failed.get_or_insert(e);
                            return;
                        }
                    }
                    while let Some(r) = s.ready.remove(&s.next) {
                        s.next += 1;
                        if let Err(e) = (s.take)(r) {
                            s.failed.get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    let s = shared
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match s.failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// [`in_order`] collecting the results, in item order.
pub fn map<T: Send, R: Send>(
    items: Vec<T>,
    work: impl Fn(T) -> Result<R, Error> + Sync,
) -> Result<Vec<R>, Error> {
    let mut out = Vec::with_capacity(items.len());
    in_order(items, work, |r| {
        out.push(r);
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn results_come_in_item_order_with_at_most_two_in_flight() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let mut seen = Vec::new();
        in_order(
            (0..40u64).collect(),
            |i| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // Later items finish sooner, so the lanes complete out of order.
                std::thread::sleep(std::time::Duration::from_micros(2000 - 40 * i));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(i * 3)
            },
            |r| {
                seen.push(r);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..40u64).map(|i| i * 3).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= LANES);
    }

    #[test]
    fn the_first_error_stops_the_work_and_is_returned() {
        let started = AtomicUsize::new(0);
        let failing = std::sync::atomic::AtomicBool::new(false);
        let mut taken = 0;
        let err = in_order(
            (0..100usize).collect(),
            |i| {
                started.fetch_add(1, Ordering::SeqCst);
                if i == 5 {
                    failing.store(true, Ordering::SeqCst);
                    return Err(Error::Config(format!("item {i}")));
                }
                // Items after the failing one take a while once it has failed, so that the
                // other lane cannot run through the whole queue before the error is recorded.
                if i > 5 {
                    while !failing.load(Ordering::SeqCst) {
                        std::thread::yield_now();
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Ok(i)
            },
            |_| {
                taken += 1;
                Ok(())
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("item 5"), "{err}");
        assert!(taken <= 5);
        assert!(started.load(Ordering::SeqCst) < 100);
    }
}
