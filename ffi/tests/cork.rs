//! A cork is one thread's hold on one server's wake-ups: it never holds
//! back another server's sends, and freeing its server ends it. (It was
//! one depth per thread: a cork on A kept a send to B from waking B's
//! worker until A was uncorked, and a cork left open when A was freed
//! kept every later send from that thread asleep.)

mod common;

use common::{connect, no_handlers, read_text, server, until};
use std::sync::Mutex;
use std::time::Duration;
use volley::*;

/// The connection B's `open` saw.
static B_CONN: Mutex<Option<volley_ws>> = Mutex::new(None);

unsafe extern "C" fn b_open(
    _: *mut std::ffi::c_void,
    _: *mut volley_server,
    ev: *const volley_event,
) {
    // SAFETY: the library passes a live event for the call.
    *B_CONN.lock().unwrap() = Some(unsafe { (*ev).ws });
}

fn send(s: *const volley_server, ws: volley_ws, text: &str) {
    assert!(volley_ws_send(s, ws, text.as_ptr(), text.len(), VOLLEY_SEND_TEXT) > 0);
}

#[test]
fn a_cork_holds_back_only_its_own_servers_wake_ups() {
    let mut hb = no_handlers();
    hb.on_open = Some(b_open);
    let b = server(&hb);
    let a = server(&no_handlers());
    let mut cb = connect(volley_server_port(b));
    until("B's open", || B_CONN.lock().unwrap().is_some());
    let ws = B_CONN.lock().unwrap().unwrap();
    cb.set_read_timeout(Some(Duration::from_secs(3))).unwrap();

    // Corked on B: the send waits for the uncork, then goes.
    assert_eq!(volley_server_cork(b), volley_result::Ok);
    send(b, ws, "corked");
    assert_eq!(volley_server_uncork(b), volley_result::Ok);
    assert_eq!(read_text(&mut cb).as_deref(), Some("corked"));

    // Corked on A: a send to B wakes B's worker at once.
    assert_eq!(volley_server_cork(a), volley_result::Ok);
    send(b, ws, "not held by A");
    assert_eq!(
        read_text(&mut cb).as_deref(),
        Some("not held by A"),
        "a cork on A held back B's send"
    );

    // A freed while corked: its cork holds nothing back.
    volley_server_free(a);
    send(b, ws, "after A's free");
    assert_eq!(
        read_text(&mut cb).as_deref(),
        Some("after A's free"),
        "A's leftover cork held back B's send"
    );
    assert_eq!(volley_server_uncork(a), volley_result::Stopped);
    assert_eq!(volley_server_cork(a), volley_result::Stopped);
    send(b, ws, "still");
    assert_eq!(read_text(&mut cb).as_deref(), Some("still"));

    // Nesting: only the outermost uncork lets the sends go.
    assert_eq!(volley_server_cork(b), volley_result::Ok);
    assert_eq!(volley_server_cork(b), volley_result::Ok);
    send(b, ws, "nested");
    assert_eq!(volley_server_uncork(b), volley_result::Ok);
    assert_eq!(volley_server_uncork(b), volley_result::Ok);
    assert_eq!(read_text(&mut cb).as_deref(), Some("nested"));
    // One uncork too many does nothing.
    assert_eq!(volley_server_uncork(b), volley_result::Ok);
    send(b, ws, "uncorked");
    assert_eq!(read_text(&mut cb).as_deref(), Some("uncorked"));
    volley_server_free(b);
}
