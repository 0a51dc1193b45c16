//! `volley_server_close_idle`: NULL is refused, a call from one of the
//! server's own worker threads (a callback) is WRONG_THREAD instead of
//! waiting for itself, and from elsewhere it closes the idle keep-alive
//! connections and says how many.

mod common;

use common::{connect, frame, no_handlers, server, until};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use volley::*;

static IN_CALLBACK: Mutex<Option<volley_result>> = Mutex::new(None);

unsafe extern "C" fn on_message(
    _: *mut std::ffi::c_void,
    s: *mut volley_server,
    _: *const volley_event,
) {
    *IN_CALLBACK.lock().unwrap() = Some(volley_server_close_idle(s, std::ptr::null_mut()));
}

unsafe extern "C" fn on_request(
    _: *mut std::ffi::c_void,
    s: *mut volley_server,
    ev: *const volley_event,
) {
    // SAFETY: the library passes a live event for the call.
    let ws = unsafe { (*ev).ws };
    assert_eq!(
        volley_respond(s, ws, 200, std::ptr::null(), 0, b"x".as_ptr(), 1),
        volley_result::Ok
    );
}

#[test]
fn close_idle_from_a_callback_is_wrong_thread_and_from_elsewhere_closes_the_idle() {
    let mut closed = 7usize;
    assert_eq!(
        volley_server_close_idle(std::ptr::null(), &mut closed),
        volley_result::NullParameter
    );
    let mut h = no_handlers();
    h.on_message = Some(on_message);
    h.on_request = Some(on_request);
    let s = server(&h);
    let port = volley_server_port(s);
    let mut ws = connect(port);
    frame(&mut ws, 0x1, b"go");
    until("the callback's call", || {
        IN_CALLBACK.lock().unwrap().is_some()
    });
    assert_eq!(
        *IN_CALLBACK.lock().unwrap(),
        Some(volley_result::WrongThread)
    );
    // Two answered keep-alive connections: idle.
    let mut idle: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut b = [0u8; 256];
            let n = c.read(&mut b).unwrap();
            assert!(b[..n].starts_with(b"HTTP/1.1 200 "));
            c
        })
        .collect();
    assert_eq!(volley_server_close_idle(s, &mut closed), volley_result::Ok);
    assert_eq!(closed, 2);
    for c in &mut idle {
        let mut b = [0u8; 16];
        assert_eq!(c.read(&mut b).unwrap(), 0, "closed");
    }
    assert_eq!(
        volley_server_close_idle(s, std::ptr::null_mut()),
        volley_result::Ok
    );
    volley_server_free(s);
    assert_eq!(
        volley_server_close_idle(s, &mut closed),
        volley_result::Stopped
    );
}
