//! Each worker's slot table: what other threads may know about a connection
//! without asking its worker. One [`Slot`] per slot of the worker's
//! connection table, never freed while the server lives, holding the
//! occupant's generation (the full 64 bits of its [`ConnId`]'s), its ready
//! state, the bytes in its queue as of the worker's last flush,
//! and the bytes other threads have sent that the worker has not taken yet.
//!
//! That is enough for a send from any thread to answer like Bun, at once and
//! without a round trip: `0` for a closed connection or one past the
//! backpressure limit, `-1` when bytes are already waiting, the byte count
//! otherwise ([`Slot::reserve`]).

use crate::id::{ConnId, MAX_SLOTS};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Slots per segment; segments are allocated on first use.
const SEG: usize = 1 << 14;

/// Ready states kept in a slot (the values of [`crate::ReadyState`], plus free).
pub(crate) const CONNECTING: u32 = 0;
pub(crate) const OPEN: u32 = 1;
pub(crate) const CLOSING: u32 = 2;
pub(crate) const CLOSED: u32 = 3;

/// In-flight bytes from other threads past which a send reports
/// backpressure even though the connection's own queue is empty: a host
/// that honours `-1` then waits for `drain` instead of filling the worker's
/// mailbox.
pub(crate) const INFLIGHT_SLACK: u64 = 256 * 1024;

const BYTES_MASK: u64 = (1 << 48) - 1;

/// What other threads see of one connection slot.
#[derive(Default)]
pub(crate) struct Slot {
    /// The current (or last) occupant's generation; 0 before the first.
    generation: AtomicU64,
    /// Sends from other threads not yet taken by the worker: the low 16
    /// bits of the occupant's generation in the top 16 bits (so an add made
    /// for a previous occupant fails instead of landing on the new one),
    /// bytes in the other 48.
    inflight: AtomicU64,
    /// Bytes queued on the connection after the worker's last flush
    /// (saturated at `u32::MAX`).
    queued: AtomicU32,
    /// CONNECTING, OPEN, CLOSING or CLOSED in the low bits (`STATE`), and
    /// `DRAIN_ASKED`: a send from another thread was refused past the limit
    /// and the worker has been asked to fire `drain` once the queue empties
    /// (one request in flight at a time). One word, so that a slot is 24
    /// bytes: every connection has one.
    state: AtomicU32,
}

/// The ready state's bits in `Slot::state`.
const STATE: u32 = 0b11;
/// The drain request's bit in `Slot::state`.
const DRAIN_ASKED: u32 = 0b100;

/// Why a send from another thread was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The connection is closed, closing, or the id is stale.
    Closed,
    /// Past the backpressure limit.
    OverLimit,
}

impl Slot {
    /// A new occupant with a fresh `generation`: empty counters, CONNECTING.
    pub(crate) fn occupy(&self, worker: usize, slot: usize, generation: u64) -> ConnId {
        let id = ConnId::new(worker, slot, generation);
        // CLOSED with no drain asked while the slot changes hands.
        self.state.store(CLOSED, Ordering::Release);
        self.inflight.store(tag(id), Ordering::Relaxed);
        self.queued.store(0, Ordering::Relaxed);
        self.generation.store(generation, Ordering::Release);
        self.state.store(CONNECTING, Ordering::Release);
        id
    }

    /// Ask once for a drain after a refused send: true if the caller must
    /// tell the worker (no request is in flight yet).
    pub(crate) fn ask_drain(&self) -> bool {
        self.state.fetch_or(DRAIN_ASKED, Ordering::AcqRel) & DRAIN_ASKED == 0
    }

    /// The worker took the drain request.
    pub(crate) fn drain_taken(&self) {
        self.state.fetch_and(!DRAIN_ASKED, Ordering::Release);
    }

    /// The current (or last) occupant's generation.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Is `id` this slot's current occupant?
    #[inline]
    pub(crate) fn holds(&self, id: ConnId) -> bool {
        self.generation.load(Ordering::Acquire) == id.generation()
    }

    /// An HTTP request answered with an event stream becomes OPEN for
    /// sends at once, on the answering thread: a send made right after the
    /// answer is then accepted, and lands after it (one mailbox, in order).
    /// No-op unless `id` holds the slot and is still CONNECTING.
    pub(crate) fn open_stream(&self, id: ConnId) {
        if self.holds(id) {
            let _ = self
                .state
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                    (v & STATE == CONNECTING).then_some((v & !STATE) | OPEN)
                });
        }
    }

    /// Set the ready state (a drain request stays as it was).
    pub(crate) fn set_state(&self, s: u32) {
        let _ = self
            .state
            .fetch_update(Ordering::Release, Ordering::Relaxed, |v| {
                Some((v & !STATE) | s)
            });
    }

    /// The state of `id`'s connection (CLOSED when the id is stale).
    pub(crate) fn state_of(&self, id: ConnId) -> u32 {
        let s = self.state.load(Ordering::Acquire) & STATE;
        if self.holds(id) { s } else { CLOSED }
    }

    /// Record the queue length after a flush (a store only when it changed).
    #[inline]
    pub(crate) fn set_queued(&self, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if self.queued.load(Ordering::Relaxed) != n {
            self.queued.store(n, Ordering::Release);
        }
    }

    /// Bytes waiting for `id`: in its queue and in flight to its worker.
    pub(crate) fn buffered(&self, id: ConnId) -> usize {
        if !self.holds(id) {
            return 0;
        }
        let inflight = self.inflight.load(Ordering::Acquire) & BYTES_MASK;
        (inflight + u64::from(self.queued.load(Ordering::Acquire))) as usize
    }

    /// Reserve `n` bytes for a send to `id` from another thread, under the
    /// backpressure `limit` (a message always fits when nothing is waiting).
    /// `Ok(true)`: accepted behind waiting bytes (Bun's `-1`);
    /// `Ok(false)`: accepted with nothing waiting.
    pub(crate) fn reserve(&self, id: ConnId, n: usize, limit: usize) -> Result<bool, Refused> {
        if !self.holds(id) || self.state.load(Ordering::Acquire) & STATE != OPEN {
            return Err(Refused::Closed);
        }
        let tag = tag(id);
        let n = n as u64;
        let mut v = self.inflight.load(Ordering::Acquire);
        loop {
            if v & !BYTES_MASK != tag {
                return Err(Refused::Closed);
            }
            let inflight = v & BYTES_MASK;
            let queued = u64::from(self.queued.load(Ordering::Acquire));
            let waiting = inflight + queued;
            if waiting > 0 && waiting + n > limit as u64 {
                return Err(Refused::OverLimit);
            }
            match self.inflight.compare_exchange_weak(
                v,
                tag | ((inflight + n) & BYTES_MASK),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(queued > 0 || inflight >= INFLIGHT_SLACK),
                Err(now) => v = now,
            }
        }
    }

    /// Give back `n` reserved bytes: the worker took them (they are in the
    /// queue now, or dropped), or the send could not be queued.
    pub(crate) fn release(&self, id: ConnId, n: usize) {
        let tag = tag(id);
        let n = n as u64;
        let mut v = self.inflight.load(Ordering::Acquire);
        while v & !BYTES_MASK == tag {
            let left = (v & BYTES_MASK).saturating_sub(n);
            match self.inflight.compare_exchange_weak(
                v,
                tag | left,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(now) => v = now,
            }
        }
    }
}

/// The top 16 bits of an in-flight word: the low bits of the generation.
fn tag(id: ConnId) -> u64 {
    (id.generation() & 0xffff) << 48
}

/// A segment of default slots, from zeroed memory: a large zeroed
/// allocation is mapped lazily, so the pages of slots never used are never
/// resident. Written slot by slot (`Slot::default()` each), the first
/// segment cost every worker 512 KiB of RSS as soon as it held one
/// connection (benches/scaling's memory cell: 670 KiB fixed per worker).
fn zeroed_segment() -> Box<[Slot]> {
    let layout = std::alloc::Layout::array::<Slot>(SEG).expect("a segment's size fits");
    // SAFETY: the layout has a nonzero size (SEG slots of 24 bytes).
    let p = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Slot>();
    if p.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: `p` is a fresh allocation of the global allocator with the
    // layout of `[Slot; SEG]`, as `Box<[Slot]>` frees it; every field of
    // `Slot` is an atomic integer, for which all-zero bytes are a valid
    // value (and what `Slot::default()` holds in each).
    unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, SEG)) }
}

/// A worker's slots, by connection-table key.
pub(crate) struct Slots {
    segs: Box<[OnceLock<Box<[Slot]>>]>,
}

impl Default for Slots {
    fn default() -> Self {
        Slots {
            segs: (0..MAX_SLOTS / SEG).map(|_| OnceLock::new()).collect(),
        }
    }
}

impl Slots {
    /// The slot for `key`, allocated with its segment on first use.
    #[inline]
    pub(crate) fn at(&self, key: usize) -> &Slot {
        let seg = self.segs[key / SEG].get_or_init(zeroed_segment);
        &seg[key % SEG]
    }

    /// The slot `id` names, if its segment exists.
    #[inline]
    pub(crate) fn of(&self, id: ConnId) -> Option<&Slot> {
        let key = id.slot();
        self.segs[key / SEG].get().map(|s| &s[key % SEG])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_24_bytes() {
        // Every connection has one (benches/scaling: bytes per idle
        // connection); the drain request shares the state's word for this.
        assert_eq!(std::mem::size_of::<Slot>(), 24);
    }

    #[test]
    fn the_drain_request_and_the_state_keep_out_of_each_other() {
        let s = Slot::default();
        let id = s.occupy(0, 7, 5);
        assert_eq!(s.state_of(id), CONNECTING);
        assert!(s.ask_drain());
        assert!(!s.ask_drain(), "one request in flight at a time");
        s.open_stream(id);
        assert_eq!(
            s.state_of(id),
            OPEN,
            "a pending drain request does not block opening"
        );
        s.set_state(CLOSING);
        assert_eq!(s.state_of(id), CLOSING);
        assert!(!s.ask_drain(), "set_state keeps the request");
        s.drain_taken();
        assert_eq!(
            s.state_of(id),
            CLOSING,
            "taking the request keeps the state"
        );
        assert!(s.ask_drain());
        let next = s.occupy(0, 7, 6);
        assert_eq!(s.state_of(next), CONNECTING);
        assert!(s.ask_drain(), "a new occupant starts with no request");
        assert_eq!(s.state_of(id), CLOSED, "the old id is stale");
    }

    #[test]
    fn a_stale_id_is_refused_and_its_bytes_never_land() {
        let slots = Slots::default();
        let s = slots.at(7);
        let a = s.occupy(0, 7, 41);
        s.set_state(OPEN);
        assert_eq!(s.reserve(a, 10, 100), Ok(false));
        assert_eq!(
            s.reserve(a, 10, 100),
            Ok(false),
            "in flight below the slack"
        );
        s.set_queued(5);
        assert_eq!(s.reserve(a, 10, 100), Ok(true), "bytes queued: -1");
        assert_eq!(s.reserve(a, 90, 100), Err(Refused::OverLimit));
        s.set_state(CLOSED);
        let b = s.occupy(0, 7, 42);
        assert_ne!(a, b);
        s.set_state(OPEN);
        assert_eq!(s.reserve(a, 10, 100), Err(Refused::Closed));
        s.release(a, 1000);
        assert_eq!(s.buffered(b), 0);
        assert_eq!(s.reserve(b, 10, 100), Ok(false));
        assert_eq!(s.buffered(b), 10);
        s.release(b, 10);
        assert_eq!(s.buffered(b), 0);
        assert_eq!(s.buffered(a), 0);
    }

    #[test]
    fn a_large_message_fits_an_empty_connection() {
        let slots = Slots::default();
        let s = slots.at(0);
        let id = s.occupy(3, 0, 1);
        s.set_state(OPEN);
        assert_eq!(s.reserve(id, 1 << 30, 100), Ok(false));
        assert!(slots.of(id).is_some());
    }

    #[test]
    fn an_id_whose_low_bits_match_is_still_refused() {
        // 2^32 (even 2^48) connections later the same slot holds an
        // occupant whose generation agrees with an old id in its low bits:
        // the old id must not reach it.
        let slots = Slots::default();
        let s = slots.at(0);
        let old = s.occupy(0, 0, 5);
        let new = s.occupy(0, 0, 5 + (1 << 48));
        s.set_state(OPEN);
        assert_eq!(s.state_of(old), CLOSED);
        assert_eq!(s.reserve(old, 1, 100), Err(Refused::Closed));
        assert_eq!(s.reserve(new, 1, 100), Ok(false));
    }
}
