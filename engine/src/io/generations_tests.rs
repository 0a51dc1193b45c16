//! A connection id's generation is 64 bits wide end to end: a stale id
//! whose generation agrees with the slot's new occupant in its low 32 bits
//! (everything the worker keeps beside the connection, and more than the
//! in-flight tag's 16) still never reaches the new occupant. The worker's
//! generations stride by 2^32 here (`GENERATION_STRIDE`, unit tests only),
//! so two occupants of one slot differ only in the top half.

use super::conn::GENERATION_STRIDE;
use crate::{Handler, Message, Options, Request, SendStatus, Server, Upgrade, WebSocket, WsHandle};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

struct Opens(Mutex<Sender<WsHandle>>);

impl Handler for Opens {
    type Data = ();
    fn upgrade(&self, _: &Request<'_>) -> Upgrade<()> {
        Upgrade::accept(())
    }
    fn open(&self, ws: &mut WebSocket<'_, ()>) {
        ws.subscribe("t");
        let _ = self.0.lock().unwrap().send(ws.handle());
    }
    fn message(&self, _: &mut WebSocket<'_, ()>, _: Message<'_>) {}
}

fn connect(s: &Server, opens: &Receiver<WsHandle>) -> (TcpStream, WsHandle) {
    let mut c = TcpStream::connect(s.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    (c, opens.recv_timeout(Duration::from_secs(5)).unwrap())
}

/// The next frame: (opcode, payload); short unmasked frames only.
fn frame(c: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    c.read_exact(&mut h).unwrap();
    let mut p = vec![0u8; usize::from(h[1] & 0x7f)];
    c.read_exact(&mut p).unwrap();
    (h[0] & 0x0f, p)
}

#[test]
fn a_stale_id_that_agrees_in_the_low_32_bits_never_reaches_the_new_occupant() {
    GENERATION_STRIDE.store(1 << 32, Ordering::Relaxed);
    let (tx, opens) = channel();
    let s = Server::builder()
        .options(Options {
            workers: 1,
            ..Options::default()
        })
        .serve(Opens(Mutex::new(tx)))
        .unwrap();
    let (mut a, old) = connect(&s, &opens);
    // A masked close (mask 0), answered; then the connection is reaped.
    a.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]).unwrap();
    assert_eq!(frame(&mut a).0, 0x8);
    drop(a);
    let t = Instant::now();
    while s.connections() > 0 {
        assert!(t.elapsed() < Duration::from_secs(5), "never reaped");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (mut b, new) = connect(&s, &opens);
    let (o, n) = (old.id(), new.id());
    assert_eq!((o.worker(), o.slot()), (n.worker(), n.slot()), "same slot");
    assert_ne!(o.generation(), n.generation());
    assert_eq!(
        o.generation() as u32,
        n.generation() as u32,
        "the stride makes the low halves agree"
    );

    assert_eq!(old.send("stale send"), SendStatus::Dropped);
    assert!(!old.close(4000, "stale close"));
    assert!(!old.ping(b"stale ping"));
    assert!(!old.set_data(()));
    assert!(!old.subscribe("u"));
    assert!(!old.pause_reading());
    assert!(!old.terminate());
    assert_eq!(old.buffered_amount(), 0);
    // The new occupant is untouched: its own send is the first thing it
    // gets, and it is still open and reading.
    assert_eq!(new.send("fresh"), SendStatus::Sent(7));
    assert_eq!(frame(&mut b), (0x1, b"fresh".to_vec()));
    // Both occupants subscribed to "t" at open, from the same slot: a
    // publish reaches the new one once, not again for the old entry.
    s.handle().publish("t", "pub");
    assert_eq!(new.send("after"), SendStatus::Sent(7));
    assert_eq!(frame(&mut b), (0x1, b"pub".to_vec()));
    assert_eq!(frame(&mut b), (0x1, b"after".to_vec()));
    assert_eq!(new.ready_state(), crate::ReadyState::Open);
    drop(b);
    s.handle().stop();
    s.join();
}
