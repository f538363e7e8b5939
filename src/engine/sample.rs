//! Randomness for the engine, from one generator: the key samples of `verify: "sample"` (a
//! reservoir each copy worker keeps, and the draw across tasks), the jitter of retries and
//! webhook backoff, and which task a worker tries first.

use crate::domain::Cursor;

/// Keys longer than this are left out of samples, so that a task record with a full sample
/// (at most `MAX_SAMPLE_SIZE` keys) stays well under DynamoDB's 400 KB item limit.
const MAX_SAMPLED_KEY_BYTES: usize = 256;
/// A small, fast pseudo-random generator (SplitMix64), seeded from the OS through UUID v4.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator with a random seed.
    pub(crate) fn new() -> Self {
        Self(uuid::Uuid::new_v4().as_u64_pair().0)
    }

    /// A generator with a fixed seed (tests).
    #[cfg(test)]
    pub(crate) fn seeded(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A number in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The reservoir after `keys` follow the `seen` keys `sample` was drawn from: each of the
/// `seen + keys.len()` keys is in it with the same probability (Vitter's algorithm R).
pub(crate) fn reservoir(
    sample: &[Cursor],
    seen: u64,
    keys: &[Cursor],
    size: usize,
    rng: &mut Rng,
) -> Vec<Cursor> {
    let mut out = sample.to_vec();
    for (i, key) in keys.iter().enumerate() {
        if matches!(key, Cursor::Str(s) if s.len() > MAX_SAMPLED_KEY_BYTES) {
            continue;
        }
        let position = seen + i as u64;
        if out.len() < size {
            out.push(key.clone());
        } else {
            let j = rng.below(position + 1) as usize;
            if j < size {
                out[j] = key.clone();
            }
        }
    }
    out
}

/// Draws `size` keys from the tasks' samples, each task in proportion to the entities it
/// copied; `(copied, sample)` per task.
pub(crate) fn draw(tasks: &[(u64, Vec<Cursor>)], size: usize, rng: &mut Rng) -> Vec<Cursor> {
    let mut pools: Vec<(u64, Vec<Cursor>)> = tasks
        .iter()
        .filter(|(n, s)| *n > 0 && !s.is_empty())
        .cloned()
        .collect();
    let mut out = Vec::new();
    while out.len() < size {
        pools.retain(|(_, s)| !s.is_empty());
        let total: u64 = pools.iter().map(|(n, _)| n).sum();
        if total == 0 {
            break;
        }
        let mut at = rng.below(total);
        let pick = pools
            .iter()
            .position(|(n, _)| {
                if at < *n {
                    return true;
                }
                at -= n;
                false
            })
            .unwrap_or(0);
        let pool = &mut pools[pick].1;
        let i = rng.below(pool.len() as u64) as usize;
        out.push(pool.swap_remove(i));
    }
    out
}

/// A number in `[0, 1)` from a freshly seeded generator: for jitter.
pub(crate) fn unit() -> f64 {
    Rng::new().unit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservoir_keeps_every_key_with_equal_chance() {
        // 100 keys through a reservoir of 10, in pages of 7, 20,000 times: each key is kept
        // about 2,000 times.
        let keys: Vec<Cursor> = (0..100).map(Cursor::Int).collect();
        let mut hits = vec![0u32; 100];
        let mut rng = Rng::seeded(7);
        for _ in 0..20_000 {
            let mut sample = Vec::new();
            for (n, page) in keys.chunks(7).enumerate() {
                sample = reservoir(&sample, (n * 7) as u64, page, 10, &mut rng);
            }
            assert_eq!(sample.len(), 10);
            for k in sample {
                let Cursor::Int(i) = k else { unreachable!() };
                hits[i as usize] += 1;
            }
        }
        let (lo, hi) = (hits.iter().min().unwrap(), hits.iter().max().unwrap());
        assert!(
            *lo > 1_700 && *hi < 2_300,
            "kept between {lo} and {hi} times"
        );
    }

    #[test]
    fn long_keys_stay_out_of_samples() {
        let long = Cursor::Str("x".repeat(MAX_SAMPLED_KEY_BYTES + 1));
        let s = reservoir(
            &[],
            0,
            &[long, Cursor::Str("k".into())],
            5,
            &mut Rng::seeded(1),
        );
        assert_eq!(s, vec![Cursor::Str("k".into())]);
    }

    #[test]
    fn draws_weigh_tasks_by_what_they_copied_and_never_repeat() {
        let big: Vec<Cursor> = (0..50).map(Cursor::Int).collect();
        let small: Vec<Cursor> = (1000..1050).map(Cursor::Int).collect();
        let mut from_big = 0;
        let mut rng = Rng::seeded(3);
        for _ in 0..200 {
            let keys = draw(
                &[(9_000, big.clone()), (1_000, small.clone())],
                10,
                &mut rng,
            );
            let mut unique = keys.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), 10);
            from_big += keys
                .iter()
                .filter(|k| matches!(k, Cursor::Int(i) if *i < 1000))
                .count();
        }
        assert!(
            (1_650..=1_950).contains(&from_big),
            "{from_big} of 2,000 from the big task"
        );
        assert_eq!(draw(&[(5, vec![Cursor::Int(1)])], 10, &mut rng).len(), 1);
    }
}
