"""The C ABI through ctypes: find libvolley.so and declare the functions.

Where the library comes from, in order: ``VOLLEY_LIB``; a copy bundled in
this package (``pip install`` puts one there, built with cargo when the
source tree is at hand); the repository's ``target/release``, built on
first use with cargo when it is missing.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from ctypes import POINTER, c_bool, c_char_p, c_int, c_int64, c_size_t, c_uint8, c_uint16, c_uint32, c_uint64, c_void_p
from pathlib import Path

from ._wire import ABI_VERSION


def _find() -> str:
    env = os.environ.get("VOLLEY_LIB")
    if env:
        return env
    here = Path(__file__).resolve().parent
    bundled = here / "libvolley.so"
    if bundled.exists():
        return str(bundled)
    root = here.parents[2]
    built = root / "target" / "release" / "libvolley.so"
    if built.exists():
        return str(built)
    if (root / "Cargo.toml").exists() and shutil.which("cargo"):
        print("volley: building libvolley.so with cargo (once)...", file=sys.stderr)
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "volley-ffi"], cwd=root, check=True)
        if built.exists():
            return str(built)
    raise OSError("volley: libvolley.so not found: set VOLLEY_LIB or build it with `cargo build --release -p volley-ffi`")


class Ws(ctypes.Structure):
    _fields_ = [("generation", c_uint64), ("key", c_uint32), ("reserved", c_uint32)]


class Bytes(ctypes.Structure):
    _fields_ = [("data", c_void_p), ("len", c_size_t)]


class Header(ctypes.Structure):
    _fields_ = [("name", Bytes), ("value", Bytes)]


class Options(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("port", c_uint16),
        ("host", c_char_p),
        ("routes", c_void_p),
        ("routes_len", c_size_t),
        ("workers", c_uint32),
        ("max_payload_length", c_uint64),
        ("idle_timeout_ms", c_uint32),
        ("backpressure_limit", c_uint64),
        ("close_on_backpressure_limit", c_bool),
        ("send_pings", c_bool),
        ("publish_to_self", c_bool),
        ("ping_interval_ms", c_uint32),
        ("pong_timeout_ms", c_uint32),
        ("max_lifetime_ms", c_uint32),
        ("handshake_timeout_ms", c_uint32),
        ("request_timeout_ms", c_uint32),
        ("close_timeout_ms", c_uint32),
        ("max_header_bytes", c_uint32),
        ("max_headers", c_uint32),
        ("max_body_bytes", c_uint64),
        ("max_connections", c_uint32),
        ("slow_consumer", c_uint32),
        ("slow_consumer_close_code", c_uint16),
        ("deflate_compress", c_uint32),
        ("deflate_decompress", c_uint32),
        ("deflate_level", c_uint32),
        ("deflate_threshold", c_uint32),
        ("deflate_max_window_bits", c_uint8),
        ("tls_cert_pem", c_void_p),
        ("tls_cert_pem_len", c_size_t),
        ("tls_key_pem", c_void_p),
        ("tls_key_pem_len", c_size_t),
        ("mailbox_bytes", c_uint64),
        ("queue_bytes", c_uint64),
        ("sse_keepalive_ms", c_uint32),
        ("pubsub_bridge", c_char_p),
        # Past ABI v1's 208 bytes (filled by volley_options_init_sized).
        ("send_timeout_ms", c_uint32),
        ("reuse_port", c_uint8),
        ("unix_path", c_char_p),
    ]


lib = ctypes.CDLL(_find())


def _fn(name: str, res: object, *args: object) -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    f = getattr(lib, name)
    f.restype = res
    f.argtypes = list(args)
    return f


Srv = c_void_p
options_init_sized = _fn("volley_options_init_sized", c_uint32, POINTER(Options), c_size_t)
last_error = _fn("volley_last_error", ctypes.c_char_p)
set_log = _fn("volley_set_log", c_uint32, c_void_p, c_void_p, c_uint32)
log_take = _fn("volley_log_take", c_size_t, POINTER(c_uint32), c_void_p, c_size_t)
server_new = _fn("volley_server_new", c_uint32, POINTER(Options), c_void_p, c_void_p, POINTER(c_void_p))
server_free = _fn("volley_server_free", None, Srv)
server_stop = _fn("volley_server_stop", c_uint32, Srv, c_uint32)
server_port = _fn("volley_server_port", c_uint16, Srv)
server_is_running = _fn("volley_server_is_running", c_bool, Srv)
server_fd = _fn("volley_server_fd", c_uint32, Srv, POINTER(c_int))
poll_packed = _fn("volley_server_poll_packed", c_int64, Srv, c_void_p, c_size_t)
copy = _fn("volley_copy", c_uint32, c_void_p, c_uint64, c_size_t)
server_publish = _fn("volley_server_publish", c_uint32, Srv, c_char_p, c_size_t, c_char_p, c_size_t, c_uint32, c_void_p)
subscriber_count = _fn("volley_server_subscriber_count", c_uint32, Srv, c_char_p, c_size_t, POINTER(c_size_t))
cork = _fn("volley_server_cork", c_uint32, Srv)
uncork = _fn("volley_server_uncork", c_uint32, Srv)
stats = _fn("volley_server_stats", c_uint32, Srv, c_void_p)
send_parts = _fn("volley_ws_send_parts", c_int64, Srv, c_uint32, c_uint64, c_char_p, c_size_t, c_uint32)
publish_parts = _fn(
    "volley_ws_publish_parts", c_int64, Srv, c_uint32, c_uint64, c_char_p, c_size_t, c_char_p, c_size_t, c_uint32
)
subscribe = _fn("volley_ws_subscribe", c_uint32, Srv, Ws, c_char_p, c_size_t)
unsubscribe = _fn("volley_ws_unsubscribe", c_uint32, Srv, Ws, c_char_p, c_size_t)
close = _fn("volley_ws_close", c_uint32, Srv, Ws, c_uint16, c_char_p, c_size_t)
terminate = _fn("volley_ws_terminate", c_uint32, Srv, Ws)
ping = _fn("volley_ws_ping", c_uint32, Srv, Ws, c_char_p, c_size_t)
pong = _fn("volley_ws_pong", c_uint32, Srv, Ws, c_char_p, c_size_t)
pause = _fn("volley_ws_pause", c_uint32, Srv, Ws)
resume = _fn("volley_ws_resume", c_uint32, Srv, Ws)
buffered_amount = _fn("volley_ws_buffered_amount", c_size_t, Srv, Ws)
upgrade_accept = _fn("volley_upgrade_accept", c_uint32, Srv, Ws, c_uint64, c_char_p, POINTER(Header), c_size_t)
upgrade_reject = _fn(
    "volley_upgrade_reject", c_uint32, Srv, Ws, c_uint16, POINTER(Header), c_size_t, c_char_p, c_size_t
)
respond = _fn("volley_respond", c_uint32, Srv, Ws, c_uint16, POINTER(Header), c_size_t, c_char_p, c_size_t)
respond_events = _fn(
    "volley_respond_events", c_uint32, Srv, Ws, c_uint16, POINTER(Header), c_size_t, POINTER(Bytes), c_size_t
)
error_message = _fn("volley_error_message", c_char_p, c_uint32)
abi_version = _fn("volley_abi_version", c_uint32)
version = _fn("volley_version", c_char_p)

if abi_version() != ABI_VERSION:
    raise ImportError(f"volley: libvolley speaks ABI {abi_version()}, this package {ABI_VERSION}")
