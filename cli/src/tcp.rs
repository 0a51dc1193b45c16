//! Raw TCP baselines for the performance table: `volley tcp-echo` (a plain
//! byte echo server, one thread per connection) and `volley bench tcp` (the
//! 64 KiB echo pattern over bare TCP), so WebSocket throughput can be quoted
//! as a share of what loopback TCP carries on the same machine.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub fn serve(args: &[String]) -> ExitCode {
    let flags = match crate::flags(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("volley tcp-echo: {e}");
            return ExitCode::from(2);
        }
    };
    let port = flags
        .iter()
        .find(|(k, _)| k == "port")
        .map_or("9001", |(_, v)| v.as_str());
    let l = match TcpListener::bind(format!("127.0.0.1:{port}")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("volley tcp-echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("tcp-echo: listening on http://{}/", l.local_addr().unwrap());
    for s in l.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = s.set_nodelay(true);
            let mut r = s.try_clone().expect("clone");
            let mut w = s;
            let mut buf = vec![0u8; 256 * 1024];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 || w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    ExitCode::SUCCESS
}

/// `conns` connections, each one thread keeping `inflight` blocks of `size`
/// bytes in flight (write the window, then read a block back, write one
/// more); returns echoed MB/s over `secs`.
pub fn bench(
    addr: &str,
    conns: usize,
    inflight: usize,
    size: usize,
    warmup: f64,
    secs: f64,
) -> Result<f64, String> {
    let got = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for _ in 0..conns {
        let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        let _ = s.set_nodelay(true);
        let (got, stop) = (got.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let block = vec![b'x'; size];
            let mut buf = vec![0u8; size];
            for _ in 0..inflight {
                if s.write_all(&block).is_err() {
                    return;
                }
            }
            while !stop.load(Ordering::Relaxed) {
                if s.read_exact(&mut buf).is_err() || s.write_all(&block).is_err() {
                    return;
                }
                got.fetch_add(size as u64, Ordering::Relaxed);
            }
        }));
    }
    std::thread::sleep(Duration::from_secs_f64(warmup));
    let g0 = got.load(Ordering::Relaxed);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let mb = (got.load(Ordering::Relaxed) - g0) as f64 / t0.elapsed().as_secs_f64() / 1e6;
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    Ok(mb)
}
