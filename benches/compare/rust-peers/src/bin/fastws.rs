//! fastwebsockets peer: /echo only (fastwebsockets has no pub/sub; its
//! fan-out would be hand-written here, not the library's). The HTTP upgrade
//! is parsed by hand so no HTTP framework sits in the measurement.
use base64::Engine;
use fastwebsockets::{Frame, OpCode, Role, WebSocket};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn handshake(sock: &mut TcpStream) -> Option<()> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut tmp = [0u8; 1024];
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(_) = req.parse(&buf).ok()? {
            let key = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))?
                .value;
            let mut h = Sha1::new();
            h.update(key);
            h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
            let accept = base64::engine::general_purpose::STANDARD.encode(h.finalize());
            let resp = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
            sock.write_all(resp.as_bytes()).await.ok()?;
            return Some(());
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "9001".into());
    let listener = TcpListener::bind(format!("127.0.0.1:{port}")).await.unwrap();
    println!("fastwebsockets: listening on http://127.0.0.1:{port}/");
    loop {
        let (mut sock, _) = listener.accept().await.unwrap();
        let _ = sock.set_nodelay(true);
        tokio::spawn(async move {
            if handshake(&mut sock).await.is_none() {
                return;
            }
            let mut ws = WebSocket::after_handshake(sock, Role::Server);
            ws.set_auto_close(true);
            ws.set_auto_pong(true);
            ws.set_max_message_size(16 << 20);
            let mut ws = fastwebsockets::FragmentCollector::new(ws);
            while let Ok(frame) = ws.read_frame().await {
                match frame.opcode {
                    OpCode::Text | OpCode::Binary => {
                        let f = Frame::new(true, frame.opcode, None, frame.payload);
                        if ws.write_frame(f).await.is_err() {
                            break;
                        }
                    }
                    OpCode::Close => break,
                    _ => {}
                }
            }
        });
    }
}
