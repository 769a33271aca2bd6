//! Runs of a sweep, a plan's trials or a run's replications on worker threads, handed
//! back in order as they finish, with a bound on what waits.
//!
//! [`in_order`] is the one parallel loop of the simulation commands: workers take the
//! next index (in order: equal runs keep every core busy to the last one), and the calling
//! thread receives each result in index order as soon as it and every earlier one are
//! done, so that it can write it and keep only what it needs. A worker does not start
//! index `i` while `i` is `window` or more ahead of the next result to be handed back, so
//! at most `window` results (running or finished) exist at once, whatever the number of
//! runs: memory is bounded by the runs at once, not by the runs in all.
//!
//! What a command writes depends only on the results and their order, never on the
//! number of threads or on which finished first.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};

/// What the workers and the caller share.
struct State<T> {
    /// The next index a worker takes.
    next: usize,
    /// The next index handed back.
    taken: usize,
    /// Finished, not yet handed back.
    done: BTreeMap<usize, T>,
    /// Stop taking work: the caller gave up (an error) or a worker panicked.
    stop: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A worker that panicked holds no lock while it works; a poisoned lock still has
        // consistent state (each critical section is a few assignments).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State<T>>) -> MutexGuard<'a, State<T>> {
        self.changed.wait(g).unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Stops the loop when dropped: a worker's only if it unwinds (so that the caller does not
/// wait for a result that will never come; the panic is re-raised when the threads are
/// joined), the caller's always (after an error, or a panic in `take`, the workers must
/// not wait for a window that will never move).
struct Stop<'a, T> {
    shared: &'a Shared<T>,
    only_on_panic: bool,
}

impl<T> Drop for Stop<'_, T> {
    fn drop(&mut self) {
        if !self.only_on_panic || std::thread::panicking() {
            self.shared.lock().stop = true;
            self.shared.changed.notify_all();
        }
    }
}

/// The number of worker threads for `--jobs` (0: every core), at most `n` and at least 1.
pub fn threads(jobs: usize, n: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    (if jobs == 0 { cores } else { jobs }).clamp(1, n.max(1))
}

/// The default window for `threads` workers: each may have three results finished and
/// waiting for an earlier, slower run while it runs the next. A waiting result is a
/// summary, far smaller than a running simulation, and a wider window keeps the workers
/// busy past a slow run.
pub fn window(threads: usize) -> usize {
    4 * threads.max(1)
}

/// Runs `work(i)` for every `i` in `0..n` on `threads` threads and calls `take(i, result)`
/// on the calling thread for each, in index order. At most `window` (≥ 1) results exist at
/// once. The first error of `take` (in index order) stops the workers (runs already
/// started finish and are dropped) and is returned.
pub fn in_order<T: Send, E>(
    threads: usize,
    n: usize,
    window: usize,
    work: impl Fn(usize) -> T + Sync,
    take: impl FnMut(usize, T) -> Result<(), E>,
) -> Result<(), E> {
    in_order_with(threads, n, window, || (), |(), i| work(i), take)
}

/// [`in_order`] with a state per worker, made by `init` when the worker starts and passed
/// to each of its runs (a sweep keeps there the last point it built, which the next
/// replication of the same point reuses).
pub fn in_order_with<S, T: Send, E>(
    threads: usize,
    n: usize,
    window: usize,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, usize) -> T + Sync,
    mut take: impl FnMut(usize, T) -> Result<(), E>,
) -> Result<(), E> {
    let window = window.max(1);
    let shared = Shared {
        state: Mutex::new(State { next: 0, taken: 0, done: BTreeMap::new(), stop: false }),
        changed: Condvar::new(),
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.clamp(1, n.max(1)))
            .map(|_| scope.spawn(|| worker(&shared, n, window, &mut init(), &work)))
            .collect();
        let outcome = {
            let _stop = Stop { shared: &shared, only_on_panic: false };
            hand_back(&shared, n, &mut take)
        };
        for w in workers {
            if let Err(panic) = w.join() {
                // The run's own message, not the scope's "a scoped thread panicked".
                std::panic::resume_unwind(panic);
            }
        }
        outcome
    })
}

/// A worker: takes the next index while it is within the window, runs it, files it.
fn worker<S, T>(
    shared: &Shared<T>,
    n: usize,
    window: usize,
    state: &mut S,
    work: &(impl Fn(&mut S, usize) -> T + Sync),
) {
    let _stop = Stop { shared, only_on_panic: true };
    loop {
        let i = {
            let mut g = shared.lock();
            while !g.stop && g.next < n && g.next >= g.taken + window {
                g = shared.wait(g);
            }
            if g.stop || g.next >= n {
                return;
            }
            g.next += 1;
            g.next - 1
        };
        let result = work(state, i);
        shared.lock().done.insert(i, result);
        shared.changed.notify_all();
    }
}

/// The caller's side: each result in index order, as soon as it is there.
fn hand_back<T, E>(
    shared: &Shared<T>,
    n: usize,
    take: &mut impl FnMut(usize, T) -> Result<(), E>,
) -> Result<(), E> {
    for i in 0..n {
        let result = {
            let mut g = shared.lock();
            loop {
                if let Some(r) = g.done.remove(&i) {
                    break r;
                }
                if g.stop {
                    // A worker panicked: joining the threads re-raises it.
                    return Ok(());
                }
                g = shared.wait(g);
            }
        };
        take(i, result)?;
        // Taken (and, by `take`, written and reduced): the window moves on.
        shared.lock().taken = i + 1;
        shared.changed.notify_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn results_come_in_order_whatever_the_threads() {
        for threads in [1, 2, 3, 8] {
            let mut seen = Vec::new();
            // Later indices finish first: uneven work.
            in_order::<_, ()>(
                threads,
                50,
                window(threads),
                |i| {
                    std::hint::black_box((0..(50 - i) * 2000).sum::<usize>());
                    i * i
                },
                |i, r| {
                    seen.push((i, r));
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(seen, (0..50).map(|i| (i, i * i)).collect::<Vec<_>>(), "{threads} threads");
        }
    }

    /// The window bounds what exists at once even when the first run is the slowest by
    /// far and the caller is slow to take.
    #[test]
    fn at_most_window_results_exist_at_once() {
        let alive = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        struct Held<'a>(&'a AtomicUsize);
        impl Drop for Held<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let (threads, win) = (4, 5);
        in_order::<_, ()>(
            threads,
            200,
            win,
            |i| {
                let now = alive.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                if i == 0 {
                    std::hint::black_box((0..3_000_000usize).sum::<usize>());
                }
                Held(&alive)
            },
            |_, held| {
                drop(held);
                Ok(())
            },
        )
        .unwrap();
        let most = most.load(Ordering::SeqCst);
        assert!(most <= win, "{most} results at once with a window of {win}");
        assert!(most >= 2, "the workers never ran side by side ({most})");
    }

    /// Each worker has its own state, made once: here the runs each worker did.
    #[test]
    fn each_worker_keeps_its_own_state() {
        let inits = AtomicUsize::new(0);
        let mut total = 0;
        in_order_with::<Vec<usize>, usize, ()>(
            3,
            60,
            window(3),
            || {
                inits.fetch_add(1, Ordering::SeqCst);
                Vec::new()
            },
            |mine, i| {
                mine.push(i);
                // Indices come to a worker in increasing order.
                assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
                mine.len()
            },
            |_, n| {
                total += usize::from(n == 1);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(inits.load(Ordering::SeqCst), 3);
        // Exactly one first run per worker that ran any (at least one did).
        assert!((1..=3).contains(&total), "{total}");
    }

    #[test]
    fn the_first_error_in_order_stops_the_loop() {
        let ran = AtomicUsize::new(0);
        let mut taken = Vec::new();
        let e = in_order(
            2,
            1000,
            4,
            |i| {
                ran.fetch_add(1, Ordering::SeqCst);
                i
            },
            |i, r| {
                taken.push(r);
                if i >= 3 { Err(format!("stop at {i}")) } else { Ok(()) }
            },
        );
        assert_eq!(e, Err("stop at 3".to_string()));
        assert_eq!(taken, vec![0, 1, 2, 3]);
        assert!(ran.load(Ordering::SeqCst) < 1000, "the workers did not stop");
    }

    #[test]
    #[should_panic(expected = "taking 5 failed")]
    fn a_panicking_caller_does_not_hang_the_workers() {
        let _ = in_order::<_, ()>(
            2,
            1000,
            2,
            |i| i,
            |i, _| {
                assert!(i != 5, "taking 5 failed");
                Ok(())
            },
        );
    }

    #[test]
    #[should_panic(expected = "run 7 failed")]
    fn a_panicking_run_does_not_hang_the_caller() {
        let _ = in_order::<_, ()>(
            2,
            100,
            4,
            |i| {
                assert!(i != 7, "run 7 failed");
                i
            },
            |_, _| Ok(()),
        );
    }
}
