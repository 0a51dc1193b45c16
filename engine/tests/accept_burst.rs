//! A burst of connections waiting in the listen backlog at once. (Its own
//! test binary: it holds hundreds of descriptors, which the soak test's
//! leak count would see.)

mod common;

use common::Echo;
use common::{Client, upgrade_request};
use volley::{Options, Server};

/// A burst of connections, all in the listen backlog before any is served
/// (each worker takes one per listener event, more while the burst lasts):
/// every one is upgraded and echoes, with one worker and with two sharing
/// the listener.
#[test]
fn a_burst_of_connects_is_served_whole() {
    for workers in [1, 2] {
        let s = Server::builder()
            .options(Options {
                workers,
                ..Options::default()
            })
            .serve(Echo)
            .unwrap();
        let addr = s.local_addr();
        let mut socks: Vec<Client> = (0..600).map(|_| Client::raw(addr)).collect();
        let request = upgrade_request("/", "");
        for c in &mut socks {
            c.write(request.as_bytes());
        }
        for (i, c) in socks.iter_mut().enumerate() {
            let head = c.read_head();
            assert!(
                head.starts_with("HTTP/1.1 101"),
                "workers={workers} #{i}: {head:?}"
            );
        }
        for (i, c) in socks.iter_mut().enumerate() {
            let m = format!("burst {i}");
            c.text(&m);
            assert_eq!(c.read_frame().unwrap().payload, m.as_bytes());
        }
    }
}
