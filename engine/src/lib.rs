//! Volley: a WebSocket server engine with Bun's `ServerWebSocket` surface.
//!
//! A [`Handler`] receives `upgrade`, `open`, `message`, `close`, `drain`,
//! `ping` and `pong` events on worker threads, each running its own `mio`
//! event loop; the [`WebSocket`] handle it gets sends, closes, pauses reading
//! and reports backpressure the way Bun does.
//!
//! # Examples
//!
//! An echo server:
//!
//! ```no_run
//! use volley::{Handler, Message, Request, Server, Upgrade, WebSocket};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     type Data = ();
//!     fn upgrade(&self, _req: &Request<'_>) -> Upgrade<()> {
//!         Upgrade::accept(())
//!     }
//!     fn message(&self, ws: &mut WebSocket<'_, ()>, msg: Message<'_>) {
//!         ws.send(msg);
//!     }
//! }
//!
//! let server = Server::builder().bind("127.0.0.1:9001").route("/echo").serve(Echo)?;
//! server.join();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Platform notes
//! The event loop uses `mio` (epoll on Linux, kqueue on the BSDs and macOS).
//! Per-worker listeners use `SO_REUSEPORT`, available on Linux and the BSDs.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

#[cfg(feature = "redis-bridge")]
mod bridge;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod harness;
mod id;
mod io;
mod options;
pub mod proto;
pub mod pubsub;
pub mod queue;
mod route;
mod server;

#[cfg(feature = "redis-bridge")]
pub use bridge::BridgeUrl;
pub use id::ConnId;
#[doc(hidden)]
#[cfg(feature = "testing")]
pub use io::bench_support;
pub use io::handler::Handler;
pub use io::reply::{Accept, Response};
pub use io::request::{Fetch, PendingResponse, PendingUpgrade, Request, Upgrade};
pub use io::state::{Inspect, ReadyState, SendStatus};
pub use io::stats::Stats;
pub use io::tls;
pub use io::websocket::{WebSocket, WsHandle};
pub use options::Options;
pub use proto::close;
pub use proto::deflate::{Config as Deflate, Mode as DeflateMode};
pub use proto::message::Message;
pub use pubsub::{Prepared, PublishResult, SlowConsumer};
pub use server::{Publisher, Server, ServerBuilder, ServerHandle};
