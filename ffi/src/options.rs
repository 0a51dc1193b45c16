//! `volley_options`: Bun's defaults in, engine options out.

use crate::error::{Res, bytes, cstr, volley_result};
use crate::types::{volley_deflate_mode, volley_options, volley_slow_consumer};
use engine::{Deflate, DeflateMode, Options, SlowConsumer};
use std::mem::{offset_of, size_of};
use std::time::Duration;

const HOST: &[u8] = b"127.0.0.1\0";

fn defaults() -> volley_options {
    let o = Options::default();
    let d = Deflate::default();
    let ms = |t: Duration| u32::try_from(t.as_millis()).unwrap_or(u32::MAX);
    volley_options {
        struct_size: size_of::<volley_options>() as u32,
        port: 0,
        host: HOST.as_ptr().cast(),
        routes: std::ptr::null(),
        routes_len: 0,
        workers: 0,
        max_payload_length: o.max_payload_length as u64,
        idle_timeout_ms: ms(o.idle_timeout),
        backpressure_limit: o.backpressure_limit as u64,
        close_on_backpressure_limit: o.close_on_backpressure_limit,
        send_pings: o.send_pings,
        publish_to_self: o.publish_to_self,
        ping_interval_ms: 0,
        pong_timeout_ms: ms(o.pong_timeout),
        max_lifetime_ms: 0,
        handshake_timeout_ms: ms(o.handshake_timeout),
        request_timeout_ms: ms(o.request_timeout),
        close_timeout_ms: ms(o.close_timeout),
        max_header_bytes: o.max_header_bytes as u32,
        max_headers: o.max_headers as u32,
        max_body_bytes: o.max_body_bytes as u64,
        max_connections: o.max_connections as u32,
        slow_consumer: volley_slow_consumer::DropNewest,
        slow_consumer_close_code: engine::close::TRY_AGAIN_LATER,
        deflate_compress: volley_deflate_mode::Off,
        deflate_decompress: volley_deflate_mode::Off,
        deflate_level: d.level,
        deflate_threshold: d.threshold as u32,
        deflate_max_window_bits: d.server_max_window_bits,
        tls_cert_pem: std::ptr::null(),
        tls_cert_pem_len: 0,
        tls_key_pem: std::ptr::null(),
        tls_key_pem_len: 0,
        mailbox_bytes: o.mailbox_bytes as u64,
        queue_bytes: o.queue_bytes as u64,
        sse_keepalive_ms: ms(o.sse_keepalive),
        pubsub_bridge: std::ptr::null(),
    }
}

/// Fill `options` with Bun's defaults (and `struct_size` with this
/// library's size of the struct; keep yours if the header is older: set
/// `struct_size = sizeof(volley_options)` after the call).
///
/// Ownership: `options` is the caller's, written during the call only.
/// Threads: any thread.
/// Returns: nothing (a NULL `options` is ignored).
#[unsafe(no_mangle)]
pub extern "C" fn volley_options_init(options: *mut volley_options) {
    crate::error::boundary((), || {
        // SAFETY: the caller passes a writable volley_options (or NULL).
        if let Some(o) = unsafe { options.as_mut() } {
            *o = defaults();
        }
    })
}

/// What `volley_server_new` needs from the options.
pub(crate) struct Config {
    pub addr: String,
    pub routes: Vec<String>,
    pub opts: Options,
}

/// Read the caller's options: fields past its `struct_size` keep our
/// defaults.
///
/// # Safety
/// `o` must point to at least `struct_size` readable bytes of a
/// `volley_options`, and its pointers must be valid as documented.
pub(crate) unsafe fn config(o: *const volley_options) -> Res<Config> {
    if o.is_null() {
        return from(&defaults());
    }
    // SAFETY: `struct_size` is the first field: readable in any version.
    let size = unsafe { (*o).struct_size } as usize;
    if size < offset_of!(volley_options, workers) {
        return Err(volley_result::AbiMismatch);
    }
    let mut v = defaults();
    let n = size.min(size_of::<volley_options>());
    // SAFETY: the caller's struct has `n` bytes; ours is at least as large;
    // the bytes are a prefix of the same layout (fields are only ever added
    // at the end).
    unsafe {
        std::ptr::copy_nonoverlapping(
            o.cast::<u8>(),
            (&mut v as *mut volley_options).cast::<u8>(),
            n,
        )
    };
    from(&v)
}

fn from(v: &volley_options) -> Res<Config> {
    let bad = || volley_result::InvalidArgument;
    let ms = |m: u32| Duration::from_millis(u64::from(m));
    // SAFETY: documented contract of `host`: NUL-terminated or NULL.
    let host = unsafe { cstr(v.host) }?.unwrap_or("127.0.0.1");
    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{}", v.port)
    } else {
        format!("{host}:{}", v.port)
    };
    let mut routes = Vec::new();
    if v.routes_len > 0 {
        if v.routes.is_null() {
            return Err(volley_result::NullParameter);
        }
        // SAFETY: `routes` points to `routes_len` string pointers.
        let list = unsafe { std::slice::from_raw_parts(v.routes, v.routes_len) };
        for &r in list {
            // SAFETY: each is NUL-terminated.
            let r = unsafe { cstr(r) }?.ok_or(volley_result::NullParameter)?;
            if !r.starts_with('/') {
                return Err(bad());
            }
            routes.push(r.to_string());
        }
    }
    let mut opts = Options {
        max_payload_length: usize::try_from(v.max_payload_length).map_err(|_| bad())?,
        idle_timeout: ms(v.idle_timeout_ms),
        backpressure_limit: usize::try_from(v.backpressure_limit).map_err(|_| bad())?,
        close_on_backpressure_limit: v.close_on_backpressure_limit,
        send_pings: v.send_pings,
        publish_to_self: v.publish_to_self,
        ping_interval: (v.ping_interval_ms > 0).then(|| ms(v.ping_interval_ms)),
        pong_timeout: ms(v.pong_timeout_ms),
        max_lifetime: (v.max_lifetime_ms > 0).then(|| ms(v.max_lifetime_ms)),
        handshake_timeout: ms(v.handshake_timeout_ms),
        request_timeout: ms(v.request_timeout_ms),
        close_timeout: ms(v.close_timeout_ms),
        max_header_bytes: v.max_header_bytes as usize,
        max_headers: v.max_headers as usize,
        max_body_bytes: usize::try_from(v.max_body_bytes).map_err(|_| bad())?,
        max_connections: v.max_connections as usize,
        mailbox_bytes: usize::try_from(v.mailbox_bytes).map_err(|_| bad())?,
        queue_bytes: usize::try_from(v.queue_bytes).map_err(|_| bad())?,
        sse_keepalive: ms(v.sse_keepalive_ms),
        slow_consumer: slow_consumer(v.slow_consumer as u32, v.slow_consumer_close_code)?,
        ..Options::default()
    };
    if v.workers > 0 {
        opts.workers = v.workers as usize;
    }
    if v.max_headers == 0 || v.max_header_bytes < 64 {
        return Err(bad());
    }
    let mode = |m: volley_deflate_mode| match m as u32 {
        0 => Ok(DeflateMode::Off),
        1 => Ok(DeflateMode::Shared),
        2 => Ok(DeflateMode::Dedicated),
        _ => Err(bad()),
    };
    let (compress, decompress) = (mode(v.deflate_compress)?, mode(v.deflate_decompress)?);
    if compress != DeflateMode::Off || decompress != DeflateMode::Off {
        if !(1..=9).contains(&v.deflate_level) || !(9..=15).contains(&v.deflate_max_window_bits) {
            return Err(bad());
        }
        opts.per_message_deflate = Some(Deflate {
            compress,
            decompress,
            level: v.deflate_level,
            threshold: v.deflate_threshold as usize,
            server_max_window_bits: v.deflate_max_window_bits,
        });
    }
    if !v.tls_cert_pem.is_null() || !v.tls_key_pem.is_null() {
        // SAFETY: documented contract: the PEM buffers with their lengths.
        let cert = unsafe { bytes(v.tls_cert_pem, v.tls_cert_pem_len) }?;
        // SAFETY: as above.
        let key = unsafe { bytes(v.tls_key_pem, v.tls_key_pem_len) }?;
        let cfg = engine::tls::server_config(cert, key).map_err(|e| {
            log::error!("volley: TLS: {e}");
            volley_result::Tls
        })?;
        opts.tls = Some(cfg);
    }
    // SAFETY: documented contract of `pubsub_bridge`: NUL-terminated or NULL.
    if let Some(url) = unsafe { cstr(v.pubsub_bridge) }? {
        if let Err(e) = engine::BridgeUrl::parse(url) {
            log::error!("volley: {e}");
            return Err(bad());
        }
        opts.pubsub_bridge = Some(url.to_string());
    }
    Ok(Config { addr, routes, opts })
}

/// A policy from its C form.
pub(crate) fn slow_consumer(policy: u32, close_code: u16) -> Res<SlowConsumer> {
    Ok(match policy {
        0 => SlowConsumer::DropNewest,
        1 => SlowConsumer::DropOldest,
        2 if engine::close::is_sendable(close_code) => SlowConsumer::Close(close_code),
        3 => SlowConsumer::Conflate,
        _ => return Err(volley_result::InvalidArgument),
    })
}
