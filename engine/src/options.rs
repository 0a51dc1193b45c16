//! Server options, with Bun's defaults.

use crate::proto::connection::Config as ConnectionConfig;
use crate::proto::decoder::Limits;
use crate::proto::handshake::HeadLimits;
use crate::proto::requests;
use crate::proto::session::Timeouts;
use crate::{Deflate, SlowConsumer};
use std::time::Duration;

/// Server options. `Default` gives Bun's defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest message accepted, summed over its fragments; larger closes with 1009
    /// before it is buffered. Default 16 MiB.
    pub max_payload_length: usize,
    /// Inbound silence after which a connection is closed (1001). With
    /// `send_pings` (and no `ping_interval`) a ping goes out after half of
    /// it, as Bun does, so a live peer answers long before the limit.
    /// Outbound traffic does not reset it. `Duration::ZERO` disables.
    /// Default 120 s. Behind a proxy that cuts idle connections (nginx and
    /// most cloud load balancers: 60 s by default), keep `idle_timeout / 2`
    /// (or `ping_interval`) under the proxy's timeout.
    pub idle_timeout: Duration,
    /// Bytes queued for one connection past which sends are dropped. Default 16 MiB.
    pub backpressure_limit: usize,
    /// Close (1008) a connection whose send would pass `backpressure_limit`
    /// instead of dropping the message. Default false.
    pub close_on_backpressure_limit: bool,
    /// Ping silent peers instead of closing them at once. Default true.
    pub send_pings: bool,
    /// Ping after this much inbound silence (and again each interval); `None`
    /// pings at half the `idle_timeout`. A peer that answers is then never
    /// idle-closed unless `idle_timeout` passes without any inbound frame.
    /// Default `None`.
    pub ping_interval: Option<Duration>,
    /// With an explicit `ping_interval`: how long a pinged peer has to send
    /// anything before it is closed. (The default pings at half the idle
    /// timeout and closes at the idle timeout.) Default 30 s.
    pub pong_timeout: Duration,
    /// A connection whose queued bytes have not moved for this long is
    /// taken for dead and dropped (a WebSocket's close handler sees 1006
    /// "send timeout"), in every phase: WebSocket, HTTP answers, streamed
    /// bodies, Server-Sent Events. Finds half-open peers that a silent
    /// stream or a keep-alive comment alone would hold for minutes (TCP
    /// retransmits first). `Duration::ZERO` disables. Default 60 s.
    pub send_timeout: Duration,
    /// Close (1001) every connection this long after it opened. Default `None`.
    pub max_lifetime: Option<Duration>,
    /// Time for a client to send its whole request (head and body), for a
    /// deferred upgrade to be answered, and for a keep-alive HTTP connection
    /// to start its next request. Default 10 s.
    pub handshake_timeout: Duration,
    /// Time for a deferred HTTP answer ([`crate::Fetch::Later`], [`crate::Fetch::Defer`])
    /// before the client gets 503. Default 60 s.
    pub request_timeout: Duration,
    /// Largest HTTP request body (`Content-Length` or chunked), 413 past it.
    /// Default 16 MiB.
    pub max_body_bytes: usize,
    /// Bytes of commands (sends, publishes, answers from other threads)
    /// one worker's mailbox holds before it refuses more: a sender that
    /// outruns a worker gets `Dropped` (or an error) instead of growing the
    /// process without bound. Default 64 MiB.
    pub mailbox_bytes: usize,
    /// Event-queue mode ([`crate::ServerBuilder::serve_queue`]): bytes of
    /// events the host has not drained past which the workers stop reading
    /// their sockets until it catches up. Default 64 MiB.
    pub queue_bytes: usize,
    /// Time the peer has to answer a close frame before the TCP connection is
    /// dropped. Default 5 s.
    pub close_timeout: Duration,
    /// Largest request head in bytes (431 past it). Default 16 KiB.
    pub max_header_bytes: usize,
    /// Most request header lines (431 past it). Default 64.
    pub max_headers: usize,
    /// Most TCP connections held at once, all workers together; past it a
    /// new connection is answered 503 and closed before any upgrade.
    /// 0: no limit (the process's file descriptor limit still applies).
    /// Default 0.
    pub max_connections: usize,
    /// Most frames in one fragmented message (1008 past it). Default 131,072
    /// (twice what Autobahn's largest fragmented cases send).
    pub max_fragments: u32,
    /// Unsent pong bytes a connection may accumulate while it reads nothing
    /// of what the server writes (1008 past it: a ping flood). Pongs
    /// otherwise pass the backpressure limit. Default 64 KiB.
    pub max_control_backlog: usize,
    /// Worker threads, each with its own event loop (at most 256). Default:
    /// one per core.
    pub workers: usize,
    /// Share the port (Bun's `reusePort`, websockets' `reuse_port`): each
    /// worker binds its own `SO_REUSEPORT` listener, and other processes
    /// of the same user may bind the port too and take part of its
    /// connections. Default false: the port is this server's alone (a
    /// second bind fails with "address in use"); the workers share one
    /// listening socket, each woken alone (`EPOLLEXCLUSIVE`).
    pub reuse_port: bool,
    /// Deliver a connection's publishes to itself too. Default false.
    pub publish_to_self: bool,
    /// What a slow subscriber gets by default (per topic:
    /// [`crate::ServerHandle::set_topic_policy`]). Default [`SlowConsumer::DropNewest`].
    pub slow_consumer: SlowConsumer,
    /// Interval of keep-alive comments on `text/event-stream` responses.
    /// Default 15 s.
    pub sse_keepalive: Duration,
    /// Serve `wss://` with this configuration (see [`crate::tls::server_config`]).
    /// Default `None`: plain TCP.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// permessage-deflate (RFC 7692), like Bun's `perMessageDeflate`: `None`
    /// (default) declines every offer. With [`Deflate`], messages of at
    /// least `threshold` bytes are compressed when the client agreed.
    pub per_message_deflate: Option<Deflate>,
    /// Bridge topics across processes through Redis pub/sub:
    /// `redis://[:password@]host[:port][/prefix]` or `rediss://` (TLS).
    /// Every publish also goes to the channel `prefix:topic` (prefix
    /// default `volley`), and the server subscribes to the channel of each
    /// topic it has subscribers for. Needs the `redis-bridge` feature
    /// (starting the server fails without it). Default `None`.
    pub pubsub_bridge: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_payload_length: 16 * 1024 * 1024,
            idle_timeout: Duration::from_secs(120),
            backpressure_limit: 16 * 1024 * 1024,
            close_on_backpressure_limit: false,
            send_pings: true,
            ping_interval: None,
            pong_timeout: Duration::from_secs(30),
            reuse_port: false,
            send_timeout: Duration::from_secs(60),
            max_lifetime: None,
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_body_bytes: 16 * 1024 * 1024,
            mailbox_bytes: 64 * 1024 * 1024,
            queue_bytes: 64 * 1024 * 1024,
            close_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_connections: 0,
            max_fragments: 1 << 17,
            max_control_backlog: 64 * 1024,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            publish_to_self: false,
            slow_consumer: SlowConsumer::DropNewest,
            sse_keepalive: Duration::from_secs(15),
            per_message_deflate: None,
            tls: None,
            pubsub_bridge: None,
        }
    }
}

impl Options {
    /// The limits a connection's input is read under, resolved once.
    pub(crate) fn connection_config(&self) -> ConnectionConfig {
        let limits = |rsv1_allowed| Limits {
            max_message: self.max_payload_length,
            rsv1_allowed,
            max_fragments: self.max_fragments,
        };
        ConnectionConfig {
            plain: limits(false),
            deflate: limits(true),
            max_message: self.max_payload_length,
            max_control_backlog: self.max_control_backlog,
            http: requests::Limits {
                head: HeadLimits {
                    max_bytes: self.max_header_bytes,
                    max_headers: self.max_headers,
                },
                max_body: self.max_body_bytes,
            },
            timeouts: self.timeouts(),
        }
    }

    /// The time limits a connection lives under, resolved once per worker
    /// (zero turns `send_timeout`, `sse_keepalive` and `idle_timeout` off).
    pub(crate) fn timeouts(&self) -> Timeouts {
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        let idle = nonzero(self.idle_timeout);
        Timeouts {
            handshake: self.handshake_timeout,
            request: self.request_timeout,
            close: self.close_timeout,
            send: nonzero(self.send_timeout),
            sse_keepalive: nonzero(self.sse_keepalive),
            max_lifetime: self.max_lifetime,
            // `ping_interval`, else half the idle timeout (Bun's: a live
            // peer's pong comes back long before `idle_timeout` of silence
            // closes it, and a proxy in between sees traffic twice per idle
            // timeout).
            ping: self
                .send_pings
                .then(|| self.ping_interval.or(idle.map(|i| i / 2)))
                .flatten()
                .and_then(nonzero),
            // Only with an explicit `ping_interval`: the default pings at
            // half the idle timeout, and the idle timeout itself closes a
            // silent peer.
            pong_wait: self.ping_interval.map(|_| self.pong_timeout),
            idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_follow_buns_ping_rules() {
        let s = Duration::from_secs;
        let t = Options::default().timeouts();
        assert_eq!(
            (t.ping, t.pong_wait, t.idle),
            (Some(s(60)), None, Some(s(120)))
        );
        let o = Options {
            ping_interval: Some(s(20)),
            ..Default::default()
        };
        let t = o.timeouts();
        assert_eq!((t.ping, t.pong_wait), (Some(s(20)), Some(s(30))));
        let o = Options {
            send_pings: false,
            ping_interval: Some(s(20)),
            ..Default::default()
        };
        assert_eq!(o.timeouts().ping, None);
        let o = Options {
            idle_timeout: Duration::ZERO,
            send_timeout: Duration::ZERO,
            sse_keepalive: Duration::ZERO,
            ..Default::default()
        };
        let t = o.timeouts();
        assert_eq!(
            (t.ping, t.idle, t.send, t.sse_keepalive),
            (None, None, None, None)
        );
    }
}
