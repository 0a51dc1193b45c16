//! tokio-tungstenite peer: /echo, /sub, /pub on topic "t" (a broadcast channel).
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// One thread (benches/compare), or TOKIO_WORKERS threads on tokio's
/// work-stealing runtime (benches/scaling).
fn main() {
    let threads: usize = std::env::var("TOKIO_WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let rt = if threads > 1 {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_io().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_io().build()
    };
    rt.unwrap().block_on(serve());
}

async fn serve() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "9001".into());
    let listener = TcpListener::bind(format!("127.0.0.1:{port}")).await.unwrap();
    println!("tungstenite: listening on http://127.0.0.1:{port}/");
    let (tx, _) = broadcast::channel::<(u64, Message)>(4096);
    let mut next_id = 0u64;
    loop {
        let (sock, _) = listener.accept().await.unwrap();
        let _ = sock.set_nodelay(true);
        next_id += 1;
        let (id, tx) = (next_id, tx.clone());
        tokio::spawn(async move {
            let mut path = String::new();
            let cb = |req: &Request, resp: Response| {
                path = req.uri().path().to_string();
                Ok(resp)
            };
            let mut cfg = WebSocketConfig::default();
            cfg.max_message_size = Some(16 << 20);
            let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(sock, cb, Some(cfg)).await else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            match path.as_str() {
                "/echo" => {
                    while let Some(Ok(m)) = stream.next().await {
                        if (m.is_text() || m.is_binary()) && sink.send(m).await.is_err() {
                            break;
                        }
                    }
                }
                _ => {
                    if path == "/sub" {
                        let mut rx = tx.subscribe();
                        tokio::spawn(async move {
                            loop {
                                match rx.recv().await {
                                    Ok((from, m)) if from != id => {
                                        if sink.send(m).await.is_err() {
                                            break;
                                        }
                                    }
                                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                                    Err(_) => break,
                                }
                            }
                        });
                    }
                    while let Some(Ok(m)) = stream.next().await {
                        if m.is_text() || m.is_binary() {
                            let _ = tx.send((id, m));
                        }
                    }
                }
            }
        });
    }
}
