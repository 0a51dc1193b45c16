//! `volley_options`: Bun's defaults in, engine options out.

use crate::error::{Res, bytes, cstr, invalid, volley_result};
use crate::types::{
    VOLLEY_MAX_WORKERS, VOLLEY_OPTIONS_V1_SIZE, volley_deflate_mode, volley_options,
    volley_slow_consumer,
};
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
        close_on_backpressure_limit: o.close_on_backpressure_limit.into(),
        send_pings: o.send_pings.into(),
        publish_to_self: o.publish_to_self.into(),
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
        slow_consumer: volley_slow_consumer::DropNewest as u32,
        slow_consumer_close_code: engine::close::TRY_AGAIN_LATER,
        deflate_compress: volley_deflate_mode::Off as u32,
        deflate_decompress: volley_deflate_mode::Off as u32,
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
        send_timeout_ms: ms(o.send_timeout),
        reuse_port: o.reuse_port.into(),
        unix_path: std::ptr::null(),
    }
}

/// Fill `options` with Bun's defaults: ABI version 1's form, frozen. It
/// writes `VOLLEY_OPTIONS_V1_SIZE` bytes whatever the header says, so a
/// struct from a later header is only partly filled: prefer
/// `VOLLEY_OPTIONS_INIT(&o)`, which passes the caller's size.
///
/// Ownership: `options` is the caller's (at least
/// `VOLLEY_OPTIONS_V1_SIZE` bytes), written during the call only.
/// Threads: any thread.
/// Returns: nothing (a NULL `options` is ignored).
#[unsafe(no_mangle)]
pub extern "C" fn volley_options_init(options: *mut volley_options) {
    volley_options_init_sized(options, VOLLEY_OPTIONS_V1_SIZE as usize);
}

/// Fill the caller's `options` of `size` bytes (`sizeof *options`) with
/// Bun's defaults, and `struct_size` with `size`: exactly
/// `min(size, this library's size)` bytes are written, whole fields only
/// (a field cut by `size` is left as it is), and bytes past this library's
/// struct (a newer header) are zeroed, which `volley_server_new` reads as
/// "not set". Use `VOLLEY_OPTIONS_INIT(&o)`.
///
/// Ownership: `options` is the caller's, `size` bytes written during the
/// call only.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; ABI_MISMATCH (`size` too
/// small to hold the fields every version has).
#[unsafe(no_mangle)]
pub extern "C" fn volley_options_init_sized(
    options: *mut volley_options,
    size: usize,
) -> volley_result {
    crate::error::boundary(volley_result::Panic, || {
        if options.is_null() {
            return volley_result::NullParameter;
        }
        if size < MIN_SIZE || size > u32::MAX as usize {
            return volley_result::AbiMismatch;
        }
        let mut d = defaults();
        d.struct_size = size as u32;
        let n = whole_fields(size);
        // SAFETY: the caller's struct has `size` >= `n` writable bytes;
        // `d` has `n` (whole fields of the same layout).
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&d as *const volley_options).cast::<u8>(),
                options.cast(),
                n,
            )
        };
        let ours = size_of::<volley_options>();
        if size > ours {
            // SAFETY: the caller's struct has `size` writable bytes.
            unsafe { std::ptr::write_bytes(options.cast::<u8>().add(ours), 0, size - ours) };
        }
        volley_result::Ok
    })
}

/// The smallest struct any version had: up to and including `workers`.
const MIN_SIZE: usize = offset_of!(volley_options, workers) + size_of::<u32>();

/// The bytes of the whole fields of `volley_options` that fit in `size`
/// (a size ending inside a field leaves that field out).
fn whole_fields(size: usize) -> usize {
    macro_rules! ends {
        ($($f:ident),* $(,)?) => {{
            let d = defaults();
            [$(offset_of!(volley_options, $f) + std::mem::size_of_val(&d.$f)),*]
        }};
    }
    let ends = ends!(
        struct_size,
        port,
        host,
        routes,
        routes_len,
        workers,
        max_payload_length,
        idle_timeout_ms,
        backpressure_limit,
        close_on_backpressure_limit,
        send_pings,
        publish_to_self,
        ping_interval_ms,
        pong_timeout_ms,
        max_lifetime_ms,
        handshake_timeout_ms,
        request_timeout_ms,
        close_timeout_ms,
        max_header_bytes,
        max_headers,
        max_body_bytes,
        max_connections,
        slow_consumer,
        slow_consumer_close_code,
        deflate_compress,
        deflate_decompress,
        deflate_level,
        deflate_threshold,
        deflate_max_window_bits,
        tls_cert_pem,
        tls_cert_pem_len,
        tls_key_pem,
        tls_key_pem_len,
        mailbox_bytes,
        queue_bytes,
        sse_keepalive_ms,
        pubsub_bridge,
        send_timeout_ms,
        reuse_port,
        unix_path,
    );
    if size >= size_of::<volley_options>() {
        return size_of::<volley_options>();
    }
    ends.into_iter().filter(|&e| e <= size).max().unwrap_or(0)
}

/// What `volley_server_new` needs from the options.
pub(crate) struct Config {
    pub addr: String,
    /// A Unix socket's path, listened on instead of `addr`.
    pub unix: Option<String>,
    pub routes: Vec<String>,
    pub opts: Options,
}

/// Read the caller's options: `min(struct_size, ours)` bytes, whole
/// fields only; fields past its `struct_size` keep our defaults. Bytes of a
/// larger (newer) struct past ours must be zero: a field this library does
/// not know is refused, not ignored.
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
    if size < MIN_SIZE {
        return Err(volley_result::AbiMismatch);
    }
    let ours = size_of::<volley_options>();
    if size > ours {
        // SAFETY: the caller's struct has `size` readable bytes.
        let extra = unsafe { std::slice::from_raw_parts(o.cast::<u8>().add(ours), size - ours) };
        if extra.iter().any(|&b| b != 0) {
            return Err(invalid(format!(
                "volley_options: bytes {ours}..{size} are set, and this library knows only {ours} \
                 (a newer header than the library?)"
            )));
        }
    }
    let mut v = defaults();
    let n = whole_fields(size);
    // SAFETY: the caller's struct has `size` >= `n` bytes; ours at least
    // `n`; both are the same layout, whole fields (fields are only ever
    // added at the end).
    unsafe {
        std::ptr::copy_nonoverlapping(
            o.cast::<u8>(),
            (&mut v as *mut volley_options).cast::<u8>(),
            n,
        )
    };
    from(&v)
}

/// A 0/1 field as a bool; anything else is refused, naming the field.
fn flag(name: &str, v: u8) -> Res<bool> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(invalid(format!("volley_options.{name}: {v} is not 0 or 1"))),
    }
}

/// A `u64` that must fit in a `usize`, naming the field.
fn size(name: &str, v: u64) -> Res<usize> {
    usize::try_from(v).map_err(|_| invalid(format!("volley_options.{name}: {v} is too large")))
}

fn from(v: &volley_options) -> Res<Config> {
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
                return Err(invalid(format!(
                    "volley_options.routes: {r:?} does not start with '/'"
                )));
            }
            routes.push(r.to_string());
        }
    }
    if v.max_payload_length > engine::queue::MAX_PAYLOAD as u64 {
        return Err(invalid(format!(
            "volley_options.max_payload_length: {} is over 2 GiB (event batches use 32-bit offsets)",
            v.max_payload_length
        )));
    }
    if v.workers > VOLLEY_MAX_WORKERS {
        return Err(invalid(format!(
            "volley_options.workers: {} is over VOLLEY_MAX_WORKERS ({VOLLEY_MAX_WORKERS})",
            v.workers
        )));
    }
    let mut opts = Options {
        max_payload_length: size("max_payload_length", v.max_payload_length)?,
        idle_timeout: ms(v.idle_timeout_ms),
        backpressure_limit: size("backpressure_limit", v.backpressure_limit)?,
        close_on_backpressure_limit: flag(
            "close_on_backpressure_limit",
            v.close_on_backpressure_limit,
        )?,
        send_pings: flag("send_pings", v.send_pings)?,
        publish_to_self: flag("publish_to_self", v.publish_to_self)?,
        ping_interval: (v.ping_interval_ms > 0).then(|| ms(v.ping_interval_ms)),
        pong_timeout: ms(v.pong_timeout_ms),
        max_lifetime: (v.max_lifetime_ms > 0).then(|| ms(v.max_lifetime_ms)),
        handshake_timeout: ms(v.handshake_timeout_ms),
        request_timeout: ms(v.request_timeout_ms),
        close_timeout: ms(v.close_timeout_ms),
        max_header_bytes: v.max_header_bytes as usize,
        max_headers: v.max_headers as usize,
        max_body_bytes: size("max_body_bytes", v.max_body_bytes)?,
        max_connections: v.max_connections as usize,
        mailbox_bytes: size("mailbox_bytes", v.mailbox_bytes)?,
        queue_bytes: size("queue_bytes", v.queue_bytes)?,
        sse_keepalive: ms(v.sse_keepalive_ms),
        send_timeout: ms(v.send_timeout_ms),
        reuse_port: flag("reuse_port", v.reuse_port)?,
        slow_consumer: slow_consumer(v.slow_consumer, v.slow_consumer_close_code).map_err(|_| {
            invalid(format!(
                "volley_options.slow_consumer: {} (close code {}) is not a volley_slow_consumer \
                 with a sendable close code",
                v.slow_consumer, v.slow_consumer_close_code
            ))
        })?,
        ..Options::default()
    };
    if v.workers > 0 {
        opts.workers = v.workers as usize;
    }
    if v.max_headers == 0 {
        return Err(invalid("volley_options.max_headers: 0"));
    }
    if v.max_header_bytes < 64 {
        return Err(invalid(format!(
            "volley_options.max_header_bytes: {} is under 64",
            v.max_header_bytes
        )));
    }
    let mode = |name: &str, m: u32| match m {
        0 => Ok(DeflateMode::Off),
        1 => Ok(DeflateMode::Shared),
        2 => Ok(DeflateMode::Dedicated),
        _ => Err(invalid(format!(
            "volley_options.{name}: {m} is not a volley_deflate_mode"
        ))),
    };
    let compress = mode("deflate_compress", v.deflate_compress)?;
    let decompress = mode("deflate_decompress", v.deflate_decompress)?;
    if compress != DeflateMode::Off || decompress != DeflateMode::Off {
        if !(1..=9).contains(&v.deflate_level) {
            return Err(invalid(format!(
                "volley_options.deflate_level: {} is not 1..9",
                v.deflate_level
            )));
        }
        if !(9..=15).contains(&v.deflate_max_window_bits) {
            return Err(invalid(format!(
                "volley_options.deflate_max_window_bits: {} is not 9..15",
                v.deflate_max_window_bits
            )));
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
            return Err(invalid(format!("volley_options.pubsub_bridge: {e}")));
        }
        opts.pubsub_bridge = Some(url.to_string());
    }
    // SAFETY: documented contract of `unix_path`: NUL-terminated or NULL.
    let unix = unsafe { cstr(v.unix_path) }?.map(str::to_string);
    if unix.is_some() && v.port != 0 {
        return Err(invalid(format!(
            "volley_options.port: {} with unix_path (a Unix socket has no port; leave it 0)",
            v.port
        )));
    }
    if unix.is_some() && opts.reuse_port {
        return Err(invalid(
            "volley_options.reuse_port: does not apply to a Unix socket (unix_path)",
        ));
    }
    Ok(Config {
        addr,
        unix,
        routes,
        opts,
    })
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
