//! `volley_ws_close` with 1005 and no reason sends a close frame without a
//! status code (how a proxy forwards a close that had none, and what Bun's
//! `ws.close(1005)` does); 1005 with a reason, 1006 and other codes no
//! endpoint may send are refused with INVALID_ARGUMENT.

mod common;

use common::{connect, frame, no_handlers, server};
use std::io::Read;
use std::sync::Mutex;
use volley::*;

static RESULTS: Mutex<Vec<volley_result>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_message(
    _: *mut std::ffi::c_void,
    s: *mut volley_server,
    ev: *const volley_event,
) {
    // SAFETY: the library passes a live event for the call.
    let ws = unsafe { (*ev).ws };
    let mut r = RESULTS.lock().unwrap();
    r.push(volley_ws_close(s, ws, 1005, b"why".as_ptr(), 3));
    r.push(volley_ws_close(s, ws, 1006, std::ptr::null(), 0));
    r.push(volley_ws_close(s, ws, 999, std::ptr::null(), 0));
    r.push(volley_ws_close(s, ws, 1005, std::ptr::null(), 0));
}

#[test]
fn close_1005_sends_a_close_frame_without_a_code() {
    let mut h = no_handlers();
    h.on_message = Some(on_message);
    let s = server(&h);
    let mut c = connect(volley_server_port(s));
    frame(&mut c, 0x1, b"go");
    let mut head = [0u8; 2];
    c.read_exact(&mut head).unwrap();
    assert_eq!(head, [0x88, 0x00], "a close frame with an empty payload");
    assert_eq!(
        *RESULTS.lock().unwrap(),
        [
            volley_result::InvalidArgument,
            volley_result::InvalidArgument,
            volley_result::InvalidArgument,
            volley_result::Ok
        ]
    );
    volley_server_free(s);
}
