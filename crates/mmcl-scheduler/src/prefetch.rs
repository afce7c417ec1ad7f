//! Loading the next training batch while the current one trains.
//!
//! A batch depends only on its indices, the task seed and the epoch (see
//! `mmcl_data::loader::sample_rng`), so producing it on another thread changes nothing in
//! the results; it only hides the loader's time behind the step (on a GPU, most of it).

use std::sync::mpsc::sync_channel;

/// Calls `consume(position, item, produce(item))` for every item, in order.
///
/// With `ahead > 0` a scoped background thread runs `produce` up to `ahead` items in advance;
/// with `ahead == 0` everything runs on the calling thread. The first error (from either
/// side) stops the loop and is returned; the producer stops as soon as the consumer does.
pub(crate) fn for_each_prefetched<I, T, E>(
    items: &[I],
    ahead: usize,
    produce: impl Fn(&I) -> Result<T, E> + Sync,
    mut consume: impl FnMut(usize, &I, T) -> Result<(), E>,
) -> Result<(), E>
where
    I: Sync,
    T: Send,
    E: Send,
{
    if ahead == 0 {
        for (pos, item) in items.iter().enumerate() {
            let value = produce(item)?;
            consume(pos, item, value)?;
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        // One result waits in the channel while the producer computes the next: `ahead`
        // results are ready or in the making at any time.
        let (tx, rx) = sync_channel::<Result<T, E>>(ahead - 1);
        let produce = &produce;
        scope.spawn(move || {
            for item in items {
                let result = produce(item);
                let failed = result.is_err();
                // A send error means the consumer stopped: stop too.
                if tx.send(result).is_err() || failed {
                    break;
                }
            }
        });
        for (pos, item) in items.iter().enumerate() {
            // The producer only hangs up early after sending an error or by panicking; a
            // panic is re-raised when the scope joins it.
            let Ok(value) = rx.recv() else { break };
            consume(pos, item, value?)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn run(
        ahead: usize,
        fail_produce_at: usize,
        fail_consume_at: usize,
    ) -> (Result<(), String>, Vec<usize>, usize) {
        let items: Vec<usize> = (0..20).collect();
        let produced = AtomicUsize::new(0);
        let mut seen = Vec::new();
        let r = for_each_prefetched(
            &items,
            ahead,
            |&i| {
                produced.fetch_add(1, Ordering::SeqCst);
                if i == fail_produce_at {
                    Err(format!("produce {i}"))
                } else {
                    Ok(i * 10)
                }
            },
            |pos, &i, v| {
                assert_eq!(pos, i);
                assert_eq!(v, i * 10);
                if i == fail_consume_at {
                    return Err(format!("consume {i}"));
                }
                seen.push(i);
                Ok(())
            },
        );
        (r, seen, produced.load(Ordering::SeqCst))
    }

    #[test]
    fn same_order_and_values_with_and_without_prefetch() {
        for ahead in [0, 1, 3] {
            let (r, seen, produced) = run(ahead, usize::MAX, usize::MAX);
            assert!(r.is_ok());
            assert_eq!(seen, (0..20).collect::<Vec<_>>());
            assert_eq!(produced, 20);
        }
    }

    #[test]
    fn errors_stop_both_sides() {
        for ahead in [0, 1, 2] {
            let (r, seen, produced) = run(ahead, 5, usize::MAX);
            assert_eq!(r.unwrap_err(), "produce 5");
            assert_eq!(seen, (0..5).collect::<Vec<_>>());
            assert_eq!(produced, 6, "nothing is produced after an error");

            let (r, seen, produced) = run(ahead, usize::MAX, 7);
            assert_eq!(r.unwrap_err(), "consume 7");
            assert_eq!(seen, (0..7).collect::<Vec<_>>());
            assert!(
                produced <= 8 + ahead,
                "the producer runs at most `ahead` past the consumer: {produced}"
            );
        }
    }
}
