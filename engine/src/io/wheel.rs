//! A hashed timer wheel over connections' deadlines (the [`Stamp`]s of
//! `proto::session`, which says when each falls due).
//!
//! Each connection has at most one live entry: the tick at which its earliest
//! deadline falls. Deadlines that move later (every read pushes the idle
//! deadline) do not touch the wheel: when the entry fires, the connection
//! recomputes its deadline and re-arms. Stale entries are recognised by the
//! connection's generation and its recorded tick, so removal is free.

use crate::proto::session::Stamp;
use std::time::Duration;

/// Resolution of the wheel.
pub(crate) const TICK_MS: u64 = 50;
const SLOTS: usize = 4096; // 204.8 s horizon

/// An entry: slab key and the connection's generation.
pub(crate) type Entry = (u32, u32);

pub(crate) struct Wheel {
    slots: Vec<Vec<Entry>>,
    /// One bit per slot that holds entries: the next deadline is found
    /// without visiting empty slots, so an idle worker sleeps until it.
    occupied: [u64; SLOTS / 64],
    /// Next tick to process.
    cur: u64,
    count: usize,
}

impl Wheel {
    pub(crate) fn new() -> Self {
        Wheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            occupied: [0; SLOTS / 64],
            cur: 1,
            count: 0,
        }
    }

    /// The tick on or after which `at` has passed.
    pub(crate) fn tick_of(&self, at: Stamp) -> u64 {
        // Round up so an entry never fires before its deadline.
        at.ms().div_ceil(TICK_MS).max(self.cur)
    }

    /// Insert an entry; returns the tick it was placed at (capped at the horizon;
    /// the owner re-arms when it fires early).
    pub(crate) fn insert(&mut self, at: Stamp, e: Entry) -> u64 {
        let t = self.tick_of(at).min(self.cur + SLOTS as u64 - 1);
        let i = (t % SLOTS as u64) as usize;
        self.slots[i].push(e);
        self.occupied[i / 64] |= 1 << (i % 64);
        self.count += 1;
        t
    }

    /// Move every entry whose tick has passed into `out`, each with its tick.
    pub(crate) fn expire(&mut self, now: Stamp, out: &mut Vec<(u64, Entry)>) {
        let now_tick = now.ms() / TICK_MS;
        while self.cur <= now_tick {
            if self.count == 0 {
                self.cur = now_tick + 1;
                break;
            }
            let i = (self.cur % SLOTS as u64) as usize;
            let slot = &mut self.slots[i];
            self.count -= slot.len();
            out.extend(slot.drain(..).map(|e| (self.cur, e)));
            self.occupied[i / 64] &= !(1 << (i % 64));
            self.cur += 1;
        }
    }

    /// The first tick at or after `cur` whose slot holds entries.
    fn next_occupied(&self) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let start = (self.cur % SLOTS as u64) as usize;
        let words = SLOTS / 64;
        // Bits at or after `start` in its word, then the following words,
        // wrapping round to the bits before `start`.
        for step in 0..=words {
            let w = (start / 64 + step) % words;
            let mut bits = self.occupied[w];
            if step == 0 {
                bits &= !0u64 << (start % 64);
            } else if step == words {
                bits &= (1u64 << (start % 64)).wrapping_sub(1);
            }
            if bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                let ahead = (i + SLOTS - start) % SLOTS;
                return Some(self.cur + ahead as u64);
            }
        }
        None
    }

    /// How long poll may sleep before the earliest entry is due (None: no
    /// entries).
    pub(crate) fn timeout(&self, now: Stamp) -> Option<Duration> {
        let next = self.next_occupied()? * TICK_MS;
        Some(Duration::from_millis(next.saturating_sub(now.ms())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn fires_after_not_before() {
        let e = Instant::now();
        let t0 = Stamp::at(e, e);
        let mut w = Wheel::new();
        let tick = w.insert(t0 + Duration::from_millis(120), (1, 0));
        let mut out = vec![];
        w.expire(t0 + Duration::from_millis(100), &mut out);
        assert!(out.is_empty());
        w.expire(t0 + Duration::from_millis(150), &mut out);
        assert_eq!(out, vec![(tick, (1, 0))]);
        assert!(w.timeout(t0).is_none());
    }

    #[test]
    fn sleeps_until_the_next_occupied_slot_not_the_next_tick() {
        let e = Instant::now();
        let t0 = Stamp::at(e, e);
        let mut w = Wheel::new();
        w.insert(t0 + Duration::from_secs(10), (1, 0));
        let wait = w.timeout(t0).unwrap();
        assert!(wait >= Duration::from_secs(10), "{wait:?}");
        assert!(wait < Duration::from_secs(10) + Duration::from_millis(TICK_MS));
        // An entry past the wrap point of the slot array is found too.
        let mut out = vec![];
        w.expire(t0 + Duration::from_secs(150), &mut out);
        assert_eq!(out.len(), 1);
        w.insert(t0 + Duration::from_secs(300), (2, 0));
        let wait = w.timeout(t0 + Duration::from_secs(150)).unwrap();
        assert!(
            wait >= Duration::from_secs(150) && wait < Duration::from_secs(151),
            "{wait:?}"
        );
        w.insert(t0 + Duration::from_secs(151), (3, 0));
        let wait = w.timeout(t0 + Duration::from_secs(150)).unwrap();
        assert!(
            wait <= Duration::from_secs(1) + Duration::from_millis(TICK_MS),
            "{wait:?}"
        );
    }

    #[test]
    fn far_deadline_is_capped_at_horizon() {
        let e = Instant::now();
        let mut w = Wheel::new();
        let tick = w.insert(Stamp::at(e, e) + Duration::from_secs(10_000), (2, 0));
        assert!(tick < SLOTS as u64 + 2);
    }
}
