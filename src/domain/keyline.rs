//! Where to cut a key range: a search for the key with a given share of a range's entities
//! before it (half, or a k-th for a cut in several pieces), from counts of key ranges, for
//! Int64 and VarChar keys alike.
//!
//! The search is pure: [`CutSearch`] proposes a key, the engine counts the entities from
//! the range's start up to it (one `count(*)` with a key-range filter, which the source answers
//! without reading vectors), and the search takes the count and proposes the next key, until a
//! count falls in the band around the target. Keys are placed on a number line to interpolate
//! between two of them: Int64 keys are numbers already; VarChar keys are read, after the
//! bracket's common prefix, as a few digits over the alphabet of the keys seen (so that hex ids
//! or zero-padded numbers interpolate as well as integers do). Interpolation is only a guess:
//! the counts decide, so a skewed key distribution costs more counts, never a wrong cut.

use super::task::Cursor;

/// The most significant bits of a place on the line (an f64 holds 53 exactly).
const PLACE_BITS: f64 = 52.0;
/// The most counts one search takes before it settles for the best cut so far.
const MAX_STEPS: u32 = 14;

/// A number line for the keys of one bracket.
#[derive(Debug, Clone, PartialEq)]
enum Frame {
    /// Int64 keys: the key itself.
    Int,
    /// VarChar keys after `prefix`: digit 0 is the string's end, digit `d` the character
    /// `low + d - 1`.
    Str {
        prefix: String,
        low: u32,
        base: f64,
        digits: i32,
    },
}

impl Frame {
    /// The frame for keys between `lo` and `hi` (`None`: unbounded), using the alphabet of the
    /// keys `seen` as well.
    fn new(lo: Option<&Cursor>, hi: Option<&Cursor>, seen: &[Cursor]) -> Self {
        // Everything strictly between lo and hi shares their common prefix.
        let prefix = match (lo, hi) {
            (Some(Cursor::Str(a)), Some(Cursor::Str(b))) => common_prefix(a, b),
            _ => String::new(),
        };
        Self::with_prefix(prefix, lo.into_iter().chain(hi).chain(seen))
    }

    /// The frame that extrapolates past two keys, `a` below `b`: their common prefix less its
    /// last character, so that the line runs on past where they part (`doc_00001999` to
    /// `doc_00050000`).
    fn past(a: &Cursor, b: &Cursor, seen: &[Cursor]) -> Self {
        let mut prefix = match (a, b) {
            (Cursor::Str(a), Cursor::Str(b)) => common_prefix(a, b),
            _ => String::new(),
        };
        prefix.pop();
        Self::with_prefix(prefix, [a, b].into_iter().chain(seen))
    }

    /// The frame after `prefix`, over the alphabet of `keys` (an Int frame for Int keys).
    fn with_prefix<'k>(prefix: String, keys: impl Iterator<Item = &'k Cursor>) -> Self {
        let strings: Vec<&str> = keys
            .filter_map(|k| match k {
                Cursor::Str(s) => Some(s.as_str()),
                Cursor::Int(_) => None,
            })
            .collect();
        if strings.is_empty() {
            return Frame::Int;
        }
        let chars = strings
            .iter()
            .map(|s| s.strip_prefix(prefix.as_str()).unwrap_or(""))
            .flat_map(|s| s.chars().take(16))
            .map(|c| c as u32);
        let (mut low, mut high) = (u32::MAX, 0);
        for c in chars {
            low = low.min(c);
            high = high.max(c);
        }
        if low > high {
            (low, high) = (0x30, 0x7a);
        }
        // Printable characters only: a cut is written into a filter expression.
        let low = low.max(0x20);
        let high = high.max(low);
        let base = f64::from(high - low + 2);
        Frame::Str {
            prefix,
            low,
            base,
            // As many characters as a place holds exactly.
            digits: ((PLACE_BITS / base.log2()).floor() as i32).clamp(1, 16),
        }
    }

    /// The key's place on the line.
    fn place(&self, key: &Cursor) -> f64 {
        match (self, key) {
            (Frame::Int, Cursor::Int(v)) => *v as f64,
            (
                Frame::Str {
                    prefix,
                    low,
                    base,
                    digits,
                },
                Cursor::Str(s),
            ) => {
                let rest = s.strip_prefix(prefix.as_str()).unwrap_or(s);
                let mut chars = rest.chars();
                (0..*digits).fold(0.0, |x, _| {
                    let d = match chars.next() {
                        None => 0.0,
                        Some(c) => (f64::from((c as u32).saturating_sub(*low)) + 1.0)
                            .clamp(1.0, base - 1.0),
                    };
                    x * base + d
                })
            }
            _ => 0.0,
        }
    }

    /// The end of the line: past every key (for an unbounded bracket).
    fn end(&self) -> f64 {
        match self {
            Frame::Int => i64::MAX as f64,
            Frame::Str { base, digits, .. } => base.powi(*digits),
        }
    }

    /// The key at place `x` (rounded to one the frame can write).
    fn key(&self, x: f64) -> Cursor {
        match self {
            Frame::Int => Cursor::Int(x.round().clamp(i64::MIN as f64, i64::MAX as f64) as i64),
            Frame::Str {
                prefix,
                low,
                base,
                digits,
            } => {
                let mut x = x.clamp(0.0, self.end() - 1.0).floor();
                let mut place = vec![0u32; *digits as usize];
                for d in place.iter_mut().rev() {
                    *d = (x % base) as u32;
                    x = (x / base).floor();
                }
                let mut out = prefix.clone();
                for d in place {
                    if d == 0 {
                        break;
                    }
                    let mut c = low + d - 1;
                    if (0xD800..0xE000).contains(&c) {
                        c = 0xE000;
                    }
                    out.push(char::from_u32(c).unwrap_or('~'));
                }
                Cursor::Str(out)
            }
        }
    }
}

fn common_prefix(a: &str, b: &str) -> String {
    a.chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

/// What the search asks the source next.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// The entities from the range's start up to this key (`count(*)`).
    Count(Cursor),
    /// A page of keys after this one, in key order (key-only): where the next keys are, after
    /// a stretch of the line that held none (keys in clusters far apart).
    KeysAfter(Cursor),
}

/// A key and how many entities of the range lie after the range's start up to it.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    key: Cursor,
    count: u64,
}

/// The search for a key that cuts a range of `total` entities at a target count (the middle,
/// unless told), within a band around it, leaving at least `guard` on each side (see the
/// module).
#[derive(Debug, Clone)]
pub struct CutSearch {
    target: u64,
    band: (u64, u64),
    guard: u64,
    total: u64,
    /// The start of the range (exclusive), count 0.
    start: Option<Cursor>,
    /// The last key known below the target, and the first above it.
    below: Option<Point>,
    above: Option<Point>,
    /// A second point below, for the density an unbounded bracket is extrapolated from.
    anchor: Option<Point>,
    /// Keys read, for the alphabet of VarChar keys.
    seen: Vec<Cursor>,
    /// Which side the last two counts moved (to bisect when interpolation stalls).
    moves: (Option<bool>, Option<bool>),
    steps: u32,
    /// How far past the last extrapolation the next one reaches (doubled on every undershoot).
    reach: f64,
    /// Whether the last count found no entity past the point below (an empty stretch).
    snap: bool,
    best: Option<Point>,
}

impl CutSearch {
    /// A search over the range after `start` up to `end` (`None`: to the partition's end) that
    /// holds `total` entities, whose first keys are `first` (read in key order after `start`).
    /// Each half keeps at least `guard` entities.
    pub fn new(
        start: Option<Cursor>,
        end: Option<Cursor>,
        total: u64,
        first: &[Cursor],
        guard: u64,
    ) -> Self {
        let target = total / 2;
        let slack = (total / 8).max(1);
        let band = (
            target.saturating_sub(slack).max(guard),
            (target + slack).min(total.saturating_sub(guard)),
        );
        let mut s = Self {
            target,
            band,
            guard,
            total,
            start,
            below: None,
            above: end.map(|key| Point { key, count: total }),
            anchor: None,
            seen: first.to_vec(),
            moves: (None, None),
            steps: 0,
            reach: 1.0,
            snap: false,
            best: None,
        };
        if let (Some(first_key), Some(last)) = (first.first(), first.last()) {
            if first.len() > 1 {
                s.anchor = Some(Point {
                    key: first_key.clone(),
                    count: 1,
                });
            }
            s.below = Some(Point {
                key: last.clone(),
                count: first.len() as u64,
            });
        }
        s
    }

    /// The same search for a cut after `target` entities, within `slack` of it.
    pub fn at(mut self, target: u64, slack: u64) -> Self {
        self.target = target;
        self.band = (
            target.saturating_sub(slack).max(self.guard),
            (target + slack).min(self.total.saturating_sub(self.guard)),
        );
        self
    }

    /// Whether there is a cut at all: a band that leaves `guard` entities on each side.
    pub fn possible(&self) -> bool {
        self.band.0 <= self.band.1 && self.total >= 2 * self.guard
    }

    /// The cut read off the first keys, when they reach into the band, with the entities up
    /// to it.
    pub fn exact(&self) -> Option<(Cursor, u64)> {
        // The key nearest the middle among the first keys, if they reach into the band.
        let n = usize::try_from(self.target.max(1))
            .ok()?
            .min(self.seen.len());
        let reached = n as u64 >= self.band.0 && n as u64 <= self.band.1 && n > 0;
        (self.possible() && reached).then(|| (self.seen[n - 1].clone(), n as u64))
    }

    /// What to ask the source next, or `None` when the search is over.
    pub fn probe(&mut self) -> Option<Probe> {
        if !self.possible() || self.steps >= MAX_STEPS {
            return None;
        }
        self.steps += 1;
        if std::mem::take(&mut self.snap) {
            if let Some(below) = &self.below {
                return Some(Probe::KeysAfter(below.key.clone()));
            }
        }
        self.candidate().map(Probe::Count)
    }

    /// The next key to count: interpolated between the points around the target, or
    /// extrapolated past the highest point below it while none is known above.
    fn candidate(&mut self) -> Option<Cursor> {
        let lo = self.below.as_ref().map(|p| &p.key).or(self.start.as_ref());
        let hi = self.above.as_ref().map(|p| &p.key);
        let frame = match (&self.above, &self.anchor, &self.below) {
            (None, Some(a), Some(b)) => Frame::past(&a.key, &b.key, &self.seen),
            _ => Frame::new(lo, hi, &self.seen),
        };
        let lo_place = lo.map_or_else(
            || match frame {
                Frame::Int => i64::MIN as f64,
                Frame::Str { .. } => 0.0,
            },
            |k| frame.place(k),
        );
        let lo_count = self.below.as_ref().map_or(0, |p| p.count) as f64;
        let stalled = self.moves.0.is_some() && self.moves.0 == self.moves.1;
        let x = match &self.above {
            Some(above) => {
                let hi_place = frame.place(&above.key);
                let share = if stalled {
                    0.5
                } else {
                    (self.target as f64 - lo_count) / (above.count as f64 - lo_count).max(1.0)
                };
                lo_place + (hi_place - lo_place) * share.clamp(0.05, 0.95)
            }
            None => {
                // Unbounded: extrapolate the density between the two highest points below.
                let density = match (&self.anchor, &self.below) {
                    (Some(a), Some(b)) if frame.place(&b.key) > frame.place(&a.key) => {
                        (b.count - a.count) as f64 / (frame.place(&b.key) - frame.place(&a.key))
                    }
                    _ => 0.0,
                };
                if density > 0.0 {
                    let step = (self.target as f64 - lo_count) / density * self.reach;
                    self.reach *= 2.0;
                    lo_place + step
                } else {
                    lo_place + (frame.end() - lo_place) / 2.0
                }
            }
        };
        let hi_place = hi.map_or(frame.end(), |h| frame.place(h));
        let inside = |key: &Cursor| lo.is_none_or(|l| key > l) && hi.is_none_or(|h| key < h);
        // At least one step of the line past the point below (a key the frame writes rounds
        // down), and short of the point above.
        for x in [
            x.max(lo_place + 1.0).min(hi_place - 1.0),
            lo_place + (hi_place - lo_place) / 2.0,
            lo_place + 1.0,
        ] {
            let key = frame.key(x);
            if inside(&key) {
                return Some(key);
            }
        }
        None
    }

    /// Takes the count up to `key` (from the range's start); returns the cut, and the count,
    /// when it is in the band.
    pub fn observe(&mut self, key: Cursor, count: u64) -> Option<(Cursor, u64)> {
        let point = Point { key, count };
        if count >= self.guard && count <= self.total.saturating_sub(self.guard) {
            let better = self
                .best
                .as_ref()
                .is_none_or(|b| count.abs_diff(self.target) < b.count.abs_diff(self.target));
            if better {
                self.best = Some(point.clone());
            }
        }
        if (self.band.0..=self.band.1).contains(&count) {
            return Some((point.key, count));
        }
        let up = count < self.target;
        // A point outside the bracket already known tells nothing new.
        let known = if up {
            self.below.as_ref().is_some_and(|b| count < b.count)
        } else {
            self.above.as_ref().is_some_and(|a| count > a.count)
        };
        if known {
            return None;
        }
        self.moves = (self.moves.1, Some(up));
        if up {
            // Nothing between the last point below and this one: where do the keys go on?
            self.snap = self.below.as_ref().is_some_and(|b| b.count == count);
            if !self.snap {
                self.anchor = self.below.take();
            }
            self.below = Some(point);
        } else {
            self.above = Some(point);
            self.reach = 1.0;
        }
        None
    }

    /// Takes the keys read after `after` (the point below; in key order): they continue the
    /// count from there. Returns the cut when the band falls among them.
    pub fn observe_keys(&mut self, after: &Cursor, keys: &[Cursor]) -> Option<(Cursor, u64)> {
        let from = self
            .below
            .as_ref()
            .filter(|b| &b.key == after)
            .map(|b| b.count)?;
        let (first, last) = (keys.first()?, keys.last()?);
        self.seen.extend(keys.iter().take(64).cloned());
        if let Some(i) = (self.band.0.max(from + 1) - from - 1
            ..=self.band.1.saturating_sub(from + 1))
            .next()
            .filter(|i| (*i as usize) < keys.len())
        {
            let count = from + i + 1;
            return Some((keys[i as usize].clone(), count));
        }
        self.anchor = Some(Point {
            key: first.clone(),
            count: from + 1,
        });
        self.below = Some(Point {
            key: last.clone(),
            count: from + keys.len() as u64,
        });
        self.reach = 1.0;
        None
    }

    /// The best cut counted so far (both halves at least `guard`), and the entities before it.
    pub fn best(&self) -> Option<(Cursor, u64)> {
        self.best.as_ref().map(|p| (p.key.clone(), p.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against `keys` (sorted), counting as a server would.
    fn run(keys: &[Cursor], start: usize, first: usize, guard: u64) -> (Option<Cursor>, u32) {
        let rest = &keys[start..];
        let total = rest.len() as u64;
        let start_key = start.checked_sub(1).map(|i| keys[i].clone());
        let mut s = CutSearch::new(
            start_key,
            None,
            total,
            &rest[..first.min(rest.len())],
            guard,
        );
        if let Some((k, _)) = s.exact() {
            return (Some(k), 0);
        }
        let mut counts = 0;
        while let Some(probe) = s.probe() {
            counts += 1;
            let found = match probe {
                Probe::Count(k) => {
                    let n = rest.iter().filter(|r| **r <= k).count() as u64;
                    s.observe(k, n)
                }
                Probe::KeysAfter(k) => {
                    let page: Vec<Cursor> = rest
                        .iter()
                        .filter(|r| **r > k)
                        .take(16_384)
                        .cloned()
                        .collect();
                    s.observe_keys(&k, &page)
                }
            };
            if let Some((cut, n)) = found {
                assert_eq!(n, rest.iter().filter(|r| **r <= cut).count() as u64);
                return (Some(cut), counts);
            }
        }
        (s.best().map(|(k, _)| k), counts)
    }

    fn balanced(keys: &[Cursor], start: usize, cut: &Cursor) -> f64 {
        let rest = &keys[start..];
        rest.iter().filter(|k| *k <= cut).count() as f64 / rest.len() as f64
    }

    #[test]
    fn sequential_int_keys_are_cut_in_the_middle_in_a_few_counts() {
        let keys: Vec<Cursor> = (0..1_000_000).map(Cursor::Int).collect();
        let (cut, counts) = run(&keys, 200_000, 16_384, 32_769);
        let cut = cut.expect("a cut");
        let share = balanced(&keys, 200_000, &cut);
        assert!((0.375..=0.625).contains(&share), "{share}");
        assert!(counts <= 3, "{counts} counts");
    }

    #[test]
    fn random_and_skewed_int_keys_are_cut_within_the_band() {
        // A 64-bit hash-like spread, and two dense clusters far apart.
        let mut spread: Vec<Cursor> = (0..200_000u64)
            .map(|i| Cursor::Int((i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1) as i64))
            .collect();
        spread.sort();
        let (cut, counts) = run(&spread, 0, 16_384, 1_000);
        let share = balanced(&spread, 0, &cut.unwrap());
        assert!((0.375..=0.625).contains(&share), "{share} after {counts}");
        let mut clusters: Vec<Cursor> = (0..50_000).map(Cursor::Int).collect();
        clusters.extend((0..150_000).map(|i| Cursor::Int(1_000_000_000_000 + i)));
        let (cut, counts) = run(&clusters, 0, 16_384, 1_000);
        let share = balanced(&clusters, 0, &cut.unwrap());
        assert!((0.375..=0.625).contains(&share), "{share} after {counts}");
        assert!(counts <= MAX_STEPS);
    }

    #[test]
    fn varchar_keys_hex_ids_and_padded_numbers_are_cut_too() {
        let mut hex: Vec<Cursor> = (0..100_000u64)
            .map(|i| Cursor::Str(format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15))))
            .collect();
        hex.sort();
        let (cut, counts) = run(&hex, 10_000, 2_000, 1_000);
        let share = balanced(&hex, 10_000, &cut.unwrap());
        assert!((0.375..=0.625).contains(&share), "{share} after {counts}");
        let padded: Vec<Cursor> = (0..100_000)
            .map(|i| Cursor::Str(format!("doc_{i:08}")))
            .collect();
        let (cut, counts) = run(&padded, 0, 2_000, 1_000);
        let share = balanced(&padded, 0, &cut.unwrap());
        assert!((0.375..=0.625).contains(&share), "{share} after {counts}");
        // Quotes, non-ASCII characters: the cut is a string the frame could write.
        let odd: Vec<Cursor> = (0..20_000)
            .map(|i| Cursor::Str(format!("ключ\"{i:06}")))
            .collect();
        let (cut, _) = run(&odd, 0, 500, 100);
        let share = balanced(&odd, 0, &cut.unwrap());
        assert!((0.375..=0.625).contains(&share), "{share}");
    }

    #[test]
    fn the_first_keys_answer_a_small_range_and_a_tiny_one_is_not_cut() {
        let keys: Vec<Cursor> = (0..10_000).map(Cursor::Int).collect();
        let (cut, counts) = run(&keys, 0, 16_384, 100);
        assert_eq!((cut, counts), (Some(Cursor::Int(4_999)), 0));
        let s = CutSearch::new(None, None, 100, &keys[..100], 60);
        assert!(!s.possible() && s.exact().is_none());
    }

    #[test]
    fn cuts_at_equal_shares_follow_one_another() {
        // As the engine cuts a remainder into four: each search starts from the cut before it.
        let keys: Vec<Cursor> = (0..20_000).map(|i| Cursor::Int(i * 7)).collect();
        let total = keys.len() as u64;
        let mut cuts: Vec<(Cursor, u64)> = Vec::new();
        for piece in 1..4u64 {
            let mut s = CutSearch::new(None, None, total, &keys[..5_001], 1_001)
                .at(total * piece / 4, total / 32);
            if let Some((k, n)) = cuts.last() {
                let _ = s.observe(k.clone(), *n);
            }
            let mut found = s.exact();
            while found.is_none() {
                let Some(Probe::Count(k)) = s.probe() else {
                    break;
                };
                let n = keys.iter().filter(|r| **r <= k).count() as u64;
                found = s.observe(k, n);
            }
            cuts.push(found.expect("a cut"));
        }
        let counts: Vec<u64> = cuts.iter().map(|c| c.1).collect();
        for (count, want) in counts.iter().zip([5_000, 10_000, 15_000]) {
            assert!(count.abs_diff(want) <= total / 32, "{counts:?}");
        }
        assert!(cuts.windows(2).all(|w| w[0].0 < w[1].0), "{cuts:?}");
    }

    #[test]
    fn a_bounded_range_is_searched_between_its_ends() {
        let keys: Vec<Cursor> = (0..400_000).map(|i| Cursor::Int(i * 3)).collect();
        // The range (keys[99_999], keys[299_999]]: 200,000 entities.
        let start = keys[99_999].clone();
        let end = keys[299_999].clone();
        let range = &keys[100_000..300_000];
        let mut s = CutSearch::new(Some(start), Some(end), 200_000, &range[..1_000], 20_000);
        let mut cut = None;
        while let Some(Probe::Count(k)) = s.probe() {
            let n = range.iter().filter(|r| **r <= k).count() as u64;
            if let Some((c, _)) = s.observe(k, n) {
                cut = Some(c);
                break;
            }
        }
        let cut = cut.expect("a cut");
        assert!(cut > range[0] && cut < range[199_999]);
    }
}
