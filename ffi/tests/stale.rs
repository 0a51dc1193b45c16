//! Stale ids, closing connections and a stopped server each get their own
//! answer: CLOSED for a connection that is gone or closing (retrying never
//! helps), STOPPED once the server has stopped, 0 for a send (Bun's).

mod common;

use common::{connect, frame, no_handlers, server, until};
use std::sync::Mutex;
use volley::*;

static OPENED: Mutex<Vec<volley_ws>> = Mutex::new(Vec::new());
static CLOSED: Mutex<Vec<volley_ws>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_open(
    _: *mut std::ffi::c_void,
    _: *mut volley_server,
    ev: *const volley_event,
) {
    // SAFETY: the library passes a live event for the call.
    OPENED.lock().unwrap().push(unsafe { (*ev).ws });
}

unsafe extern "C" fn on_close(
    _: *mut std::ffi::c_void,
    _: *mut volley_server,
    ev: *const volley_event,
) {
    // SAFETY: as above.
    CLOSED.lock().unwrap().push(unsafe { (*ev).ws });
}

#[test]
fn stale_closing_and_stopped_each_get_their_answer() {
    let mut h = no_handlers();
    h.on_open = Some(on_open);
    h.on_close = Some(on_close);
    let s = server(&h);
    let port = volley_server_port(s);
    let t = b"t".as_ptr();

    // A connection that closed: its id is stale.
    let mut gone = connect(port);
    until("open", || OPENED.lock().unwrap().len() == 1);
    frame(&mut gone, 0x8, &[0x03, 0xe8]);
    until("close", || CLOSED.lock().unwrap().len() == 1);
    let stale = CLOSED.lock().unwrap()[0];
    assert_eq!(
        volley_ws_publish(s, stale, t, 1, b"x".as_ptr(), 1, 0, std::ptr::null_mut()),
        volley_result::Closed
    );
    assert_eq!(volley_ws_set_user(s, stale, 5), volley_result::Closed);
    assert_eq!(volley_ws_subscribe(s, stale, t, 1), volley_result::Closed);
    assert_eq!(volley_ws_send(s, stale, b"x".as_ptr(), 1, 0), 0);

    // A connection we started closing (its peer never answers): CLOSED, not BUSY.
    let _closing = connect(port);
    until("second open", || OPENED.lock().unwrap().len() == 2);
    let closing = OPENED.lock().unwrap()[1];
    assert_eq!(
        volley_ws_close(s, closing, 1000, std::ptr::null(), 0),
        volley_result::Ok
    );
    until("closing", || volley_ws_ready_state(s, closing) == 2);
    assert_eq!(
        volley_ws_close(s, closing, 1000, std::ptr::null(), 0),
        volley_result::Closed
    );
    assert_eq!(
        volley_ws_publish(s, closing, t, 1, b"x".as_ptr(), 1, 0, std::ptr::null_mut()),
        volley_result::Closed
    );

    // A stopped server.
    assert_eq!(volley_server_stop(s, VOLLEY_STOP_NOW), volley_result::Ok);
    assert_eq!(
        volley_server_publish(s, t, 1, b"x".as_ptr(), 1, 0, std::ptr::null_mut()),
        volley_result::Stopped
    );
    assert_eq!(
        volley_ws_publish(s, closing, t, 1, b"x".as_ptr(), 1, 0, std::ptr::null_mut()),
        volley_result::Stopped
    );
    assert_eq!(volley_ws_send(s, closing, b"x".as_ptr(), 1, 0), 0);
    volley_server_free(s);
}
