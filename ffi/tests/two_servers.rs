//! Two callback-mode servers in one process: a call made from inside one
//! server's callback on the other server's connection reaches that
//! connection, never the caller's own one with the same id (ids repeat
//! across servers: the first connection of each worker 0 is key 0,
//! generation 1 on every server).

mod common;

use common::{connect, read_text, server};
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;
use volley::*;

/// B's connection, stored by B's `open`.
static B_CONN: Mutex<Option<volley_ws>> = Mutex::new(None);
/// The server B, for A's callback to act on.
static B: Mutex<usize> = Mutex::new(0);

unsafe extern "C" fn b_open(
    _: *mut std::ffi::c_void,
    s: *mut volley_server,
    ev: *const volley_event,
) {
    // SAFETY: the library passes a live event for the call.
    let ws = unsafe { (*ev).ws };
    assert_eq!(
        volley_ws_subscribe(s, ws, b"t".as_ptr(), 1),
        volley_result::Ok
    );
    *B_CONN.lock().unwrap() = Some(ws);
}

unsafe extern "C" fn a_message(
    _: *mut std::ffi::c_void,
    a: *mut volley_server,
    ev: *const volley_event,
) {
    // SAFETY: the library passes a live event for the call.
    let my = unsafe { (*ev).ws };
    let b = *B.lock().unwrap() as *const volley_server;
    let theirs = B_CONN.lock().unwrap().expect("B's connection is open");
    assert_eq!(
        (my.key, my.generation),
        (theirs.key, theirs.generation),
        "the test needs the same id on both servers"
    );
    assert!(volley_ws_send(b, theirs, b"to b".as_ptr(), 4, VOLLEY_SEND_TEXT) > 0);
    let r = volley_server_publish(
        b,
        b"t".as_ptr(),
        1,
        b"pub b".as_ptr(),
        5,
        VOLLEY_SEND_TEXT,
        std::ptr::null_mut(),
    );
    assert_eq!(r, volley_result::Ok);
    // The caller's own connection, through its own server: still direct.
    assert!(volley_ws_send(a, my, b"to a".as_ptr(), 4, VOLLEY_SEND_TEXT) > 0);
}

#[test]
fn a_call_on_another_servers_connection_from_a_callback_reaches_that_connection() {
    // SAFETY: all-zero is a valid handler table (no callbacks).
    let mut hb: volley_handlers = unsafe { std::mem::zeroed() };
    hb.struct_size = std::mem::size_of::<volley_handlers>() as u32;
    hb.on_open = Some(b_open);
    let b = server(&hb);
    *B.lock().unwrap() = b as usize;
    // SAFETY: as above.
    let mut ha: volley_handlers = unsafe { std::mem::zeroed() };
    ha.struct_size = hb.struct_size;
    ha.on_message = Some(a_message);
    let a = server(&ha);

    let mut cb = connect(volley_server_port(b));
    let mut ca = connect(volley_server_port(a));
    for _ in 0..100 {
        if B_CONN.lock().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // One masked text frame "go" (mask 0: the payload as is).
    ca.write_all(&[0x81, 0x82, 0, 0, 0, 0, b'g', b'o']).unwrap();
    assert_eq!(read_text(&mut cb).as_deref(), Some("to b"));
    assert_eq!(read_text(&mut cb).as_deref(), Some("pub b"));
    assert_eq!(read_text(&mut ca).as_deref(), Some("to a"));
    ca.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert_eq!(read_text(&mut ca), None, "A's client got B's messages");
    volley_server_free(a);
    volley_server_free(b);
}
