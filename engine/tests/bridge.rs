//! The Redis bridge when Redis is not there: local pub/sub is untouched,
//! what could not cross is counted, and stopping does not wait on Redis.
//! (With a real redis-server: tests/interop/python/test_bridge.py.)
#![cfg(feature = "redis-bridge")]

mod common;

use common::Client;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use volley::{Handler, Message, Options, Request, Server, Upgrade, WebSocket};

struct Room;
impl Handler for Room {
    type Data = ();
    fn upgrade(&self, _r: &Request<'_>) -> Upgrade<()> {
        Upgrade::accept(())
    }
    fn open(&self, ws: &mut WebSocket<'_, ()>) {
        ws.subscribe("t");
    }
    fn message(&self, ws: &mut WebSocket<'_, ()>, m: Message<'_>) {
        ws.publish("t", m);
    }
}

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn without_redis_local_publishing_works_and_the_loss_is_counted() {
    let server = Server::builder()
        .options(Options {
            workers: 2,
            pubsub_bridge: Some(format!("redis://127.0.0.1:{}/x", dead_port())),
            ..Options::default()
        })
        .serve(Room)
        .unwrap();
    let addr = server.local_addr();
    let mut a = Client::connect(addr, "/");
    let mut b = Client::connect(addr, "/");
    for i in 0..100 {
        a.text(&format!("m{i}"));
    }
    for i in 0..100 {
        let f = b.read_frame().expect("local delivery");
        assert_eq!(f.payload, format!("m{i}").as_bytes());
    }
    let stats = server.stats();
    let t = Instant::now();
    while stats.bridge_lost.load(Ordering::Relaxed) < 100 {
        assert!(t.elapsed() < Duration::from_secs(10), "the loss is counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stats.bridged_out.load(Ordering::Relaxed), 0);
    let t = Instant::now();
    server.stop_now();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stopping waited {:?} for the bridge",
        t.elapsed()
    );
}

#[test]
fn a_malformed_bridge_url_fails_to_start() {
    let err = Server::builder()
        .options(Options {
            pubsub_bridge: Some("http://127.0.0.1:1".into()),
            ..Options::default()
        })
        .serve(Room)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
