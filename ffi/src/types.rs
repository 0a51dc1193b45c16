//! The types C sees: handles, byte views, events, requests, options, stats.

use std::ffi::c_char;

/// A WebSocket (or an HTTP request awaiting its answer), as an id that
/// stays safe after the connection is gone: a call with a closed or stale
/// id returns `VOLLEY_RESULT_CLOSED` (or Bun's `0` for sends) and never
/// touches another connection. Passed by value; compare all fields.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct volley_ws {
    /// Unique among the connections of its worker, forever (never 0).
    pub generation: u64,
    /// The worker (top 8 bits) and the slot in its table (low 24 bits).
    pub key: u32,
    /// Zero.
    pub reserved: u32,
}

/// A message to send, staged in memory the host reuses: this header, then
/// `len` bytes of payload right after it (at offset
/// `sizeof(volley_send_stage)`, 24). See `volley_ws_send_staged`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct volley_send_stage {
    /// The connection.
    pub ws: volley_ws,
    /// As `volley_ws_send`'s flags.
    pub flags: u32,
    /// Payload bytes following the header.
    pub len: u32,
}

const _: () = assert!(std::mem::size_of::<volley_send_stage>() == 24);

impl volley_ws {
    pub(crate) fn from_id(id: engine::ConnId) -> Self {
        let (key, generation) = id.to_raw();
        volley_ws {
            generation,
            key,
            reserved: 0,
        }
    }

    pub(crate) fn id(self) -> Option<engine::ConnId> {
        engine::ConnId::from_raw(self.key, self.generation)
    }

    pub(crate) const NONE: volley_ws = volley_ws {
        generation: 0,
        key: 0,
        reserved: 0,
    };
}

/// A view of bytes owned by someone else (see each use for how long it lives).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct volley_bytes {
    /// The first byte (may be NULL when `len` is 0).
    pub data: *const u8,
    /// How many.
    pub len: usize,
}

impl volley_bytes {
    pub(crate) fn of(b: &[u8]) -> Self {
        volley_bytes {
            data: b.as_ptr(),
            len: b.len(),
        }
    }

    pub(crate) const EMPTY: volley_bytes = volley_bytes {
        data: std::ptr::null(),
        len: 0,
    };
}

/// A header (or a route parameter): name and value.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct volley_header {
    /// The name.
    pub name: volley_bytes,
    /// The value.
    pub value: volley_bytes,
}

/// An HTTP request: an upgrade (`VOLLEY_EVENT_UPGRADE`) or a plain request
/// (`VOLLEY_EVENT_REQUEST`). Every pointer in it lives as long as the event
/// that carries it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct volley_request {
    /// `GET`, `POST`, …
    pub method: volley_bytes,
    /// The path, without the query.
    pub path: volley_bytes,
    /// The query, without `?` (empty when absent).
    pub query: volley_bytes,
    /// Header lines in order, names as sent.
    pub headers: *const volley_header,
    /// How many header lines.
    pub headers_len: usize,
    /// Route parameters (`/room/:id` gives `id`), raw.
    pub params: *const volley_header,
    /// How many route parameters.
    pub params_len: usize,
    /// Subprotocols the client offers, in its order.
    pub protocols: *const volley_bytes,
    /// How many subprotocols.
    pub protocols_len: usize,
    /// The peer's address as text (`127.0.0.1:4242`, `[::1]:4242`).
    pub remote_address: volley_bytes,
    /// The body (plain requests; empty for upgrades).
    pub body: volley_bytes,
    /// Did it come over TLS?
    pub secure: bool,
}

/// What an event is.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum volley_event_kind {
    /// A WebSocket upgrade request: answer with `volley_upgrade_accept` or
    /// `volley_upgrade_reject` (`request` is set).
    Upgrade = 1,
    /// A plain HTTP request, body read: answer with `volley_respond` or
    /// `volley_respond_events` (`request` is set).
    Request = 2,
    /// A WebSocket opened.
    Open = 3,
    /// A whole message in `data` (`VOLLEY_EVENT_BINARY` in `flags`, else
    /// UTF-8 text).
    Message = 4,
    /// The WebSocket closed: `code`, and the reason in `data`. Once per
    /// opened WebSocket; its id is stale afterwards.
    Close = 5,
    /// The backlog was written out after a send returned -1.
    Drain = 6,
    /// A ping arrived (the pong went automatically); payload in `data`.
    Ping = 7,
    /// A pong arrived; payload in `data`.
    Pong = 8,
    /// A published message this slow subscriber did not get: `topic`, and
    /// the message in `data`.
    Dropped = 9,
    /// A topic got its first subscriber (`VOLLEY_EVENT_ACTIVE` in `flags`)
    /// or lost its last: the topic in `topic`; `ws` is all zeros.
    Topic = 10,
}

/// `flags` of a binary message (or dropped message).
pub const VOLLEY_EVENT_BINARY: u32 = 1;
/// `flags` of a topic event: the topic got its first subscriber.
pub const VOLLEY_EVENT_ACTIVE: u32 = 2;

/// One event, for a callback (valid during the call) or from
/// `volley_server_poll` (valid until the next poll on that server).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct volley_event {
    /// A `volley_event_kind`.
    pub kind: u32,
    /// `VOLLEY_EVENT_BINARY`, `VOLLEY_EVENT_ACTIVE`.
    pub flags: u32,
    /// The connection (all zeros for topic events).
    pub ws: volley_ws,
    /// The connection's user value (set by `volley_upgrade_accept`,
    /// `volley_ws_set_user`).
    pub user: u64,
    /// The message, close reason or ping/pong payload.
    pub data: volley_bytes,
    /// The topic (dropped and topic events).
    pub topic: volley_bytes,
    /// The close code (close events).
    pub code: u32,
    /// Zero.
    pub reserved: u32,
    /// The request (upgrade and request events), else NULL.
    pub request: *const volley_request,
}

impl volley_event {
    pub(crate) fn new(kind: volley_event_kind) -> Self {
        volley_event {
            kind: kind as u32,
            flags: 0,
            ws: volley_ws::NONE,
            user: 0,
            data: volley_bytes::EMPTY,
            topic: volley_bytes::EMPTY,
            code: 0,
            reserved: 0,
            request: std::ptr::null(),
        }
    }
}

/// A handler: called on a worker thread with the server and one event.
/// `event` and everything it points to are valid during the call only.
pub type volley_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut std::ffi::c_void,
        server: *mut crate::server::volley_server,
        event: *const volley_event,
    ),
>;

/// Callback mode: C functions called on the worker threads (any may be
/// NULL). Without `on_upgrade` every upgrade is accepted (user value 0);
/// without `on_request`, plain requests get 426 on a WebSocket route and
/// 404 elsewhere.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct volley_handlers {
    /// `sizeof(volley_handlers)` as the caller compiled it (so later
    /// versions can add handlers without breaking callers).
    pub struct_size: u32,
    /// An upgrade request: answer in the call (`volley_upgrade_accept`,
    /// `volley_upgrade_reject`) or later from any thread.
    pub on_upgrade: volley_callback,
    /// A plain HTTP request: answer in the call (`volley_respond`,
    /// `volley_respond_events`) or later from any thread.
    pub on_request: volley_callback,
    /// A WebSocket opened.
    pub on_open: volley_callback,
    /// A message.
    pub on_message: volley_callback,
    /// A WebSocket closed; also, with code 1006 and reason "upgrade
    /// failed", an upgrade you accepted that never opened (the client left
    /// or timed out first, or the subprotocol was not offered): the one
    /// terminal event for every id you accepted.
    pub on_close: volley_callback,
    /// A backlog drained.
    pub on_drain: volley_callback,
    /// A ping arrived.
    pub on_ping: volley_callback,
    /// A pong arrived.
    pub on_pong: volley_callback,
    /// A published message was not delivered to a slow subscriber.
    pub on_dropped: volley_callback,
    /// A topic's first subscriber came or its last left.
    pub on_topic: volley_callback,
}

/// permessage-deflate modes.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum volley_deflate_mode {
    /// Never (in this direction).
    Off = 0,
    /// No context takeover: one compressor per worker, messages shared.
    Shared = 1,
    /// Context takeover: each connection keeps its own context.
    Dedicated = 2,
}

/// What a slow subscriber gets (see `volley_server_set_topic_policy`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum volley_slow_consumer {
    /// Skip the new message for it (Bun's behaviour).
    DropNewest = 0,
    /// Evict its oldest queued published messages.
    DropOldest = 1,
    /// Close it (with the policy's close code).
    Close = 2,
    /// Keep only the latest message per topic until it drains.
    Conflate = 3,
}

/// Server options: fill with `volley_options_init` (Bun's defaults), then
/// change what you need. The library reads only the first `struct_size`
/// bytes, so a program built against an older header keeps working.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct volley_options {
    /// `sizeof(volley_options)` as the caller compiled it (set by init).
    pub struct_size: u32,
    /// Port to listen on; 0 picks a free one (`volley_server_port`).
    pub port: u16,
    /// Address to listen on (NUL-terminated, borrowed for `volley_server_new`).
    /// Default "127.0.0.1".
    pub host: *const c_char,
    /// Route patterns (`/echo`, `/room/:id`, and a final `*` segment that
    /// takes the rest of the path); with none, every
    /// path is accepted. Borrowed for `volley_server_new`.
    pub routes: *const *const c_char,
    /// How many routes.
    pub routes_len: usize,
    /// Worker threads (0: one per core), at most `VOLLEY_MAX_WORKERS`.
    pub workers: u32,
    /// Largest message, all fragments and inflated (1009 past it). Default 16 MiB.
    pub max_payload_length: u64,
    /// Inbound silence that closes a connection (1001), ms; 0 disables. With
    /// `send_pings`, a ping goes out at half of it (Bun's). Default 120,000.
    pub idle_timeout_ms: u32,
    /// Queued bytes per connection past which sends are dropped. Default 16 MiB.
    pub backpressure_limit: u64,
    /// Close (1008) instead of dropping past the limit: 0 or 1 (any other
    /// value is refused). Default 0.
    pub close_on_backpressure_limit: u8,
    /// Ping silent peers instead of closing them: 0 or 1. Default 1.
    pub send_pings: u8,
    /// Deliver a connection's publishes to itself too: 0 or 1. Default 0.
    pub publish_to_self: u8,
    /// Ping every this many ms of silence (0: at half the idle timeout).
    pub ping_interval_ms: u32,
    /// With `ping_interval_ms` set: time for a pinged peer to answer, ms.
    /// Default 30,000.
    pub pong_timeout_ms: u32,
    /// Close every connection this long after it opened, ms (0: never).
    pub max_lifetime_ms: u32,
    /// Time for a request head and body, for a deferred upgrade's answer,
    /// and for a keep-alive connection's next request, ms. Default 10,000.
    pub handshake_timeout_ms: u32,
    /// Time for a deferred HTTP answer, ms (then 503). Default 60,000.
    pub request_timeout_ms: u32,
    /// Time for the peer to answer our close frame, ms. Default 5,000.
    pub close_timeout_ms: u32,
    /// Largest request head in bytes (431). Default 16 KiB.
    pub max_header_bytes: u32,
    /// Most request header lines (431). Default 64.
    pub max_headers: u32,
    /// Largest request body (413). Default 16 MiB.
    pub max_body_bytes: u64,
    /// Most connections at once (503 past it); 0 for no limit.
    pub max_connections: u32,
    /// The default slow-consumer policy: a `volley_slow_consumer` value
    /// (others are refused).
    pub slow_consumer: u32,
    /// The close code of `VOLLEY_SLOW_CONSUMER_CLOSE`. Default 1013.
    pub slow_consumer_close_code: u16,
    /// permessage-deflate for what the server sends: a
    /// `volley_deflate_mode` value (others are refused). Default off.
    pub deflate_compress: u32,
    /// permessage-deflate for what clients send: a `volley_deflate_mode`
    /// value. Default off.
    pub deflate_decompress: u32,
    /// zlib level 1..9. Default 1.
    pub deflate_level: u32,
    /// Messages shorter than this are not compressed. Default 1024.
    pub deflate_threshold: u32,
    /// Largest server window (9..15) the server offers. Default 15.
    pub deflate_max_window_bits: u8,
    /// TLS: certificate chain in PEM (NULL: plain TCP). Borrowed for
    /// `volley_server_new`.
    pub tls_cert_pem: *const u8,
    /// Its length.
    pub tls_cert_pem_len: usize,
    /// TLS: the private key in PEM. Borrowed for `volley_server_new`.
    pub tls_key_pem: *const u8,
    /// Its length.
    pub tls_key_pem_len: usize,
    /// Bytes of commands a worker's mailbox holds (sends from other
    /// threads past it return 0). Default 64 MiB.
    pub mailbox_bytes: u64,
    /// Event-queue mode: undrained event bytes past which workers stop
    /// reading sockets. Default 64 MiB.
    pub queue_bytes: u64,
    /// Server-Sent Events keep-alive comment interval, ms (0: none). Default 15,000.
    pub sse_keepalive_ms: u32,
    /// Bridge topics across processes through Redis pub/sub:
    /// `redis://[:password@]host[:port][/prefix]` or `rediss://` (TLS);
    /// every publish also goes to the channel `prefix:topic` (prefix
    /// default `volley`) and the server subscribes to the channels of its
    /// topics. NULL (default): no bridge. Borrowed for `volley_server_new`;
    /// a malformed URL gives VOLLEY_RESULT_INVALID_ARGUMENT. Redis being
    /// unreachable is no error: the bridge keeps retrying.
    pub pubsub_bridge: *const c_char,
    /// (Past ABI v1's 208 bytes: set by `VOLLEY_OPTIONS_INIT`.) A connection
    /// whose queued bytes have not moved for this long is dropped, in every
    /// phase (WebSocket close event 1006 "send timeout"), ms; 0 disables.
    /// Default 60,000.
    pub send_timeout_ms: u32,
    /// Share the port with other processes that ask for the same
    /// (`SO_REUSEPORT`, Bun's `reusePort`): 0 or 1. Default 0: the port is
    /// this server's alone, and `volley_server_new` fails with IO ("address
    /// in use") when it is taken.
    pub reuse_port: u8,
    /// Listen on a Unix stream socket at this path (NUL-terminated,
    /// borrowed for `volley_server_new`) instead of TCP: `host` is then not
    /// used, and `port` and `reuse_port` must be 0 (INVALID_ARGUMENT
    /// otherwise). The path must not exist (IO, "address in use", when it
    /// does: an old socket file is the caller's to remove) and is left in
    /// place when the server stops. Peers have no IP address: their
    /// `remote_address` is empty. Default NULL (TCP). Added after ABI
    /// version 1's `VOLLEY_OPTIONS_V1_SIZE`: a struct of that size leaves it
    /// NULL.
    pub unix_path: *const c_char,
}

/// Counters (`volley_server_stats`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct volley_stats {
    /// `sizeof(volley_stats)` as the caller compiled it (set it before the call).
    pub struct_size: u32,
    /// TCP connections held now.
    pub connections: u64,
    /// WebSockets opened since start.
    pub opened: u64,
    /// Connections refused at `max_connections`.
    pub refused: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Plain HTTP requests handled.
    pub requests: u64,
    /// Publishes.
    pub publishes: u64,
    /// Published messages encoded (one per publish).
    pub frames_encoded: u64,
    /// Messages deflated.
    pub compressions: u64,
    /// Published messages queued to subscribers.
    pub delivered: u64,
    /// Published messages not delivered to slow subscribers.
    pub dropped: u64,
    /// Commands refused by a full mailbox.
    pub mailbox_full: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Bytes queued, not yet written.
    pub buffered: u64,
    /// Event-queue mode: `volley_server_poll` calls that returned events.
    pub polls: u64,
    /// Event-queue mode: events those calls returned.
    pub polled_events: u64,
    /// Publishes sent to Redis (`pubsub_bridge`).
    pub bridged_out: u64,
    /// Messages from other processes delivered through Redis.
    pub bridged_in: u64,
    /// Publishes that could not cross to Redis (local subscribers got them).
    pub bridge_lost: u64,
}

/// What a publish did. From a callback on a worker, the first three count
/// that worker's subscribers; `forwarded` counts the other workers it was
/// handed to (their subscribers show up in `volley_stats`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct volley_publish_result {
    /// Subscribers whose queue took it with no backlog.
    pub delivered: u64,
    /// Subscribers that took it behind a backlog (or conflated it).
    pub backpressured: u64,
    /// Subscribers that did not get it.
    pub dropped: u64,
    /// Other workers it was handed to.
    pub forwarded: u64,
}

/// Send flags.
pub const VOLLEY_SEND_TEXT: u32 = 0;
/// A binary message (else text, which must be UTF-8).
pub const VOLLEY_SEND_BINARY: u32 = 1;
/// Compress whenever permessage-deflate was agreed (Bun's `compress: true`).
pub const VOLLEY_SEND_COMPRESS: u32 = 2;
/// Never compress this one (Bun's `compress: false`); neither flag: compress
/// from `deflate_threshold` bytes.
pub const VOLLEY_SEND_NO_COMPRESS: u32 = 4;

/// `volley_server_stop` flags: 1001 to every WebSocket and wait for them
/// (up to the close timeout).
pub const VOLLEY_STOP_GRACEFUL: u32 = 0;
/// Drop every connection now (close handlers see 1006).
pub const VOLLEY_STOP_NOW: u32 = 1;
/// Return at once instead of waiting for the workers to exit.
pub const VOLLEY_STOP_NO_WAIT: u32 = 2;
/// Bun's `server.stop()` without `true`: stop accepting only; open
/// WebSockets and requests in flight carry on, and the workers exit when the
/// last of them ends (a later stop without this flag closes what is left).
pub const VOLLEY_STOP_LISTEN_ONLY: u32 = 4;

/// The ABI version this header describes; compare with `volley_abi_version()`
/// at run time. It changes only when a change breaks programs built against
/// an earlier header.
pub const VOLLEY_ABI_VERSION: u32 = 1;

/// The most worker threads a server can have (`volley_options.workers`).
pub const VOLLEY_MAX_WORKERS: u32 = 256;

/// The size of `volley_options` in ABI version 1: what the unsized
/// `volley_options_init` writes, whatever later headers add.
pub const VOLLEY_OPTIONS_V1_SIZE: u32 = 208;
