//! Out of file descriptors: `accept` fails with EMFILE while clients wait
//! in the listen backlog. The listener is level triggered, so a worker that
//! only gave up would be told of them again every turn and spin; it takes
//! the listener out of the poll and retries on a timer instead, and serves
//! the waiting client once a descriptor frees. (Its own test binary: the
//! limit is per process.)

mod common;

use common::Client;
use std::net::TcpStream;
use std::time::Duration;
use volley::{Options, Server};

fn set_nofile(n: u64, max: u64) {
    let l = libc::rlimit {
        rlim_cur: n,
        rlim_max: max,
    };
    // SAFETY: setting this process's own soft limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) }, 0);
}

#[test]
fn a_client_left_in_the_backlog_by_emfile_is_served_once_a_descriptor_frees() {
    let s = Server::builder()
        .options(Options {
            workers: 1,
            ..Options::default()
        })
        .serve(common::Echo)
        .unwrap();
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit to fill.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
    let mut first = Client::connect(s.local_addr(), "/");
    first.text("one");
    assert_eq!(first.read_frame().unwrap().payload, b"one");
    // The second client's socket, then a limit at the lowest free
    // descriptor: the server cannot accept it.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // SAFETY: dup of stdin gives the lowest free descriptor; closed at once.
    let lowest = unsafe { libc::dup(0) };
    assert!(lowest > 0);
    // SAFETY: closing the descriptor dup just gave us.
    unsafe { libc::close(lowest) };
    set_nofile(lowest as u64, old.rlim_max);
    sock.connect(&s.local_addr().into()).unwrap();
    let mut second = Client::from_stream(TcpStream::from(sock));
    second.write(common::upgrade_request("/", "").as_bytes());
    // While it cannot accept, the worker waits rather than spins: this
    // process (the worker and this sleeping thread) uses a small part of
    // the 300 ms (a spinning worker would use nearly all of it).
    let cpu = || {
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: filling a valid rusage for this process.
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) }, 0);
        let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        Duration::from_micros(us(u.ru_utime) + us(u.ru_stime))
    };
    let before = cpu();
    std::thread::sleep(Duration::from_millis(300));
    let used = cpu() - before;
    assert!(
        used < Duration::from_millis(150),
        "{used:?} of CPU in 300 ms"
    );
    // Free descriptors: the first client leaves, the server closes its end.
    drop(first);
    second
        .sock
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let head = second.read_head();
    set_nofile(old.rlim_cur, old.rlim_max);
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "the waiting client was not served: {head:?}"
    );
}
