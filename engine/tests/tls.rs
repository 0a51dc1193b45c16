//! `wss://`: a self-signed certificate made at run time (rcgen), a rustls
//! client through the upgrade and an echo, the TLS handshake timeout, and
//! garbage on the TLS port.

mod common;

use common::Echo;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use volley::proto::frame::{self, OpCode};
use volley::proto::mask::apply_mask;
use volley::{Options, Server};

fn tls_server(handshake_timeout: Duration) -> (Server, Vec<u8>) {
    tls_server_with(Options {
        handshake_timeout,
        ..Options::default()
    })
}

fn tls_server_with(opts: Options) -> (Server, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = ck.cert.pem();
    let cfg =
        volley::tls::server_config(cert_pem.as_bytes(), ck.key_pair.serialize_pem().as_bytes())
            .unwrap();
    let s = Server::builder()
        .options(Options {
            tls: Some(cfg),
            ..opts
        })
        .serve(Echo)
        .unwrap();
    (s, ck.cert.der().to_vec())
}

fn client(
    addr: std::net::SocketAddr,
    cert_der: &[u8],
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(cert_der.to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    rustls::StreamOwned::new(conn, sock)
}

fn read_until(s: &mut impl Read, buf: &mut Vec<u8>, done: impl Fn(&[u8]) -> bool) {
    let mut tmp = [0u8; 65536];
    while !done(buf) {
        let n = s.read(&mut tmp).expect("read");
        assert!(n > 0, "EOF");
        buf.extend_from_slice(&tmp[..n]);
    }
}

#[test]
fn wss_upgrade_and_echo() {
    let (s, der) = tls_server(Duration::from_secs(10));
    let mut c = client(s.local_addr(), &der);
    c.write_all(common::upgrade_request("/", "").as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    read_until(&mut c, &mut buf, |b| b.windows(4).any(|w| w == b"\r\n\r\n"));
    assert!(
        buf.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    assert_eq!(c.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    for size in [5usize, 70_000, 300_000] {
        let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let key = [1, 2, 3, 4];
        let mut h = [0u8; 14];
        let n = frame::encode_header(&mut h, true, false, OpCode::Binary, size as u64, Some(key));
        let mut wire = h[..n].to_vec();
        let mut masked = payload.clone();
        apply_mask(&mut masked, key, 0);
        wire.extend_from_slice(&masked);
        c.write_all(&wire).unwrap();
        let mut got = Vec::new();
        read_until(&mut c, &mut got, |b| {
            frame::parse_header(b)
                .ok()
                .flatten()
                .is_some_and(|h| b.len() >= h.header_len + h.len as usize)
        });
        let h = frame::parse_header(&got).unwrap().unwrap();
        assert_eq!(&got[h.header_len..], &payload[..], "{size} bytes over TLS");
    }
}

#[test]
fn a_silent_tls_client_is_dropped_at_the_handshake_timeout() {
    let (s, _) = tls_server(Duration::from_millis(300));
    let mut raw = TcpStream::connect(s.local_addr()).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t = Instant::now();
    let mut b = [0u8; 16];
    assert!(matches!(raw.read(&mut b), Ok(0) | Err(_)), "closed");
    assert!(t.elapsed() >= Duration::from_millis(250) && t.elapsed() < Duration::from_secs(3));
}

#[test]
fn plaintext_on_the_tls_port_is_closed() {
    let (s, der) = tls_server(Duration::from_secs(10));
    let mut raw = TcpStream::connect(s.local_addr()).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    raw.write_all(common::upgrade_request("/", "").as_bytes())
        .unwrap();
    let mut out = Vec::new();
    let _ = raw.read_to_end(&mut out);
    assert!(!out.starts_with(b"HTTP/1.1 101"), "no upgrade without TLS");
    // And the server still serves TLS clients.
    let mut c = client(s.local_addr(), &der);
    c.write_all(common::upgrade_request("/", "").as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    read_until(&mut c, &mut buf, |b| b.windows(4).any(|w| w == b"\r\n\r\n"));
    assert!(buf.starts_with(b"HTTP/1.1 101 "));
}

/// Upgrade over TLS and read the 101.
fn upgraded(
    addr: std::net::SocketAddr,
    der: &[u8],
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut c = client(addr, der);
    c.write_all(common::upgrade_request("/", "").as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    read_until(&mut c, &mut buf, |b| b.windows(4).any(|w| w == b"\r\n\r\n"));
    assert!(buf.starts_with(b"HTTP/1.1 101 "));
    c
}

#[test]
fn overload_on_a_tls_port_closes_without_plaintext() {
    let (s, der) = tls_server_with(Options {
        max_connections: 1,
        close_timeout: Duration::from_millis(200),
        ..Options::default()
    });
    let _held = upgraded(s.local_addr(), &der);
    let mut raw = TcpStream::connect(s.local_addr()).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let _ = raw.read_to_end(&mut out);
    assert!(
        out.is_empty(),
        "a TLS client got plaintext: {:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(
        s.stats().refused.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn a_closed_wss_connection_ends_with_close_notify() {
    let (s, der) = tls_server(Duration::from_secs(10));
    let mut c = upgraded(s.local_addr(), &der);
    let handle = s.handle();
    let stopper = std::thread::spawn(move || handle.stop());
    // Our close frame in answer to the server's 1001, then the stream ends
    // cleanly: rustls reports Ok(0) only after the peer's close_notify
    // (a bare TCP close is an UnexpectedEof error).
    let mut buf = Vec::new();
    read_until(&mut c, &mut buf, |b| {
        frame::parse_header(b)
            .ok()
            .flatten()
            .is_some_and(|h| b.len() >= h.header_len + h.len as usize)
    });
    assert_eq!(buf[0], 0x88);
    let mut close = vec![0x88, 0x82, 0, 0, 0, 0];
    close.extend_from_slice(&buf[2..4]);
    c.write_all(&close).unwrap();
    let mut tmp = [0u8; 64];
    loop {
        match c.read(&mut tmp) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("the stream did not end with close_notify: {e}"),
        }
    }
    drop(c);
    stopper.join().unwrap();
    s.join();
}
