//! A hashed timer wheel for per-connection deadlines.
//!
//! Each connection has at most one live entry: the tick at which its earliest
//! deadline falls. Deadlines that move later (every read pushes the idle
//! deadline) do not touch the wheel: when the entry fires, the connection
//! recomputes its deadline and re-arms. Stale entries are recognised by the
//! connection's generation and its recorded tick, so removal is free.

use std::time::{Duration, Instant};

/// Resolution of the wheel.
pub(crate) const TICK: Duration = Duration::from_millis(50);
const SLOTS: usize = 4096; // 204.8 s horizon

/// An entry: slab key and the connection's generation.
pub(crate) type Entry = (u32, u32);

pub(crate) struct Wheel {
    start: Instant,
    slots: Vec<Vec<Entry>>,
    /// Next tick to process.
    cur: u64,
    count: usize,
}

impl Wheel {
    pub(crate) fn new(now: Instant) -> Self {
        Wheel {
            start: now,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            cur: 1,
            count: 0,
        }
    }

    /// The tick on or after which `at` has passed.
    pub(crate) fn tick_of(&self, at: Instant) -> u64 {
        let d = at.saturating_duration_since(self.start);
        // Round up so an entry never fires before its deadline.
        (d.as_nanos().div_ceil(TICK.as_nanos()) as u64).max(self.cur)
    }

    /// Insert an entry; returns the tick it was placed at (capped at the horizon;
    /// the owner re-arms when it fires early).
    pub(crate) fn insert(&mut self, at: Instant, e: Entry) -> u64 {
        let t = self.tick_of(at).min(self.cur + SLOTS as u64 - 1);
        self.slots[(t % SLOTS as u64) as usize].push(e);
        self.count += 1;
        t
    }

    /// Move every entry whose tick has passed into `out`, each with its tick.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<(u64, Entry)>) {
        let now_tick =
            (now.saturating_duration_since(self.start).as_nanos() / TICK.as_nanos()) as u64;
        while self.cur <= now_tick {
            if self.count == 0 {
                self.cur = now_tick + 1;
                break;
            }
            let slot = &mut self.slots[(self.cur % SLOTS as u64) as usize];
            self.count -= slot.len();
            out.extend(slot.drain(..).map(|e| (self.cur, e)));
            self.cur += 1;
        }
    }

    /// How long poll may sleep before the next tick is due (None: no entries).
    pub(crate) fn timeout(&self, now: Instant) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let next = self.start + TICK * self.cur as u32;
        Some(next.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_after_not_before() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let at = t0 + Duration::from_millis(120);
        let tick = w.insert(at, (1, 0));
        let mut out = vec![];
        w.expire(t0 + Duration::from_millis(100), &mut out);
        assert!(out.is_empty());
        w.expire(t0 + Duration::from_millis(150), &mut out);
        assert_eq!(out, vec![(tick, (1, 0))]);
        assert!(w.timeout(t0).is_none());
    }

    #[test]
    fn far_deadline_is_capped_at_horizon() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let tick = w.insert(t0 + Duration::from_secs(10_000), (2, 0));
        assert!(tick < SLOTS as u64 + 2);
    }
}
