//! `volley serve` as a user runs it: the demo server binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `volley serve`, its port, and its stdout (held open: the
/// server prints to it).
struct Serve(Child, u16, #[allow(dead_code)] BufReader<ChildStdout>);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `volley serve` on port 0 and reads the port it got from its
/// "listening on" line. (Picking a free port first and passing it races
/// with the other tests here: another test's server, one that is about to
/// be killed, can take that port in between, and the probe then talks to
/// the wrong server; CI once saw that as a reset.)
fn serve(args: &[&str]) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["serve", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let port = line
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("volley serve did not start: {line:?}"));
    Serve(child, port, out)
}

fn upgrade(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "));
    s
}

#[test]
fn echo_loses_nothing_to_a_client_that_reads_late() {
    // 2,000 messages of 16 KiB (32 MiB, twice the backpressure limit) sent
    // before reading a byte: the server stops reading at backpressure and
    // resumes on drain, so every echo arrives.
    let s = serve(&["--workers", "1"]);
    let sock = upgrade(s.1);
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    const N: usize = 2000;
    const SIZE: usize = 16 * 1024;
    let mut w = sock.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let key = [7u8, 7, 7, 7];
        for i in 0..N {
            let mut f = vec![0x82, 0x80 | 126];
            f.extend_from_slice(&(SIZE as u16).to_be_bytes());
            f.extend_from_slice(&key);
            f.extend(std::iter::repeat_n((i % 251) as u8 ^ 7, SIZE));
            w.write_all(&f).unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    let mut r = sock;
    let mut got = 0;
    let mut head = [0u8; 4];
    let mut body = vec![0u8; SIZE];
    while got < N {
        r.read_exact(&mut head).expect("every echo arrives");
        assert_eq!(head, [0x82, 126, (SIZE >> 8) as u8, SIZE as u8]);
        r.read_exact(&mut body).unwrap();
        assert!(
            body.iter().all(|&b| b == (got % 251) as u8),
            "echo {got} in order"
        );
        got += 1;
    }
    writer.join().unwrap();
}

/// `volley serve` alone, to completion: its exit status and stderr.
fn run_serve(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_volley"))
        .arg("serve")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[test]
fn a_second_serve_on_a_taken_port_fails_unless_both_share_it() {
    let a = serve(&["--workers", "2"]);
    let port = a.1.to_string();
    let (code, err) = run_serve(&["--port", &port]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("in use"), "{err}");
    let (code, err) = run_serve(&["--port", &port, "--reuse-port"]);
    assert_eq!(
        code,
        Some(1),
        "a reuse-port server joined an exclusive one: {err}"
    );
    drop(a);
    let b = serve(&["--workers", "2", "--reuse-port"]);
    let port = b.1.to_string();
    // Sharing: a second --reuse-port server starts (and is still running
    // when the wait gives up: killed, no exit code).
    let (code, err) = run_serve(&["--port", &port, "--reuse-port"]);
    assert_eq!(code, None, "{err}");
    let (code, err) = run_serve(&["--port", &port]);
    assert_eq!(code, Some(1), "{err}");
}

#[test]
fn every_subcommand_answers_help() {
    for cmd in ["serve", "bench", "tcp-echo"] {
        for flag in ["--help", "-h"] {
            let out = Command::new(env!("CARGO_BIN_EXE_volley"))
                .args([cmd, flag])
                .output()
                .unwrap();
            assert!(out.status.success(), "{cmd} {flag}: {:?}", out.status);
            let text = String::from_utf8(out.stdout).unwrap();
            assert!(
                text.starts_with("USAGE:") && text.contains(&format!("volley {cmd}")),
                "{text}"
            );
        }
    }
}
