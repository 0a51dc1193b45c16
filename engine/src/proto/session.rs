//! A connection's phase and its clock, without IO: which deadline applies
//! in each phase, and what falls due when it passes (slowloris heads and
//! bodies, deferred answers, keep-alive pings and pong waits, idle peers,
//! lifetimes, closing handshakes, Server-Sent Events keep-alives, and
//! queued bytes that stopped moving).
//!
//! Beside it, [`Control`]: the close handshake's one close frame and the
//! pongs owed to a peer that pings without reading. [`Session`] holds the
//! three and is the only way the loop changes them: named transitions,
//! each of which moves the phase and starts its limits together.
//!
//! Time is a value here, never read: the loop passes `now` in, keeps one
//! timer per connection at [`Clock::next_timeout`], and when it fires asks
//! [`Clock::due`] what to do, then does it (writes a ping, answers 408,
//! drops the socket). So every timeout rule is a unit test on numbers, the
//! way quiche and rustls are driven.

use super::ProtocolError;
use super::deflate::Agreed;
use super::inbound::Received;
use super::message::Message;
use std::num::{NonZeroU16, NonZeroU64};
use std::ops::Add;
use std::time::{Duration, Instant};

/// Stamps start here, so that zero is never a stamp (`Option<Stamp>` is 8 bytes).
const BASE_MS: u64 = 1000;
/// A duration too long to matter (about 292 million years).
const FAR_MS: u64 = 1 << 62;

/// A moment, in milliseconds since a worker started: 8 bytes where an
/// `Instant` takes 16, which matters for idle connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(NonZeroU64);

impl Stamp {
    /// The moment `t`, counted from `epoch` (clamped at the epoch).
    pub fn at(epoch: Instant, t: Instant) -> Stamp {
        let ms = t.saturating_duration_since(epoch).as_millis() as u64;
        Stamp::from_ms(ms)
    }

    /// The moment `ms` milliseconds after the epoch.
    pub fn from_ms(ms: u64) -> Stamp {
        Stamp(NonZeroU64::new(ms.min(FAR_MS) + BASE_MS).expect("nonzero"))
    }

    /// Milliseconds since the epoch.
    pub fn ms(self) -> u64 {
        self.0.get() - BASE_MS
    }

    /// Time from `self` to `later` (zero once it has passed).
    pub fn until(self, later: Stamp) -> Duration {
        Duration::from_millis(later.ms().saturating_sub(self.ms()))
    }
}

impl Add<Duration> for Stamp {
    type Output = Stamp;
    fn add(self, d: Duration) -> Stamp {
        let ms = u64::try_from(d.as_millis()).unwrap_or(FAR_MS);
        Stamp(self.0.saturating_add(ms))
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading an HTTP request head (the first, or the next on a keep-alive
    /// connection).
    Handshake,
    /// The upgrade hook deferred its answer.
    Deferred,
    /// Reading an HTTP request's body.
    Body,
    /// An HTTP request waits for its answer (from another thread or the host).
    Fetching,
    /// Messages flow.
    Open,
    /// The server sent a close frame and waits for the peer's.
    Closing,
    /// A `text/event-stream` response receiving publishes.
    Sse,
    /// A streamed response body: bytes sent by id, as given, until closed.
    Stream,
    /// Writing out the last bytes (a close frame or an HTTP response), then
    /// shutting down the write side and waiting for the peer's FIN.
    Flushing,
    /// To be removed by the worker.
    Done,
}

impl Phase {
    /// Phases whose unread input is kept (stashed) for later.
    pub fn keeps_input(self) -> bool {
        matches!(
            self,
            Phase::Handshake | Phase::Deferred | Phase::Fetching | Phase::Open | Phase::Closing
        )
    }

    /// Phases that wait for an answer and read nothing meanwhile.
    pub fn awaits_answer(self) -> bool {
        matches!(self, Phase::Deferred | Phase::Fetching)
    }
}

/// Every time limit a connection lives under, resolved once from the
/// server's options (`None`: the limit is off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A request head or body, and a deferred upgrade's answer.
    pub handshake: Duration,
    /// A deferred HTTP answer.
    pub request: Duration,
    /// Our close frame's wait for the peer's, and the last flush's.
    pub close: Duration,
    /// Queued bytes that do not move for this long: the peer is gone.
    pub send: Option<Duration>,
    /// Comment lines on a quiet event stream.
    pub sse_keepalive: Option<Duration>,
    /// An open WebSocket's longest life.
    pub max_lifetime: Option<Duration>,
    /// Inbound silence after which a keep-alive ping goes out.
    pub ping: Option<Duration>,
    /// How long a pinged peer has to send anything.
    pub pong_wait: Option<Duration>,
    /// Inbound silence that closes the connection.
    pub idle: Option<Duration>,
}

impl Timeouts {
    /// Handshake, request and close limits of `limit` each, and every
    /// optional limit off (a session driven by hand: tests, fuzzing).
    pub fn only(limit: Duration) -> Timeouts {
        Timeouts {
            handshake: limit,
            request: limit,
            close: limit,
            send: None,
            sse_keepalive: None,
            max_lifetime: None,
            ping: None,
            pong_wait: None,
            idle: None,
        }
    }
}

/// What a connection's clock says is due now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing yet.
    Nothing,
    /// Queued bytes have not moved for `send`: the peer is taken for gone.
    /// Nothing can be written to it, so it is dropped without a close frame.
    SendTimeout,
    /// Drop without a word: a slow request head (slowloris, or a keep-alive
    /// connection gone quiet), or a closing handshake or last flush that ran
    /// out of time.
    Drop,
    /// Answer the HTTP request with this status and body, then close.
    Answer(u16, &'static str),
    /// The connection reached `max_lifetime`: close it (1001) and wait for
    /// the peer's close frame.
    Lifetime,
    /// The peer is silent (idle, or a ping went unanswered): send a close
    /// frame (1001) but do not wait for an answer.
    Idle,
    /// Send a keep-alive ping (then [`Clock::pinged`]).
    Ping,
    /// Send an event-stream comment (then [`Clock::kept_alive`]).
    KeepAlive,
}

/// A connection's timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Accept time (or the start of the current request), then open time.
    pub since: Stamp,
    /// When bytes last arrived.
    pub last_read: Stamp,
    /// Open: when a ping went out that no read has answered yet. Sse: the
    /// last keep-alive. Closing/Flushing: the deadline.
    pub aux: Option<Stamp>,
}

impl Clock {
    /// A clock whose every time starts at `now` (an accepted connection).
    pub fn new(now: Stamp) -> Clock {
        Clock {
            since: now,
            last_read: now,
            aux: None,
        }
    }

    /// A new request (or the open) starts its own time limits.
    #[inline]
    pub fn restart(&mut self, now: Stamp) {
        self.since = now;
    }

    /// The WebSocket opened: its lifetime and idle time start now.
    #[inline]
    pub fn open(&mut self, now: Stamp) {
        *self = Clock::new(now);
    }

    /// Bytes arrived: the peer is alive (any frame answers a ping).
    #[inline]
    pub fn note_read(&mut self, phase: Phase, now: Stamp) {
        self.last_read = now;
        if phase == Phase::Open {
            self.aux = None;
        }
    }

    /// When a ping went out that the peer has not answered with any bytes.
    pub fn awaiting_pong(&self, phase: Phase) -> Option<Stamp> {
        if phase == Phase::Open { self.aux } else { None }
    }

    /// A keep-alive ping went out.
    pub fn pinged(&mut self, now: Stamp) {
        self.aux = Some(now);
    }

    /// An event-stream keep-alive went out.
    pub fn kept_alive(&mut self, now: Stamp) {
        self.aux = Some(now);
    }

    /// Entering Closing or Flushing: the connection goes by `close` from now.
    pub fn closing(&mut self, now: Stamp, t: &Timeouts) {
        self.aux = Some(now + t.close);
    }

    /// When queued bytes that have not moved since `stalled_since` make the
    /// peer count as gone, in any phase but Done.
    fn send_deadline(phase: Phase, stalled_since: Option<Stamp>, t: &Timeouts) -> Option<Stamp> {
        if phase == Phase::Done {
            return None;
        }
        Some(stalled_since? + t.send?)
    }

    /// The earliest moment this connection needs attention.
    pub fn next_timeout(
        &self,
        phase: Phase,
        stalled_since: Option<Stamp>,
        t: &Timeouts,
    ) -> Option<Stamp> {
        let own = self.phase_deadline(phase, t);
        match Self::send_deadline(phase, stalled_since, t) {
            Some(s) => Some(own.map_or(s, |p| p.min(s))),
            None => own,
        }
    }

    fn phase_deadline(&self, phase: Phase, t: &Timeouts) -> Option<Stamp> {
        match phase {
            Phase::Handshake | Phase::Deferred | Phase::Body => Some(self.since + t.handshake),
            Phase::Fetching => Some(self.since + t.request),
            // Entered through [`Clock::closing`]; without a deadline, at once.
            Phase::Closing | Phase::Flushing => Some(self.aux.unwrap_or(self.since)),
            Phase::Done | Phase::Stream => None,
            Phase::Sse => t.sse_keepalive.map(|k| self.aux.unwrap_or(self.since) + k),
            Phase::Open => {
                let mut d = t.max_lifetime.map(|l| self.since + l);
                let mut take = |at: Stamp| d = Some(d.map_or(at, |x| x.min(at)));
                match self.awaiting_pong(phase) {
                    Some(p) => {
                        if let Some(w) = t.pong_wait {
                            take(p + w);
                        }
                    }
                    None => {
                        if let Some(i) = t.ping {
                            take(self.last_read + i);
                        }
                    }
                }
                if let Some(i) = t.idle {
                    take(self.last_read + i);
                }
                d
            }
        }
    }

    /// What is due at `now`.
    pub fn due(&self, phase: Phase, stalled_since: Option<Stamp>, t: &Timeouts, now: Stamp) -> Due {
        if Self::send_deadline(phase, stalled_since, t).is_some_and(|d| now >= d) {
            return Due::SendTimeout;
        }
        let passed = |limit: Duration| now >= self.since + limit;
        match phase {
            Phase::Handshake if passed(t.handshake) => Due::Drop,
            Phase::Body if passed(t.handshake) => Due::Answer(408, "request body timed out\n"),
            Phase::Deferred if passed(t.handshake) => Due::Answer(503, "upgrade timed out\n"),
            Phase::Fetching if passed(t.request) => Due::Answer(503, "request timed out\n"),
            Phase::Closing | Phase::Flushing if self.aux.is_none_or(|d| now >= d) => Due::Drop,
            Phase::Sse => match t.sse_keepalive {
                Some(k) if now >= self.aux.unwrap_or(self.since) + k => Due::KeepAlive,
                _ => Due::Nothing,
            },
            Phase::Open => {
                if t.max_lifetime.is_some_and(passed) {
                    return Due::Lifetime;
                }
                let pinged = self.awaiting_pong(phase);
                let pong_late = pinged.zip(t.pong_wait).is_some_and(|(p, w)| now >= p + w);
                let idle = t.idle.is_some_and(|i| now >= self.last_read + i);
                if pong_late || idle {
                    Due::Idle
                } else if pinged.is_none() && t.ping.is_some_and(|i| now >= self.last_read + i) {
                    Due::Ping
                } else {
                    Due::Nothing
                }
            }
            _ => Due::Nothing,
        }
    }
}

/// What a connection does with what its peer sent, decided by
/// [`Session::received`] from its phase (RFC 6455 §5.5, §7.1.4, §1.4):
/// the loop only carries it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction<'a> {
    /// Hand the message to the handler.
    Message(Message<'a>),
    /// Data after our close frame: read and dropped.
    Discard,
    /// Tell the handler of a ping; when `pong`, queue a pong with its
    /// payload first (none once our close frame went: nothing follows it).
    Ping {
        /// The ping's payload.
        payload: &'a [u8],
        /// Queue a pong carrying the payload.
        pong: bool,
    },
    /// Tell the handler of a pong.
    Pong(&'a [u8]),
    /// The peer closed: send our close frame echoing its `code` (once;
    /// 1005 gives an empty one, RFC 6455 §5.5.1), tell the handler `code`
    /// and `reason`, then write out and shut down.
    Close {
        /// The peer's code (1005 when its frame had none).
        code: u16,
        /// The peer's reason.
        reason: &'a str,
    },
    /// The peer broke a rule: close with the error's code.
    Fail(ProtocolError),
}

/// A connection's life, sans IO: its [`Phase`], its [`Clock`] and its
/// [`Control`], changed only by the transitions below, each of which moves
/// the phase and starts the time limits of the next together (a phase
/// entered without its clock restarted was the way a deadline went stale).
/// The loop does what a transition implies (writes the 101, queues the
/// close frame, arms the timer); which deadline applies, and what is due
/// when it passes, are asked here ([`Session::next_timeout`],
/// [`Session::due`]).
///
/// A connection's way through it: `Handshake` (a request head) → `Body`
/// (its body) → `Handshake` (the next request on keep-alive), or
/// `Fetching` / `Deferred` (an answer from elsewhere) → `Handshake`,
/// `Sse`, `Stream` or `Open`; `Open` → `Closing` (our close frame sent) →
/// `Flushing` (the last bytes out, then shut down) → `Done`. Any phase may
/// end in `Flushing` or `Done` (an error, a timeout, a stop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    phase: Phase,
    /// The close handler is yet to run: set when the WebSocket opens,
    /// cleared when its close is reported (the handler is told once).
    close_due: bool,
    /// permessage-deflate as agreed at the open ([`Agreed::pack`]): it
    /// fills two bytes the struct would pad, which keeps an idle
    /// connection at its size.
    deflate: Option<NonZeroU16>,
    control: Control,
    clock: Clock,
}

impl Session {
    /// An accepted connection: reading its first request head.
    pub fn new(now: Stamp) -> Session {
        Session {
            phase: Phase::Handshake,
            close_due: false,
            deflate: None,
            control: Control::default(),
            clock: Clock::new(now),
        }
    }

    /// Where the connection is.
    #[inline(always)]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// permessage-deflate, when agreed.
    #[inline(always)]
    pub fn deflate(&self) -> Option<Agreed> {
        self.deflate.map(Agreed::unpack)
    }

    /// permessage-deflate was agreed in the upgrade (before [`Session::open`]).
    pub fn agree(&mut self, pmd: Option<Agreed>) {
        self.deflate = pmd.map(Agreed::pack);
    }

    /// A request head asked for a body, which now arrives under the
    /// handshake limit.
    pub fn read_body(&mut self, now: Stamp) {
        self.phase = Phase::Body;
        self.clock.restart(now);
    }

    /// More of a body arrived: the limit counts silence, not the upload.
    pub fn body_progress(&mut self, now: Stamp) {
        self.clock.restart(now);
    }

    /// The body is whole: the request is the handler's now, and the
    /// connection back to reading heads until it answers (the answer's
    /// transition, or [`Session::next_request`], starts the next limit).
    pub fn body_done(&mut self) {
        self.phase = Phase::Handshake;
    }

    /// The request waits for an answer from another thread or the host
    /// (`fetch`: an HTTP request, else an upgrade), under the request or
    /// handshake limit; nothing is read meanwhile.
    pub fn await_answer(&mut self, fetch: bool, now: Stamp) {
        self.phase = if fetch {
            Phase::Fetching
        } else {
            Phase::Deferred
        };
        self.clock.restart(now);
    }

    /// An answer went out on a keep-alive connection: the next request
    /// head has the handshake limit from now.
    pub fn next_request(&mut self, now: Stamp) {
        self.phase = Phase::Handshake;
        self.clock.restart(now);
    }

    /// The upgrade went out: messages flow, and the WebSocket's lifetime
    /// and idle time start now.
    pub fn open(&mut self, now: Stamp) {
        self.phase = Phase::Open;
        self.close_due = true;
        self.clock.open(now);
    }

    /// The close is to be told to the handler now: true once per opened
    /// connection (never for one that did not open).
    pub fn report_close(&mut self) -> bool {
        std::mem::take(&mut self.close_due)
    }

    /// The answer is a streamed body (`sse`: an event stream, which gets
    /// keep-alives from now).
    pub fn stream(&mut self, sse: bool, now: Stamp) {
        self.phase = if sse { Phase::Sse } else { Phase::Stream };
        self.clock.restart(now);
    }

    /// Our close frame is to go out now: true the first time only (it goes
    /// once, and nothing published follows it).
    pub fn send_close(&mut self) -> bool {
        self.control.send_close()
    }

    /// Our close frame went out.
    pub fn close_sent(&self) -> bool {
        self.control.close_sent()
    }

    /// An open connection sent its close frame: it waits for the peer's
    /// until the close limit. False (and nothing changes) when it was not
    /// open.
    pub fn closing(&mut self, now: Stamp, t: &Timeouts) -> bool {
        if self.phase != Phase::Open {
            return false;
        }
        self.phase = Phase::Closing;
        self.clock.closing(now, t);
        true
    }

    /// Write out what is queued, then shut down, within the close limit.
    pub fn flush(&mut self, now: Stamp, t: &Timeouts) {
        self.phase = Phase::Flushing;
        self.clock.closing(now, t);
    }

    /// The connection takes no more messages (its close handler runs, or
    /// TLS failed): what is queued goes out, if anything can, then it ends.
    pub fn stop_messages(&mut self) {
        self.phase = Phase::Flushing;
    }

    /// To be removed by the worker.
    pub fn finish(&mut self) {
        self.phase = Phase::Done;
    }

    /// Bytes arrived: the peer is alive (any frame answers a ping).
    #[inline]
    pub fn note_read(&mut self, now: Stamp) {
        self.clock.note_read(self.phase, now);
    }

    /// A ping of `len` payload bytes arrived: its pong is to be queued,
    /// unless the pongs the peer has not read would pass `limit` bytes
    /// ([`Control::ping`]).
    #[inline]
    pub fn ping(&mut self, len: usize, limit: usize) -> Result<(), ProtocolError> {
        self.control.ping(len, limit)
    }

    /// What the connection does with `ev`, a frame or message its peer
    /// sent, in its phase; a ping's pong is counted against
    /// `max_control_backlog` (the pong bytes a peer may leave unread).
    /// Only an open or closing connection decodes frames.
    #[inline(always)]
    pub fn received<'a>(&mut self, ev: Received<'a>, max_control_backlog: usize) -> Reaction<'a> {
        let open = self.phase == Phase::Open;
        match ev {
            Received::Text(t) if open => Reaction::Message(Message::Text(t)),
            Received::Binary(b) if open => Reaction::Message(Message::Binary(b)),
            Received::Text(_) | Received::Binary(_) => Reaction::Discard,
            // Pongs get through whatever the data backlog, but a peer that
            // pings while reading nothing is refused past the limit.
            Received::Ping(payload) if open => {
                match self.control.ping(payload.len(), max_control_backlog) {
                    Ok(()) => Reaction::Ping {
                        payload,
                        pong: true,
                    },
                    Err(e) => Reaction::Fail(e),
                }
            }
            Received::Ping(payload) => Reaction::Ping {
                payload,
                pong: false,
            },
            Received::Pong(payload) => Reaction::Pong(payload),
            // Echo the code (§5.5.1); an empty close gets an empty one.
            Received::Close { code, reason } => Reaction::Close { code, reason },
            // Inflated before it gets here (with permessage-deflate agreed,
            // `inbound::inflate`); without it, RSV1 was not ours to set.
            Received::Compressed { .. } => Reaction::Fail(ProtocolError::ReservedBitsSet),
        }
    }

    /// The peer took bytes: the pongs owed are on their way.
    #[inline]
    pub fn peer_read(&mut self) {
        self.control.peer_read();
    }

    /// A keep-alive ping went out.
    pub fn pinged(&mut self, now: Stamp) {
        self.clock.pinged(now);
    }

    /// An event-stream keep-alive went out.
    pub fn kept_alive(&mut self, now: Stamp) {
        self.clock.kept_alive(now);
    }

    /// The earliest moment this connection needs attention
    /// ([`Clock::next_timeout`] in its phase).
    #[inline]
    pub fn next_timeout(&self, stalled_since: Option<Stamp>, t: &Timeouts) -> Option<Stamp> {
        self.clock.next_timeout(self.phase, stalled_since, t)
    }

    /// What is due at `now` ([`Clock::due`] in its phase).
    pub fn due(&self, stalled_since: Option<Stamp>, t: &Timeouts, now: Stamp) -> Due {
        self.clock.due(self.phase, stalled_since, t, now)
    }
}

/// The control-frame side of an open connection, in four bytes: whether
/// our close frame went out (it goes once; nothing published follows it),
/// and the pong bytes queued since the peer last took any of our bytes. A
/// peer that pings while reading nothing is refused past a limit
/// ([`ProtocolError::PingFlood`], 1008), whatever its data backlog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Control(u32);

/// The top bit: our close frame went out. The rest: pong bytes owed.
const CLOSE_SENT: u32 = 1 << 31;

impl Control {
    /// A ping of `len` payload bytes arrived: its pong (`2 + len` bytes) is
    /// to be queued, unless the pongs the peer has not read would pass
    /// `limit` bytes (or 2 GiB).
    pub fn ping(&mut self, len: usize, limit: usize) -> Result<(), ProtocolError> {
        let owed = self.pongs_owed() + 2 + len;
        if owed > limit.min((CLOSE_SENT - 1) as usize) {
            return Err(ProtocolError::PingFlood);
        }
        self.0 = (self.0 & CLOSE_SENT) | owed as u32;
        Ok(())
    }

    /// The peer took bytes: the pongs owed are on their way.
    #[inline]
    pub fn peer_read(&mut self) {
        self.0 &= CLOSE_SENT;
    }

    /// Pong bytes queued since the peer last took any.
    pub fn pongs_owed(&self) -> usize {
        (self.0 & !CLOSE_SENT) as usize
    }

    /// Our close frame is to go out now: true the first time only.
    pub fn send_close(&mut self) -> bool {
        let first = !self.close_sent();
        self.0 |= CLOSE_SENT;
        first
    }

    /// Our close frame went out.
    pub fn close_sent(&self) -> bool {
        self.0 & CLOSE_SENT != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn at(secs: u64) -> Stamp {
        Stamp::from_ms(secs * 1000)
    }

    /// The defaults' shape: pings at half the idle timeout, no pong wait.
    fn limits() -> Timeouts {
        Timeouts {
            handshake: 10 * S,
            request: 60 * S,
            close: 2 * S,
            send: Some(60 * S),
            sse_keepalive: Some(15 * S),
            max_lifetime: None,
            ping: Some(60 * S),
            pong_wait: None,
            idle: Some(120 * S),
        }
    }

    /// Walk a connection's clock from `from` to `to` a second at a time,
    /// acting on what falls due as the loop does, and list it.
    fn walk(phase: Phase, c: &mut Clock, t: &Timeouts, from: u64, to: u64) -> Vec<(u64, Due)> {
        let mut seen = Vec::new();
        for s in from..=to {
            let now = at(s);
            let due = c.due(phase, None, t, now);
            // The loop's timer fires no later than the deadline it was given.
            if due != Due::Nothing {
                let next = c.next_timeout(phase, None, t).expect("a deadline");
                assert!(
                    next <= now,
                    "{due:?} at {s} s, but next_timeout is {next:?}"
                );
                seen.push((s, due));
                match due {
                    Due::Ping => c.pinged(now),
                    Due::KeepAlive => c.kept_alive(now),
                    _ => break,
                }
            }
        }
        seen
    }

    /// A keep-alive connection through its transitions: each phase's
    /// limit counts from the transition into it, never from an earlier one.
    #[test]
    fn every_transition_starts_the_limit_of_the_phase_it_enters() {
        let t = limits();
        let mut s = Session::new(at(0));
        assert_eq!(s.phase(), Phase::Handshake);
        assert_eq!(s.next_timeout(None, &t), Some(at(10)));
        s.read_body(at(3));
        assert_eq!(
            (s.phase(), s.next_timeout(None, &t)),
            (Phase::Body, Some(at(13)))
        );
        s.body_progress(at(8));
        assert_eq!(
            s.next_timeout(None, &t),
            Some(at(18)),
            "silence, not the upload"
        );
        assert_eq!(s.due(None, &t, at(17)), Due::Nothing);
        assert_eq!(
            s.due(None, &t, at(18)),
            Due::Answer(408, "request body timed out\n")
        );
        s.body_done();
        s.await_answer(true, at(9));
        assert_eq!(
            (s.phase(), s.next_timeout(None, &t)),
            (Phase::Fetching, Some(at(69)))
        );
        s.next_request(at(20));
        assert_eq!(
            (s.phase(), s.next_timeout(None, &t)),
            (Phase::Handshake, Some(at(30)))
        );
        s.await_answer(false, at(21));
        assert_eq!(
            (s.phase(), s.next_timeout(None, &t)),
            (Phase::Deferred, Some(at(31)))
        );
        assert_eq!(
            s.due(None, &t, at(31)),
            Due::Answer(503, "upgrade timed out\n")
        );
        s.stream(true, at(22));
        assert_eq!(
            (s.phase(), s.next_timeout(None, &t)),
            (Phase::Sse, Some(at(37)))
        );
        let mut r = Session::new(at(0));
        r.stream(false, at(5));
        assert_eq!((r.phase(), r.next_timeout(None, &t)), (Phase::Stream, None));
    }

    /// A WebSocket's life: opened, its close reported once, our close
    /// frame sent once, closing only from open, the last flush bounded.
    #[test]
    fn a_websocket_opens_closes_once_and_ends() {
        let t = limits();
        let mut s = Session::new(at(0));
        assert!(!s.report_close(), "never opened: no close to report");
        assert!(!s.closing(at(1), &t), "not open: nothing to close");
        assert_eq!(s.phase(), Phase::Handshake);
        s.open(at(100));
        assert_eq!(s.phase(), Phase::Open);
        // The idle clock starts at the open, not at the accept.
        assert_eq!(s.next_timeout(None, &t), Some(at(160)));
        s.note_read(at(150));
        assert_eq!(s.next_timeout(None, &t), Some(at(210)));
        assert!(s.send_close() && !s.send_close(), "one close frame");
        assert!(s.close_sent());
        assert!(s.closing(at(200), &t));
        assert_eq!(
            (s.phase(), s.next_timeout(None, &t)),
            (Phase::Closing, Some(at(202)))
        );
        assert!(!s.closing(at(201), &t), "closing once");
        assert!(
            s.report_close() && !s.report_close(),
            "the handler hears once"
        );
        s.flush(at(201), &t);
        assert_eq!(
            (s.phase(), s.next_timeout(None, &t)),
            (Phase::Flushing, Some(at(203)))
        );
        assert_eq!(s.due(None, &t, at(203)), Due::Drop);
        s.finish();
        assert_eq!((s.phase(), s.next_timeout(None, &t)), (Phase::Done, None));
        // A close handler running stops messages, without a deadline of
        // its own: the flush that follows sets it.
        let mut o = Session::new(at(0));
        o.open(at(0));
        o.stop_messages();
        assert_eq!(o.phase(), Phase::Flushing);
    }

    /// What a peer's frames make an open and a closing connection do.
    #[test]
    fn an_open_connection_answers_pings_and_delivers_a_closing_one_does_not() {
        let t = limits();
        let mut s = Session::new(at(0));
        s.open(at(0));
        assert_eq!(
            s.received(Received::Text("hi"), 100),
            Reaction::Message(Message::Text("hi"))
        );
        assert_eq!(
            s.received(Received::Binary(b"\x01"), 100),
            Reaction::Message(Message::Binary(b"\x01"))
        );
        assert_eq!(
            s.received(Received::Ping(b"abc"), 100),
            Reaction::Ping {
                payload: b"abc",
                pong: true
            }
        );
        // 5 pong bytes owed, unread: the next ping's 5 more pass 8.
        assert_eq!(
            s.received(Received::Ping(b"abc"), 8),
            Reaction::Fail(ProtocolError::PingFlood)
        );
        s.peer_read();
        assert_eq!(
            s.received(Received::Ping(b"abc"), 8),
            Reaction::Ping {
                payload: b"abc",
                pong: true
            }
        );
        assert_eq!(s.received(Received::Pong(b"x"), 8), Reaction::Pong(b"x"));
        assert_eq!(
            s.received(
                Received::Compressed {
                    text: true,
                    deflated: b""
                },
                8
            ),
            Reaction::Fail(ProtocolError::ReservedBitsSet)
        );
        assert_eq!(
            s.received(
                Received::Close {
                    code: 4001,
                    reason: "bye"
                },
                8
            ),
            Reaction::Close {
                code: 4001,
                reason: "bye"
            }
        );
        // After our close frame: data is dropped, a ping is told but not answered.
        assert!(s.send_close());
        assert!(s.closing(at(1), &t));
        assert_eq!(s.received(Received::Text("late"), 100), Reaction::Discard);
        assert_eq!(
            s.received(Received::Binary(b"late"), 100),
            Reaction::Discard
        );
        assert_eq!(
            s.received(Received::Ping(b"p"), 0),
            Reaction::Ping {
                payload: b"p",
                pong: false
            }
        );
        assert_eq!(
            s.received(
                Received::Close {
                    code: 1005,
                    reason: ""
                },
                0
            ),
            Reaction::Close {
                code: 1005,
                reason: ""
            }
        );
    }

    #[test]
    fn stamps_are_eight_bytes_and_saturate() {
        assert_eq!(std::mem::size_of::<Option<Stamp>>(), 8);
        assert_eq!(at(3).until(at(5)), 2 * S);
        assert_eq!(at(5).until(at(3)), Duration::ZERO);
        assert!(at(1) + Duration::MAX > at(1) + 1_000_000_000 * S);
        let e = Instant::now();
        assert_eq!(Stamp::at(e + S, e), at(0), "before the epoch clamps to it");
    }

    #[test]
    fn a_slow_request_head_is_dropped_and_a_slow_body_gets_408() {
        let t = limits();
        let mut c = Clock::new(at(0));
        assert_eq!(walk(Phase::Handshake, &mut c, &t, 0, 30), [(10, Due::Drop)]);
        assert_eq!(
            walk(Phase::Body, &mut c, &t, 0, 30),
            [(10, Due::Answer(408, "request body timed out\n"))]
        );
        // Reads do not extend a request's time: slowloris trickles bytes.
        c.note_read(Phase::Handshake, at(9));
        assert_eq!(c.due(Phase::Handshake, None, &t, at(10)), Due::Drop);
        // The next request on a keep-alive connection starts its own.
        c.restart(at(20));
        assert_eq!(c.due(Phase::Handshake, None, &t, at(29)), Due::Nothing);
        assert_eq!(c.next_timeout(Phase::Handshake, None, &t), Some(at(30)));
    }

    #[test]
    fn deferred_answers_time_out_with_503() {
        let t = limits();
        let mut c = Clock::new(at(0));
        assert_eq!(
            walk(Phase::Deferred, &mut c, &t, 0, 100),
            [(10, Due::Answer(503, "upgrade timed out\n"))]
        );
        assert_eq!(
            walk(Phase::Fetching, &mut c, &t, 0, 100),
            [(60, Due::Answer(503, "request timed out\n"))]
        );
    }

    #[test]
    fn a_silent_peer_is_pinged_at_half_the_idle_timeout_and_closed_at_it() {
        let t = limits();
        let mut c = Clock::new(at(0));
        assert_eq!(c.next_timeout(Phase::Open, None, &t), Some(at(60)));
        assert_eq!(
            walk(Phase::Open, &mut c, &t, 0, 300),
            [(60, Due::Ping), (120, Due::Idle)]
        );
    }

    #[test]
    fn any_read_answers_a_ping_and_pushes_idle_back() {
        let t = limits();
        let mut c = Clock::new(at(0));
        assert_eq!(walk(Phase::Open, &mut c, &t, 0, 60), [(60, Due::Ping)]);
        assert_eq!(c.awaiting_pong(Phase::Open), Some(at(60)));
        c.note_read(Phase::Open, at(70));
        assert_eq!(c.awaiting_pong(Phase::Open), None);
        assert_eq!(c.next_timeout(Phase::Open, None, &t), Some(at(130)));
        assert_eq!(
            walk(Phase::Open, &mut c, &t, 61, 400),
            [(130, Due::Ping), (190, Due::Idle)]
        );
    }

    #[test]
    fn an_explicit_ping_interval_gives_the_peer_pong_wait_to_answer() {
        let t = Timeouts {
            ping: Some(20 * S),
            pong_wait: Some(5 * S),
            ..limits()
        };
        let mut c = Clock::new(at(0));
        assert_eq!(
            walk(Phase::Open, &mut c, &t, 0, 300),
            [(20, Due::Ping), (25, Due::Idle)]
        );
        // Answered in time: pinged again 20 s after the answer.
        let mut c = Clock::new(at(0));
        c.pinged(at(20));
        c.note_read(Phase::Open, at(24));
        assert_eq!(c.next_timeout(Phase::Open, None, &t), Some(at(44)));
    }

    #[test]
    fn without_pings_or_idle_limit_an_open_connection_has_no_deadline() {
        let t = Timeouts {
            ping: None,
            idle: None,
            ..limits()
        };
        let c = Clock::new(at(0));
        assert_eq!(c.next_timeout(Phase::Open, None, &t), None);
        assert_eq!(c.due(Phase::Open, None, &t, at(1_000_000)), Due::Nothing);
        let t = Timeouts {
            max_lifetime: Some(30 * S),
            ..t
        };
        assert_eq!(c.next_timeout(Phase::Open, None, &t), Some(at(30)));
        assert_eq!(c.due(Phase::Open, None, &t, at(30)), Due::Lifetime);
    }

    #[test]
    fn max_lifetime_wins_over_a_due_ping() {
        let t = Timeouts {
            max_lifetime: Some(60 * S),
            ..limits()
        };
        let c = Clock::new(at(0));
        assert_eq!(c.due(Phase::Open, None, &t, at(60)), Due::Lifetime);
    }

    #[test]
    fn closing_and_flushing_drop_at_their_deadline() {
        let t = limits();
        let mut c = Clock::new(at(0));
        c.closing(at(5), &t);
        for phase in [Phase::Closing, Phase::Flushing] {
            assert_eq!(c.next_timeout(phase, None, &t), Some(at(7)));
            assert_eq!(c.due(phase, None, &t, at(6)), Due::Nothing);
            assert_eq!(c.due(phase, None, &t, at(7)), Due::Drop);
        }
        // A read while closing does not move the deadline.
        c.note_read(Phase::Closing, at(6));
        assert_eq!(c.next_timeout(Phase::Closing, None, &t), Some(at(7)));
    }

    #[test]
    fn event_streams_get_keep_alives_while_quiet() {
        let t = limits();
        let mut c = Clock::new(at(0));
        assert_eq!(
            walk(Phase::Sse, &mut c, &t, 0, 50),
            [
                (15, Due::KeepAlive),
                (30, Due::KeepAlive),
                (45, Due::KeepAlive)
            ]
        );
        let off = Timeouts {
            sse_keepalive: None,
            ..t
        };
        assert_eq!(c.next_timeout(Phase::Sse, None, &off), None);
    }

    #[test]
    fn bytes_that_stop_moving_time_out_in_every_phase_but_done() {
        let t = limits();
        let c = Clock::new(at(0));
        let stalled = Some(at(100));
        for phase in [
            Phase::Handshake,
            Phase::Body,
            Phase::Fetching,
            Phase::Open,
            Phase::Closing,
            Phase::Sse,
            Phase::Stream,
        ] {
            let mut c = c;
            c.restart(at(100));
            c.note_read(phase, at(100));
            c.aux = None;
            let next = c.next_timeout(phase, stalled, &t).unwrap();
            assert!(next <= at(160), "{phase:?}: {next:?}");
            assert_eq!(
                c.due(phase, stalled, &t, at(160)),
                Due::SendTimeout,
                "{phase:?}"
            );
        }
        assert_eq!(c.next_timeout(Phase::Done, stalled, &t), None);
        assert_eq!(c.due(Phase::Done, stalled, &t, at(1000)), Due::Nothing);
        let off = Timeouts { send: None, ..t };
        assert_eq!(c.next_timeout(Phase::Stream, stalled, &off), None);
    }

    #[test]
    fn next_timeout_is_never_later_than_what_due_reports() {
        // Every phase, a grid of clocks and limits: when `due` says
        // something is due, the deadline the loop armed had passed.
        let phases = [
            Phase::Handshake,
            Phase::Deferred,
            Phase::Body,
            Phase::Fetching,
            Phase::Open,
            Phase::Closing,
            Phase::Sse,
            Phase::Stream,
            Phase::Flushing,
            Phase::Done,
        ];
        let opt = |v: u64| (v > 0).then(|| Duration::from_secs(v));
        for &phase in &phases {
            for (ping, pong, idle, life) in [
                (0, 0, 0, 0),
                (6, 0, 12, 0),
                (4, 2, 9, 0),
                (0, 0, 5, 7),
                (3, 1, 0, 20),
            ] {
                let t = Timeouts {
                    handshake: 3 * S,
                    request: 8 * S,
                    close: 2 * S,
                    send: opt(11),
                    sse_keepalive: opt(4),
                    max_lifetime: opt(life),
                    ping: opt(ping),
                    pong_wait: opt(pong),
                    idle: opt(idle),
                };
                for aux in [None, Some(at(1)), Some(at(5))] {
                    for stalled in [None, Some(at(2))] {
                        let c = Clock {
                            since: at(0),
                            last_read: at(1),
                            aux,
                        };
                        let next = c.next_timeout(phase, stalled, &t);
                        for s in 0..40 {
                            if c.due(phase, stalled, &t, at(s)) != Due::Nothing {
                                assert!(
                                    next.is_some_and(|n| n <= at(s)),
                                    "{phase:?} {t:?} aux {aux:?} stalled {stalled:?}: due at {s} s, next {next:?}"
                                );
                                break;
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_close_frame_goes_once() {
        let mut c = Control::default();
        assert!(!c.close_sent());
        assert!(c.send_close());
        assert!(!c.send_close());
        assert!(c.close_sent());
        // Pongs are still counted after it, and the flag survives them.
        c.ping(10, 100).unwrap();
        c.peer_read();
        assert!(c.close_sent());
        assert_eq!(c.pongs_owed(), 0);
    }

    #[test]
    fn pings_past_the_unread_pong_limit_are_a_flood() {
        let mut c = Control::default();
        // Each 125-byte ping owes a 127-byte pong: 8 fit in 1,024 bytes.
        for _ in 0..8 {
            c.ping(125, 1024).unwrap();
        }
        assert_eq!(c.pongs_owed(), 8 * 127);
        assert_eq!(c.ping(125, 1024), Err(ProtocolError::PingFlood));
        assert_eq!(c.pongs_owed(), 8 * 127, "a refused ping owes nothing");
        // A peer that reads is owed nothing again.
        c.peer_read();
        assert_eq!(c.ping(125, 1024), Ok(()));
        // No limit is larger than the count can hold.
        let mut c = Control::default();
        let mut n = 0u64;
        while c.ping(125, usize::MAX).is_ok() {
            n += 1;
        }
        assert_eq!(n, u64::from(CLOSE_SENT - 1) / 127);
        assert!(!c.close_sent());
    }
}
