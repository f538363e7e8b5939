//! Fault injection for the tests of crash recovery, lost and garbled writes, and panics: the
//! named hooks a test installs with `Engine::with_faults`. Only test builds (`cfg(test)` or the
//! `test-support` feature, which `scripts/test.sh` turns on) have them; elsewhere `Faults` is
//! an empty type whose checks do nothing, so a release carries no fault hook.

pub use hooks::Faults;

/// What the fault hooks do to one page's writes: chosen once per page, before its first
/// attempt, so that concurrent workers and retries cannot make a hook fire twice or never.
/// (A build without the hooks only ever chooses `None`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(any(test, feature = "test-support")), allow(dead_code))]
pub(crate) enum PageFault {
    /// Write the page as read.
    None,
    /// Report the page written without sending it.
    Lose,
    /// Write the page with one value changed.
    Garble,
}

#[cfg(any(test, feature = "test-support"))]
mod hooks {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::PageFault;
    use crate::engine::EngineError;
    use crate::milvus::Batch;
    use crate::queue::Step;

    /// Fault injection for tests of crash recovery: make the N-th page write of this engine "die"
    /// before its checkpoint, leaving its lease held. Production code never sets it.
    #[derive(Debug, Default)]
    pub struct Faults {
        crash_after_write: AtomicU64,
        lose_write: AtomicU64,
        lose_writes_from: AtomicU64,
        corrupt_write: AtomicU64,
        writes: AtomicU64,
        pages: AtomicU64,
        panic_step: std::sync::Mutex<Option<Step>>,
        panics_left: AtomicU64,
        conflict_every: AtomicU64,
        saves: AtomicU64,
        page_read_delay_ms: AtomicU64,
        crash_after_import: AtomicU64,
        imports: AtomicU64,
        vanish_before_import: AtomicU64,
        import_calls: AtomicU64,
    }

    impl Faults {
        /// Crash once, right after the `n`-th page write (counted across the engine's workers).
        pub fn crash_after_write(n: u64) -> Self {
            Self {
                crash_after_write: AtomicU64::new(n),
                ..Default::default()
            }
        }

        /// Once, skip the `n`-th page write but report it written and checkpoint it: a write a
        /// server lost, which only verification can notice.
        pub fn lose_write(n: u64) -> Self {
            Self {
                lose_write: AtomicU64::new(n),
                ..Default::default()
            }
        }

        /// Every page write from the `n`-th on is skipped but reported written: a target that
        /// keeps losing writes, which no repair can mend.
        pub fn lose_writes_from(n: u64) -> Self {
            Self {
                lose_writes_from: AtomicU64::new(n),
                ..Default::default()
            }
        }

        /// Once, change one value of the `n`-th page before writing it: a write a server garbled,
        /// which counts cannot notice and content verification must.
        pub fn corrupt_write(n: u64) -> Self {
            Self {
                corrupt_write: AtomicU64::new(n),
                ..Default::default()
            }
        }

        /// Every `n`-th conditional write of a job record finds that another writer got there
        /// first (as DynamoDB's conditional checks do under contention): the engine must read
        /// again and retry. Combines with the other hooks through [`Faults::and`].
        pub fn conflict_every(n: u64) -> Self {
            Self {
                conflict_every: AtomicU64::new(n),
                ..Default::default()
            }
        }

        /// Crash once, right after the `n`-th import call is answered and before its answer
        /// is recorded (counted across the engine's workers): the target has the import, the
        /// task's record only the call.
        pub fn crash_after_import(n: u64) -> Self {
            Self {
                crash_after_import: AtomicU64::new(n),
                ..Default::default()
            }
        }

        /// The staged file of the `n`-th import call (counted across the engine's workers) is
        /// gone from staging just before the call, as a file removed by hand or by a lifecycle
        /// rule would be.
        pub fn vanish_before_import(n: u64) -> Self {
            Self {
                vanish_before_import: AtomicU64::new(n),
                ..Default::default()
            }
        }

        /// Whether the file of the import call about to be made is to vanish first.
        pub(crate) fn vanishes_now(&self) -> bool {
            let n = self.import_calls.fetch_add(1, Ordering::SeqCst) + 1;
            n == self.vanish_before_import.load(Ordering::SeqCst)
        }

        pub(crate) fn after_import(&self) -> Result<(), EngineError> {
            let n = self.imports.fetch_add(1, Ordering::SeqCst) + 1;
            if n == self.crash_after_import.load(Ordering::SeqCst) {
                return Err(EngineError::InjectedCrash);
            }
            Ok(())
        }

        /// Every page read of the copy waits `ms` first: a slow source, made deterministic, so
        /// that a test sees a job while it runs.
        pub fn slow_page_reads(ms: u64) -> Self {
            Self {
                page_read_delay_ms: AtomicU64::new(ms),
                ..Default::default()
            }
        }

        /// Waits before a page read if [`Faults::slow_page_reads`] says.
        pub(crate) async fn before_page_read(&self) {
            let ms = self.page_read_delay_ms.load(Ordering::SeqCst);
            if ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
        }

        /// These faults and `other`'s `conflict_every` together.
        pub fn and(self, other: Faults) -> Self {
            self.conflict_every
                .store(other.conflict_every.into_inner(), Ordering::SeqCst);
            self
        }

        /// Whether this conditional write of a job record is to lose the race.
        pub(crate) fn conflicts_now(&self) -> bool {
            let n = self.conflict_every.load(Ordering::SeqCst);
            n != 0 && (self.saves.fetch_add(1, Ordering::SeqCst) + 1) % n == 0
        }

        /// Panic (a bug, as far as the runner can tell) the first `times` times a `step` reaches
        /// its fault point: after taking its lease, so that the panic leaves it held as a crash
        /// would. Plan and finish panic after taking the step lease, copy after a page write
        /// (before its checkpoint), deliver after claiming an attempt.
        pub fn panic_in(step: Step, times: u64) -> Self {
            Self {
                panic_step: std::sync::Mutex::new(Some(step)),
                panics_left: AtomicU64::new(times),
                ..Default::default()
            }
        }

        /// Parses a fault hook as the CLI's tests name it: `panic:STEP[:TIMES]` (STEP one of plan,
        /// copy, finish, deliver; TIMES defaults to always), or `slow-reads:MS` (every page
        /// read waits MS milliseconds first).
        #[cfg(feature = "test-support")]
        pub fn parse(spec: &str) -> Result<Self, String> {
            let parts: Vec<&str> = spec.split(':').collect();
            let step = |s: &str| {
                [Step::Plan, Step::Work, Step::Finish, Step::Deliver]
                    .into_iter()
                    .find(|k| k.as_str() == s)
                    .ok_or_else(|| format!("`{s}` is not a step (plan, copy, finish, deliver)"))
            };
            match parts.as_slice() {
                ["panic", s] => Ok(Self::panic_in(step(s)?, u64::MAX)),
                ["slow-reads", ms] => {
                    Ok(Self::slow_page_reads(ms.parse().map_err(|_| {
                        format!("`{ms}` is not a number of milliseconds")
                    })?))
                }
                ["panic", s, n] => Ok(Self::panic_in(
                    step(s)?,
                    n.parse()
                        .map_err(|_| format!("`{n}` is not a number of times"))?,
                )),
                _ => Err(format!(
                    "`{spec}` is not a fault hook (panic:STEP[:TIMES] or slow-reads:MS)"
                )),
            }
        }

        /// Panics if this is a step and a time to panic.
        pub(crate) fn maybe_panic(&self, step: Step) {
            let chosen = self
                .panic_step
                .lock()
                .map(|s| *s == Some(step))
                .unwrap_or(false);
            if chosen
                && self
                    .panics_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                panic!("injected panic in the {step} step");
            }
        }

        /// What to do to the next page to be written (counted across the engine's workers).
        pub(crate) fn next_page(&self) -> PageFault {
            let n = self.pages.fetch_add(1, Ordering::SeqCst) + 1;
            let from = self.lose_writes_from.load(Ordering::SeqCst);
            if n == self.lose_write.load(Ordering::SeqCst) || (from != 0 && n >= from) {
                PageFault::Lose
            } else if n == self.corrupt_write.load(Ordering::SeqCst) {
                PageFault::Garble
            } else {
                PageFault::None
            }
        }

        /// A copy of `page` with its first non-key value changed.
        pub(crate) fn garbled<'a>(
            &self,
            page: &'a Batch,
            primary: &str,
        ) -> std::borrow::Cow<'a, Batch> {
            let mut garbled = page.clone();
            garble_first_value(&mut garbled, primary);
            std::borrow::Cow::Owned(garbled)
        }

        pub(crate) fn after_write(&self) -> Result<(), EngineError> {
            let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
            if n == self.crash_after_write.load(Ordering::SeqCst) {
                return Err(EngineError::InjectedCrash);
            }
            Ok(())
        }
    }

    /// Changes the first entity's value in the first column that is not the primary key.
    fn garble_first_value(page: &mut Batch, primary: &str) {
        use crate::milvus::batch::{field_data, scalar_field, vector_field};
        for column in std::sync::Arc::make_mut(&mut page.fields)
            .iter_mut()
            .filter(|f| f.field_name != primary)
        {
            match &mut column.field {
                Some(field_data::Field::Vectors(v)) => {
                    if let Some(vector_field::Data::FloatVector(d)) = &mut v.data {
                        if let Some(x) = d.data.first_mut() {
                            *x += 0.25;
                            return;
                        }
                    }
                }
                Some(field_data::Field::Scalars(s)) => match &mut s.data {
                    Some(scalar_field::Data::StringData(d)) if !d.data.is_empty() => {
                        d.data[0].push('~');
                        return;
                    }
                    Some(scalar_field::Data::DoubleData(d)) if !d.data.is_empty() => {
                        d.data[0] += 1.0;
                        return;
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn faults_fire_once_at_the_nth_write() {
            let f = Faults::crash_after_write(2);
            assert!(f.after_write().is_ok());
            assert!(matches!(f.after_write(), Err(EngineError::InjectedCrash)));
            assert!(f.after_write().is_ok());
            assert!(Faults::default().after_write().is_ok());
        }

        #[test]
        fn a_page_fault_is_chosen_once_for_the_nth_page() {
            let f = Faults::lose_write(2);
            let chosen: Vec<_> = (0..4).map(|_| f.next_page()).collect();
            assert_eq!(
                chosen,
                [
                    PageFault::None,
                    PageFault::Lose,
                    PageFault::None,
                    PageFault::None
                ]
            );
            assert_eq!(Faults::corrupt_write(1).next_page(), PageFault::Garble);
        }
    }
}

#[cfg(not(any(test, feature = "test-support")))]
mod hooks {
    use super::PageFault;
    use crate::engine::EngineError;
    use crate::milvus::Batch;
    use crate::queue::Step;

    /// No fault hooks in this build.
    #[derive(Debug, Default)]
    pub struct Faults;

    impl Faults {
        #[inline]
        pub(crate) fn next_page(&self) -> PageFault {
            PageFault::None
        }

        #[inline]
        pub(crate) fn garbled<'a>(
            &self,
            page: &'a Batch,
            _primary: &str,
        ) -> std::borrow::Cow<'a, Batch> {
            std::borrow::Cow::Borrowed(page)
        }

        #[inline]
        pub(crate) fn after_write(&self) -> Result<(), EngineError> {
            Ok(())
        }

        #[inline]
        pub(crate) fn after_import(&self) -> Result<(), EngineError> {
            Ok(())
        }

        #[inline]
        pub(crate) fn vanishes_now(&self) -> bool {
            false
        }

        pub(crate) fn maybe_panic(&self, _step: Step) {}

        #[inline]
        pub(crate) fn conflicts_now(&self) -> bool {
            false
        }

        #[inline]
        pub(crate) async fn before_page_read(&self) {}
    }
}
