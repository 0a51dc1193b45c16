//! `volley_ws_send_staged`: the same send as `volley_ws_send`, its
//! arguments read from a header the payload follows, at any alignment;
//! every misuse gets `volley_ws_send`'s answer.

mod common;

use common::{connect, no_handlers, read_text, server, until};
use std::sync::Mutex;
use std::time::Duration;
use volley::*;

static CONN: Mutex<Option<volley_ws>> = Mutex::new(None);

unsafe extern "C" fn on_open(
    _: *mut std::ffi::c_void,
    _: *mut volley_server,
    ev: *const volley_event,
) {
    // SAFETY: the library passes a live event for the call.
    *CONN.lock().unwrap() = Some(unsafe { (*ev).ws });
}

/// A stage at byte `offset` of a fresh buffer (so at any alignment):
/// the header, then `payload`.
fn stage(offset: usize, ws: volley_ws, flags: u32, payload: &[u8]) -> Vec<u8> {
    let head = volley_send_stage {
        ws,
        flags,
        len: payload.len() as u32,
    };
    let size = std::mem::size_of::<volley_send_stage>();
    let mut buf = vec![0u8; offset + size + payload.len()];
    // SAFETY: `buf` holds `size` bytes at `offset`; written unaligned.
    unsafe {
        buf.as_mut_ptr()
            .add(offset)
            .cast::<volley_send_stage>()
            .write_unaligned(head)
    };
    buf[offset + size..].copy_from_slice(payload);
    buf
}

fn send(s: *const volley_server, buf: &[u8], offset: usize) -> i64 {
    // SAFETY: a pointer into `buf`, which holds the header and payload.
    volley_ws_send_staged(s, unsafe { buf.as_ptr().add(offset) }.cast())
}

#[test]
fn a_staged_send_arrives_and_misuse_is_answered_as_volley_ws_send_answers() {
    assert_eq!(std::mem::size_of::<volley_send_stage>(), 24);
    let mut h = no_handlers();
    h.on_open = Some(on_open);
    let s = server(&h);
    let mut c = connect(volley_server_port(s));
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    until("open", || CONN.lock().unwrap().is_some());
    let ws = CONN.lock().unwrap().unwrap();

    for offset in 0..8 {
        let text = format!("staged at offset {offset}");
        let buf = stage(offset, ws, VOLLEY_SEND_TEXT, text.as_bytes());
        // As volley_ws_send: the frame's bytes (a 2-byte header here).
        assert_eq!(send(s, &buf, offset), text.len() as i64 + 2);
        assert_eq!(read_text(&mut c).as_deref(), Some(text.as_str()));
    }

    // Misuse: each answered as volley_ws_send answers it.
    assert_eq!(
        volley_ws_send_staged(s, std::ptr::null()),
        -(volley_result::NullParameter as i64)
    );
    let stale = volley_ws {
        generation: ws.generation + 1000,
        ..ws
    };
    assert_eq!(send(s, &stage(3, stale, 0, b"x"), 3), 0);
    let zero = volley_ws {
        generation: 0,
        key: 0,
        reserved: 0,
    };
    assert_eq!(send(s, &stage(0, zero, 0, b"x"), 0), 0);
    assert_eq!(
        send(s, &stage(1, ws, VOLLEY_SEND_TEXT, b"\xff"), 1),
        -(volley_result::InvalidArgument as i64)
    );
    assert_eq!(
        send(s, &stage(1, ws, 0xff00, b"x"), 1),
        -(volley_result::InvalidArgument as i64)
    );
    assert_eq!(
        send(
            s,
            &stage(0, ws, VOLLEY_SEND_COMPRESS | VOLLEY_SEND_NO_COMPRESS, b"x"),
            0
        ),
        -(volley_result::InvalidArgument as i64)
    );
    assert_eq!(
        volley_ws_send_staged(std::ptr::null(), stage(0, ws, 0, b"x").as_ptr().cast()),
        -(volley_result::NullParameter as i64)
    );
    // After all that the connection still works.
    let buf = stage(5, ws, VOLLEY_SEND_TEXT, b"still here");
    assert_eq!(send(s, &buf, 5), 12);
    assert_eq!(read_text(&mut c).as_deref(), Some("still here"));
    volley_server_free(s);
}
