//! The allocator set up so that freed page buffers go back to the system, and peak memory
//! follows what is live rather than everything a long copy has held.
//!
//! glibc's malloc raises its mmap threshold to the size of the largest block freed (up to
//! 32 MiB): after the first page buffer of a few MiB is freed, later ones come from its heap
//! arenas, one per thread, which keep what they held. Peak RSS then grows with the pages and
//! workers seen (measured in `bench/RESULTS.md`: 8 workers at 768-d peaked at 283 MB with the
//! moving threshold, 131 MB with a fixed one). A fixed threshold keeps every block of 1 MiB or
//! more in its own mapping, returned when it is freed.

/// Blocks of this size or more get their own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1024 * 1024;

/// Fixes the allocator's mmap threshold; called first thing by both binaries. Nothing to do
/// off glibc.
pub fn return_freed_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` sets one malloc parameter under malloc's own lock; it has no other
    // effect and takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
