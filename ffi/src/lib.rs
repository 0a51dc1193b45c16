//! The C ABI of Volley: `include/volley.h`, `libvolley.a`, `libvolley.so`.
//!
//! Two ways to embed. *Callback mode* (`volley_server_new` with handlers):
//! C functions run on the worker threads, and calls on the event's own
//! connection act on it directly. *Event-queue mode* (handlers NULL): the
//! host watches `volley_server_fd`, drains events in batches with
//! `volley_server_poll` (payloads borrowed, not copied again) and answers
//! from its own thread; its sends are batched per worker under
//! `volley_server_cork`.
//!
//! Conventions, as in the header: every entry point catches panics
//! ([`error::boundary`]); pointers are checked for NULL; connections are
//! named by [`types::volley_ws`] ids that never reach another connection;
//! structs that may grow carry their size.

#![allow(non_camel_case_types)]
// Entry points are called from C, not Rust: they stay safe `extern "C"`
// functions whose pointer contracts are written in their (header) docs,
// and they check what can be checked (NULL, lengths, UTF-8, sizes).
#![allow(clippy::not_unsafe_ptr_arg_deref)]
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

mod answer;
mod current;
pub mod error;
mod handler;
pub mod logsink;
mod options;
mod request;
pub mod server;
pub mod types;
mod version;
pub mod wire;
mod ws;

pub use answer::*;
pub use error::*;
pub use logsink::*;
pub use options::volley_options_init;
pub use server::*;
pub use types::*;
pub use version::*;
pub use wire::*;
pub use ws::*;
