//! The event loop: one worker per thread, each with its own `mio::Poll`,
//! listener, connections, timers and buffers. The files split the worker's
//! jobs: accepting, reading (and TLS input), HTTP and upgrades, frames,
//! writing, connection lifecycle and handler calls, timeouts, commands from
//! other threads, stopping; plus what they share (the hub, slots, queues,
//! stats). The handler-facing view is here too (`handler.rs`, `websocket.rs`,
//! `request.rs`, and the values they pass in `state.rs` and `reply.rs`): the
//! loop owns it and the crate root re-exports it. Nothing
//! here names a type from above the loop: the event queue and the Redis
//! bridge plug in through [`worker::HostQueue`] and [`hub::Relay`]
//! (docs/ARCHITECTURE.md).

pub(crate) mod accept;
pub(crate) mod commands;
pub(crate) mod conn;
#[cfg(test)]
mod generations_tests;
pub(crate) mod handler;
pub(crate) mod http_phase;
pub(crate) mod hub;
pub(crate) mod input;
pub(crate) mod lifecycle;
pub(crate) mod out;
pub(crate) mod publish;
pub(crate) mod read;
pub(crate) mod reply;
pub(crate) mod request;
pub(crate) mod slots;
pub(crate) mod sock;
pub(crate) mod state;
pub(crate) mod stats;
pub(crate) mod stop;
pub(crate) mod timeouts;
pub mod tls;
pub(crate) mod websocket;
pub(crate) mod wheel;
pub(crate) mod worker;
pub(crate) mod write;

/// Internals exposed for the criterion benches only (the `testing`
/// feature); not part of the API.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod bench_support {
    use super::out::{OutQueue, Pool};
    use crate::pubsub::Prepared;
    use std::io::{self, Write};

    /// N subscriber queues, fed the way a publish feeds them.
    pub struct Fanout {
        queues: Vec<OutQueue>,
        pool: Pool,
    }

    /// A socket that takes everything.
    struct Sink;
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            Ok(b.len())
        }
        fn write_vectored(&mut self, b: &[io::IoSlice<'_>]) -> io::Result<usize> {
            Ok(b.iter().map(|s| s.len()).sum())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Fanout {
        /// `n` empty subscriber queues.
        pub fn new(n: usize) -> Self {
            Fanout {
                queues: (0..n).map(|_| OutQueue::default()).collect(),
                pool: Pool::default(),
            }
        }

        /// Queue `msg` for every subscriber (copy or share, as a publish does).
        pub fn publish(&mut self, msg: &Prepared) {
            for q in &mut self.queues {
                q.push_published(&mut self.pool, msg.frame(), false);
            }
        }

        /// Write every queue out to a sink (the loop turn's flush).
        pub fn flush(&mut self) -> usize {
            let mut n = 0;
            for q in &mut self.queues {
                n += q.len();
                let _ = q.flush(&mut Sink, &mut self.pool);
            }
            n
        }
    }
}
