//! A write to a peer that reset the connection is an error for that one
//! connection, never a SIGPIPE: this process puts SIGPIPE back to its
//! default (which ends the process), as a C host that never touched it
//! has it, then makes the server write to reset connections (vectored
//! writes of queued echoes, and single ones). The test binary surviving
//! is the assertion; the server must also go on serving.

mod common;

use common::Client;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;
use volley::proto::frame::OpCode;
use volley::{Options, Server};

#[test]
fn writing_to_a_reset_connection_never_raises_sigpipe() {
    // SAFETY: setting a signal's disposition to its default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let server = Server::builder()
        .options(Options {
            max_payload_length: 1 << 20,
            ..Options::default()
        })
        .serve(common::Echo)
        .unwrap();
    let payload = vec![b'x'; 256 * 1024];
    for _ in 0..20 {
        let mut c = Client::connect(server.local_addr(), "/");
        // A small receive window: the echoes queue up on the server.
        socket2::SockRef::from(&c.sock)
            .set_recv_buffer_size(4096)
            .unwrap();
        for _ in 0..8 {
            c.frame(true, OpCode::Binary, &payload);
        }
        // Reset (SO_LINGER 0): the server's next writes meet ECONNRESET,
        // then EPIPE.
        socket2::SockRef::from(&c.sock)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(c);
    }
    // Some raw sockets that send a request and reset at once, too.
    for _ in 0..20 {
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        s.write_all(common::upgrade_request("/", "").as_bytes())
            .unwrap();
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    // Still alive, and still serving.
    let mut c = Client::connect(server.local_addr(), "/");
    c.text("still here");
    assert_eq!(c.read_frame().unwrap().payload, b"still here");
}
