//! Commands from other threads (and from handles on this worker's own
//! thread), taken from the mailbox once per loop turn.

use super::http_phase::answered;
use super::hub::Command;
use super::publish;
use super::slots;
use super::worker::Worker;
use crate::id::ConnId;
use crate::io::websocket::{WebSocket, control, resume};
use crate::proto::frame::OpCode;
use crate::proto::session::Phase;
use crate::{Handler, Inspect};
use std::panic::{self, AssertUnwindSafe};

impl<H: Handler> Worker<H> {
    /// The connection an id names, if it is still that connection.
    fn target(&self, id: ConnId) -> Option<usize> {
        let key = id.slot();
        let c = self.conns.get(key)?;
        (c.generation == id.generation() as u32
            && c.phase() != Phase::Done
            && self.ctx.slot(key).holds(id))
        .then_some(key)
    }

    pub(super) fn commands(&mut self) {
        let mut inbox = std::mem::take(&mut self.inbox);
        self.ctx.hub.links[self.ctx.me].mailbox.take(&mut inbox);
        let n = inbox.cmds.len();
        for cmd in inbox.cmds.drain(..) {
            self.command(cmd, &inbox.data);
        }
        inbox.clear_after(n);
        self.inbox = inbox;
    }

    fn command(&mut self, cmd: Command, data: &[u8]) {
        match cmd {
            Command::Answer { id, answer } => {
                let answer = *answer;
                let waiting = self
                    .target(id)
                    .filter(|&k| self.conns[k].phase().awaits_answer());
                let Some(key) = waiting else {
                    // Too late (the client left, or the handshake timed
                    // out): an accepted upgrade's data goes back.
                    if let super::hub::Answer::Upgrade(Ok(a)) = answer {
                        if let Ok(data) = a.data.downcast::<H::Data>() {
                            self.shared.handler.upgrade_failed(id, *data);
                        }
                    }
                    return;
                };
                answered(&self.shared, &mut self.conns, &mut self.ctx, key, answer);
                if let Some(conn) = self.conns.get(key) {
                    if conn.read_pending || conn.has_stash() {
                        self.ctx.again.push(key);
                    }
                }
                self.fire_events();
                self.settle(key);
            }
            Command::Publish {
                topic,
                msg,
                compress,
                except,
            } => {
                let except = except.and_then(|id| self.target(id));
                publish::deliver_local(
                    &mut self.conns,
                    &mut self.ctx,
                    &topic,
                    &msg,
                    except,
                    compress,
                );
                self.fire_events();
            }
            Command::Send {
                id,
                op,
                at,
                len,
                compress,
                counted,
                want_drain,
            } => {
                self.ctx.slot(id.slot()).release(id, counted);
                let Some(key) = self.target(id) else { return };
                let conn = &mut self.conns[key];
                let bytes = &data[at..at + len];
                match conn.phase() {
                    Phase::Open => {
                        conn.send_unchecked(&mut self.ctx, key, op, bytes, compress);
                    }
                    // An event stream: text as one event, binary as given.
                    Phase::Sse if op == OpCode::Text => {
                        conn.queue_bytes(&mut self.ctx, key, &crate::pubsub::sse_event(bytes))
                    }
                    Phase::Sse | Phase::Stream => conn.queue_bytes(&mut self.ctx, key, bytes),
                    _ => return,
                }
                self.after_remote_send(key, want_drain);
            }
            Command::SendPrepared {
                id,
                msg,
                counted,
                want_drain,
            } => {
                self.ctx.slot(id.slot()).release(id, counted);
                let Some(key) = self.target(id) else { return };
                match self.conns[key].phase() {
                    Phase::Open => {
                        self.conns[key].send_prepared(&mut self.ctx, key, &msg, true);
                    }
                    Phase::Sse => self.conns[key].queue_shared(&mut self.ctx, key, msg.sse()),
                    _ => return,
                }
                self.after_remote_send(key, want_drain);
            }
            Command::Control { id, op, at, len } => {
                if let Some(key) = self.target(id) {
                    control(
                        &mut self.conns[key],
                        &mut self.ctx,
                        key,
                        op,
                        &data[at..at + len],
                    );
                }
            }
            Command::Close { id, code, reason } => {
                if let Some(key) = self.target(id) {
                    let conn = &mut self.conns[key];
                    if matches!(conn.phase(), Phase::Sse | Phase::Stream) {
                        // The end of a streamed response: what is queued, then EOF.
                        self.ctx.slot(key).set_state(slots::CLOSING);
                        conn.flush_and_shut(&mut self.ctx, key);
                    } else {
                        conn.start_close(&mut self.ctx, key, code, &reason);
                    }
                }
            }
            Command::WantDrain { id } => {
                self.ctx.slot(id.slot()).drain_taken();
                if let Some(key) = self.target(id) {
                    if self.conns[key].phase() == Phase::Open {
                        self.after_remote_send(key, true);
                    }
                }
            }
            Command::Opened { id } => {
                if let Some(key) = self.target(id) {
                    let conn = &mut self.conns[key];
                    if std::mem::take(&mut conn.held) {
                        conn.mark_dirty(&mut self.ctx, key);
                    }
                }
            }
            Command::Terminate { id } => {
                if let Some(key) = self.target(id) {
                    self.conns[key].finish(&mut self.ctx, key);
                }
            }
            Command::Subscribe { id, topic, first } => {
                match self.target(id) {
                    Some(key) => {
                        let name = topic.name.clone();
                        publish::subscribe(
                            &mut self.conns,
                            &mut self.ctx,
                            key,
                            &name,
                            Some((topic, first)),
                        );
                    }
                    None => {
                        if first {
                            self.ctx.events.push(super::conn::Deferred::TopicEdge {
                                topic: topic.name.clone(),
                                active: true,
                            });
                        }
                        publish::uncount(&mut self.ctx, &topic);
                    }
                }
                self.fire_events();
            }
            Command::Unsubscribe { id, topic } => {
                if let Some(key) = self.target(id) {
                    publish::unsubscribe(&mut self.conns, &mut self.ctx, key, &topic);
                    self.fire_events();
                }
            }
            Command::Pause { id } => {
                if let Some(key) = self.target(id) {
                    self.conns[key].paused = true;
                }
            }
            Command::Resume { id } => {
                if let Some(key) = self.target(id) {
                    resume(&mut self.conns[key], &mut self.ctx, key);
                }
            }
            Command::SetData { id, data } => {
                let Some(key) = self.target(id) else { return };
                match data.downcast::<H::Data>() {
                    Ok(d) if self.conns[key].data.is_some() => self.conns[key].data = Some(*d),
                    Ok(_) => {}
                    Err(_) => {
                        log::error!("volley: set_data with a type that is not the handler's Data")
                    }
                }
            }
            Command::CloseIdle { reply } => {
                let idle: Vec<usize> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.is_idle_http())
                    .map(|(k, _)| k)
                    .collect();
                for &key in &idle {
                    self.conns[key].finish(&mut self.ctx, key);
                }
                reply.send(idle.len());
            }
            Command::Inspect { id, f } => match self.target(id) {
                Some(key) if self.conns[key].data.is_some() => {
                    let mut ws = WebSocket {
                        conns: &mut self.conns,
                        ctx: &mut self.ctx,
                        key,
                    };
                    let view: &mut dyn Inspect = &mut ws;
                    if panic::catch_unwind(AssertUnwindSafe(|| f(Some(view)))).is_err() {
                        log::error!("volley: inspect closure panicked");
                    }
                }
                _ => {
                    if panic::catch_unwind(AssertUnwindSafe(|| f(None))).is_err() {
                        log::error!("volley: inspect closure panicked");
                    }
                }
            },
        }
    }

    /// A send from another thread was queued. If that thread was told `-1`,
    /// it waits for `drain`: make sure one comes once the queue empties
    /// (this turn's flush, if the socket takes everything).
    fn after_remote_send(&mut self, key: usize, want_drain: bool) {
        let conn = &mut self.conns[key];
        if want_drain {
            conn.backlogged = true;
            conn.mark_dirty(&mut self.ctx, key);
        }
    }
}
