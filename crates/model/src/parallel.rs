//! CPU work of one big call split over the machine's cores.
//!
//! A `/batch` of 500 records spends milliseconds of one core in pure
//! functions (normalising the records it writes, rendering the records it
//! answers). While one call is in flight nothing else runs meanwhile, so the
//! other cores idle: [`map_split`] gives them a share, on scoped threads that
//! may borrow what the call holds.

use std::num::NonZeroUsize;

/// Chunks shorter than this are not worth a thread of their own.
pub const MIN_CHUNK: usize = 32;

/// `items.into_iter().map(f).collect()`, in order, with the items split into
/// one chunk per core (none shorter than [`MIN_CHUNK`]); the calling thread
/// maps the first chunk itself. A panic in `f` is raised again here.
pub fn map_split<T, U, F>(items: Vec<T>, f: F) -> Vec<U>
where
    T: Send,
    U: Send,
    F: Fn(T) -> U + Sync,
{
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let parts = cores.min(items.len() / MIN_CHUNK).max(1);
    if parts == 1 {
        return items.into_iter().map(f).collect();
    }

    let size = items.len().div_ceil(parts);
    let mut items = items.into_iter();
    let mine: Vec<T> = items.by_ref().take(size).collect();
    let chunks: Vec<Vec<T>> = (1..parts).map(|_| items.by_ref().take(size).collect()).collect();
    let f = &f;
    std::thread::scope(|scope| {
        let others: Vec<_> =
            chunks.into_iter().map(|chunk| scope.spawn(move || chunk.into_iter().map(f).collect::<Vec<U>>())).collect();
        let mut out: Vec<U> = mine.into_iter().map(f).collect();
        for other in others {
            out.extend(other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_order_and_every_item_at_any_length() {
        for len in [0, 1, MIN_CHUNK - 1, MIN_CHUNK, 2 * MIN_CHUNK + 1, 1000, 1001] {
            let items: Vec<usize> = (0..len).collect();
            let mapped = map_split(items, |i| i * 2);
            assert_eq!(mapped, (0..len).map(|i| i * 2).collect::<Vec<_>>(), "length {len}");
        }
    }

    #[test]
    fn borrows_what_the_caller_holds_and_uses_other_threads_for_big_inputs() {
        let caller = std::thread::current().id();
        let offset = String::from("x");
        let threads = map_split((0..500).collect(), |i: usize| (format!("{offset}{i}"), std::thread::current().id()));
        assert_eq!(threads[499].0, "x499");
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        assert_eq!(threads[0].1, caller, "the first chunk runs on the calling thread");
        if cores > 1 {
            assert_ne!(threads[499].1, caller, "the last chunk runs on another thread");
        }
    }

    #[test]
    #[should_panic(expected = "item 400")]
    fn a_panic_in_another_thread_is_raised_in_the_caller() {
        map_split((0..500).collect(), |i: usize| assert!(i != 400, "item 400"));
    }
}
