//! A server on a Unix stream socket (`ServerBuilder::bind_unix`): the
//! upgrade, frames both ways and a plain HTTP request travel as on TCP,
//! with several workers sharing the one socket; peers have no IP address.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::time::Duration;
use volley::{Fetch, Handler, Message, Options, Request, Response, Server, Upgrade, WebSocket};

struct App {
    seen: Mutex<Sender<String>>,
}

impl Handler for App {
    type Data = ();
    fn upgrade(&self, r: &Request<'_>) -> Upgrade<()> {
        let _ = self
            .seen
            .lock()
            .unwrap()
            .send(format!("upgrade from {:?}", r.remote_address()));
        Upgrade::accept(())
    }
    fn fetch(&self, r: &Request<'_>) -> Fetch {
        Fetch::Respond(Response::new(200, format!("path {}", r.path())))
    }
    fn message(&self, ws: &mut WebSocket<'_, ()>, m: Message<'_>) {
        ws.send(m);
    }
}

fn read_until(s: &mut UnixStream, end: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = [0u8; 4096];
    while !out.windows(end.len()).any(|w| w == end) {
        let n = s.read(&mut b).expect("read");
        assert!(
            n > 0,
            "closed early after {:?}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&b[..n]);
    }
    out
}

#[test]
fn a_unix_socket_server_upgrades_echoes_and_answers_http() {
    let dir = std::env::temp_dir().join(format!("volley-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ws.sock");
    let _ = std::fs::remove_file(&path);
    let (tx, rx) = channel();
    let server = Server::builder()
        .bind_unix(&path)
        .options(Options {
            workers: 2,
            ..Options::default()
        })
        .serve(App {
            seen: Mutex::new(tx),
        })
        .expect("serve on a Unix socket");
    assert_eq!(server.local_addr().port(), 0);

    // Several clients at once, so that both workers take some.
    for i in 0..8 {
        let mut c = UnixStream::connect(&path).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(common::upgrade_request("/", "").as_bytes())
            .unwrap();
        let head = read_until(&mut c, b"\r\n\r\n");
        assert!(
            head.starts_with(b"HTTP/1.1 101 "),
            "{}",
            String::from_utf8_lossy(&head)
        );
        let text = format!("hello {i}");
        // A masked text frame (mask 0: the payload goes as is).
        let mut f = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
        f.extend_from_slice(text.as_bytes());
        c.write_all(&f).unwrap();
        let mut back = vec![0u8; 2 + text.len()];
        c.read_exact(&mut back).unwrap();
        assert_eq!(back[0], 0x81);
        assert_eq!(&back[2..], text.as_bytes());
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            "upgrade from None"
        );
    }

    let mut c = UnixStream::connect(&path).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    drop(c);
    let all = String::from_utf8_lossy(&all);
    assert!(all.starts_with("HTTP/1.1 200 "), "{all}");
    assert!(all.ends_with("path /healthz"), "{all}");

    server.stop();
    server.join();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_unix_socket_refuses_reuse_port_and_an_existing_path() {
    let dir = std::env::temp_dir().join(format!("volley-unix-r-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ws.sock");
    let _ = std::fs::remove_file(&path);
    let e = Server::builder()
        .bind_unix(&path)
        .options(Options {
            reuse_port: true,
            ..Options::default()
        })
        .serve(common::Echo)
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("reuse_port"), "{e}");

    std::fs::write(&path, b"not a socket").unwrap();
    let e = Server::builder()
        .bind_unix(&path)
        .serve(common::Echo)
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
    let _ = std::fs::remove_dir_all(&dir);
}
