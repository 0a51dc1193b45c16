//! The packed event record of `volley_server_poll_packed`: its layout,
//! defined once. The constants go into include/volley.h through cbindgen;
//! `ffi/tests/wire.rs` writes them (and the event kinds, flags and result
//! codes) into `bindings/node/lib/wire.cjs` and
//! `bindings/python/volley/_wire.py`, which the bindings read instead of
//! keeping their own copies, and fails when either file is stale. The
//! packed request inside upgrade and request records is the engine's
//! (`engine::queue::REQUEST_FIELDS`), written there and listed for the
//! bindings the same way.

use crate::types::{volley_event_kind, volley_ws};

/// Payloads up to this size are copied into a packed record; larger ones
/// are passed by address (valid until the next poll), so a 16 MiB message
/// is not copied again.
pub const VOLLEY_PACKED_INLINE_MAX: usize = 16 * 1024;
/// Smallest buffer `volley_server_poll_packed` accepts (one record always fits).
pub const VOLLEY_PACKED_MIN_BUFFER: usize = 64 * 1024;
/// Packed record flag: the payload field holds an 8-byte address.
pub const VOLLEY_PACKED_DATA_BY_ADDRESS: u32 = 0x80;
/// Packed record flag: the topic field holds an 8-byte address.
pub const VOLLEY_PACKED_TOPIC_BY_ADDRESS: u32 = 0x40;

/// Packed record: offset of the kind (1 byte, a `volley_event_kind`).
pub const VOLLEY_RECORD_KIND: usize = 0;
/// Packed record: offset of the flags (1 byte: `VOLLEY_EVENT_BINARY`,
/// `VOLLEY_EVENT_ACTIVE`, `VOLLEY_PACKED_*_BY_ADDRESS`).
pub const VOLLEY_RECORD_FLAGS: usize = 1;
/// Packed record: offset of the close code (u16).
pub const VOLLEY_RECORD_CODE: usize = 2;
/// Packed record: offset of `volley_ws.key` (u32).
pub const VOLLEY_RECORD_KEY: usize = 4;
/// Packed record: offset of `volley_ws.generation` (u64).
pub const VOLLEY_RECORD_GENERATION: usize = 8;
/// Packed record: offset of the user value (u64).
pub const VOLLEY_RECORD_USER: usize = 16;
/// Packed record: offset of the payload's length (u32).
pub const VOLLEY_RECORD_DATA_LEN: usize = 24;
/// Packed record: offset of the topic's length (u32).
pub const VOLLEY_RECORD_TOPIC_LEN: usize = 28;
/// Packed record: size of the fixed part; the payload starts here, the
/// topic right after it.
pub const VOLLEY_RECORD_HEADER: usize = 32;
/// Packed records start at multiples of this (the buffer's start too).
pub const VOLLEY_RECORD_ALIGN: usize = 8;

/// What every event has, whatever its kind.
pub(crate) struct Fields<'a> {
    pub kind: volley_event_kind,
    pub flags: u32,
    pub code: u16,
    pub ws: volley_ws,
    pub user: u64,
    /// The message, reason or ping data; for requests the packed request.
    pub data: &'a [u8],
    pub topic: &'a [u8],
}

/// Write one event as a packed record into `out`; `None` when it does not fit.
pub(crate) fn pack(f: &Fields<'_>, out: &mut [u8]) -> Option<usize> {
    let mut flags = f.flags;
    let mut width = |b: &[u8], by_address: u32| {
        if b.len() > VOLLEY_PACKED_INLINE_MAX {
            flags |= by_address;
            8
        } else {
            b.len()
        }
    };
    let dl = width(f.data, VOLLEY_PACKED_DATA_BY_ADDRESS);
    let tl = width(f.topic, VOLLEY_PACKED_TOPIC_BY_ADDRESS);
    let len = (VOLLEY_RECORD_HEADER + dl + tl).next_multiple_of(VOLLEY_RECORD_ALIGN);
    if len > out.len() {
        return None;
    }
    let r = &mut out[..len];
    let mut put = |at: usize, b: &[u8]| r[at..at + b.len()].copy_from_slice(b);
    put(VOLLEY_RECORD_KIND, &[f.kind as u8]);
    put(VOLLEY_RECORD_FLAGS, &[flags as u8]);
    put(VOLLEY_RECORD_CODE, &f.code.to_le_bytes());
    put(VOLLEY_RECORD_KEY, &f.ws.key.to_le_bytes());
    put(VOLLEY_RECORD_GENERATION, &f.ws.generation.to_le_bytes());
    put(VOLLEY_RECORD_USER, &f.user.to_le_bytes());
    put(VOLLEY_RECORD_DATA_LEN, &(f.data.len() as u32).to_le_bytes());
    put(
        VOLLEY_RECORD_TOPIC_LEN,
        &(f.topic.len() as u32).to_le_bytes(),
    );
    let mut at = VOLLEY_RECORD_HEADER;
    for b in [f.data, f.topic] {
        if b.len() > VOLLEY_PACKED_INLINE_MAX {
            put(at, &(b.as_ptr() as u64).to_le_bytes());
            at += 8;
        } else {
            put(at, b);
            at += b.len();
        }
    }
    r[at..].fill(0);
    Some(len)
}

// The fixed part: each field where the one before ends, none past it.
const _: () = {
    use std::mem::size_of;
    assert!(VOLLEY_RECORD_FLAGS == VOLLEY_RECORD_KIND + 1);
    assert!(VOLLEY_RECORD_CODE == VOLLEY_RECORD_FLAGS + 1);
    assert!(VOLLEY_RECORD_KEY == VOLLEY_RECORD_CODE + size_of::<u16>());
    assert!(VOLLEY_RECORD_GENERATION == VOLLEY_RECORD_KEY + size_of::<u32>());
    assert!(VOLLEY_RECORD_USER == VOLLEY_RECORD_GENERATION + size_of::<u64>());
    assert!(VOLLEY_RECORD_DATA_LEN == VOLLEY_RECORD_USER + size_of::<u64>());
    assert!(VOLLEY_RECORD_TOPIC_LEN == VOLLEY_RECORD_DATA_LEN + size_of::<u32>());
    assert!(VOLLEY_RECORD_HEADER == VOLLEY_RECORD_TOPIC_LEN + size_of::<u32>());
    assert!(VOLLEY_RECORD_HEADER % VOLLEY_RECORD_ALIGN == 0);
};
