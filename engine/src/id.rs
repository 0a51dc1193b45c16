//! Connection identities that stay safe after the connection is gone.

use std::fmt;

/// Bits of a connection key that name the slot; the rest name the worker.
const SLOT_BITS: u32 = 24;
/// Most workers a server can have.
pub(crate) const MAX_WORKERS: usize = 256;
/// Most connections one worker can hold at once.
pub(crate) const MAX_SLOTS: usize = 1 << SLOT_BITS;

/// A connection's identity: its worker, its slot in the worker's table, and
/// a 64-bit generation from a per-worker counter that never repeats. Slots
/// are reused as connections come and go (most recently freed first, so one
/// slot may see millions of connections); the generation is what tells
/// them apart, and at 64 bits it never wraps (a worker opening a million
/// connections a second would need half a million years). An id that
/// outlives its connection is refused by every operation and never reaches
/// another connection.
///
/// A new request on a keep-alive HTTP connection gets a new id too, so an
/// answer meant for an earlier request can never land on a later one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    generation: u64,
    key: u32,
}

impl ConnId {
    pub(crate) fn new(worker: usize, slot: usize, generation: u64) -> ConnId {
        debug_assert!(worker < MAX_WORKERS && slot < MAX_SLOTS && generation != 0);
        ConnId {
            generation,
            key: ((worker as u32) << SLOT_BITS) | slot as u32,
        }
    }

    /// The two numbers an id is made of (for the C ABI and the bindings):
    /// the connection key (worker and slot) and the generation.
    pub fn to_raw(self) -> (u32, u64) {
        (self.key, self.generation)
    }

    /// An id from [`ConnId::to_raw`]; `None` for values that are no id
    /// (generation 0).
    pub fn from_raw(key: u32, generation: u64) -> Option<ConnId> {
        (generation != 0).then_some(ConnId { generation, key })
    }

    /// The worker that owns the connection.
    pub fn worker(self) -> usize {
        (self.key >> SLOT_BITS) as usize
    }

    /// The slot in the worker's table.
    pub(crate) fn slot(self) -> usize {
        (self.key as usize) & (MAX_SLOTS - 1)
    }

    /// The generation: unique among the worker's connections, forever.
    pub fn generation(self) -> u64 {
        self.generation
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ConnId({}:{}:{})",
            self.worker(),
            self.slot(),
            self.generation
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_its_parts() {
        let id = ConnId::new(255, MAX_SLOTS - 1, u64::MAX);
        assert_eq!(
            (id.worker(), id.slot(), id.generation()),
            (255, MAX_SLOTS - 1, u64::MAX)
        );
        let (k, g) = id.to_raw();
        assert_eq!(ConnId::from_raw(k, g), Some(id));
        assert_eq!(ConnId::from_raw(k, 0), None);
    }
}
