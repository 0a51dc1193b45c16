//! The sockets a worker listens and talks on: TCP, or a Unix stream socket
//! (a server behind a local proxy: websockets' `unix_serve`, Bun's
//! `unix`). A listener is an enum of the two (one per worker); a
//! connection is its descriptor, read and written with the calls both
//! families share.

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// A listening socket.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// The next waiting connection; TCP ones have `TCP_NODELAY` (frames are
    /// written whole, so Nagle's algorithm only adds latency): on Linux
    /// inherited from the listener, which `server::listen` set, elsewhere
    /// set here.
    pub fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                #[cfg(not(target_os = "linux"))]
                let _ = s.set_nodelay(true);
                Ok(s.into())
            }
            Listener::Unix(l) => Ok(l.accept()?.0.into()),
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }
}

impl Source for Listener {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.register(r, t, i),
            Listener::Unix(l) => l.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.reregister(r, t, i),
            Listener::Unix(l) => l.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.deregister(r),
            Listener::Unix(l) => l.deregister(r),
        }
    }
}

/// A connection's socket: a connected stream socket of either family, as
/// its descriptor alone (4 bytes: `Conn` stays small, where an enum of the
/// two mio types would add 4 and padding). Writes go through `send` and
/// `sendmsg` with `MSG_NOSIGNAL`: a write to a peer that reset the
/// connection is an `EPIPE` error, never a `SIGPIPE` that would end a C
/// host which left the signal at its default (`writev`, what the std and
/// mio streams use for vectored writes, raises it).
#[derive(Debug)]
pub(crate) struct Stream {
    fd: OwnedFd,
}

impl Stream {
    /// The peer's address; `None` on a Unix socket (its peers have no
    /// IP address) or when the peer is gone.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        socket2::SockRef::from(&self.fd)
            .peer_addr()
            .ok()?
            .as_socket()
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        socket2::SockRef::from(&self.fd).shutdown(how)
    }

    /// Whether Nagle's algorithm is off (tests of `Listener::accept`).
    #[cfg(test)]
    pub fn nodelay(&self) -> io::Result<bool> {
        socket2::SockRef::from(&self.fd).nodelay()
    }
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Self {
        Stream { fd: s.into() }
    }
}

impl From<UnixStream> for Stream {
    fn from(s: UnixStream) -> Self {
        Stream { fd: s.into() }
    }
}

/// The result of a system call returning a count or -1.
fn count(n: isize) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

impl Read for Stream {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        // SAFETY: a live descriptor; `b` is writable for its length.
        count(unsafe { libc::read(self.fd.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) })
    }
}

impl Write for Stream {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        // SAFETY: a live descriptor; `b` is readable for its length.
        count(unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                b.as_ptr().cast(),
                b.len(),
                libc::MSG_NOSIGNAL,
            )
        })
    }

    fn write_vectored(&mut self, b: &[IoSlice<'_>]) -> io::Result<usize> {
        if let [one] = b {
            // One slice (a subscriber's coalesced frames, most often):
            // send(2) skips sendmsg's header copy.
            return self.write(one);
        }
        // SAFETY: an all-zero msghdr is valid (no name, no control data).
        let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
        // `IoSlice` is ABI-compatible with `iovec` on Unix (std documents
        // it); sendmsg only reads them. At most IOV_MAX (1024) per call.
        m.msg_iov = b.as_ptr().cast_mut().cast();
        m.msg_iovlen = b.len().min(1024) as _;
        // SAFETY: a live descriptor and a msghdr pointing at live buffers.
        count(unsafe { libc::sendmsg(self.fd.as_raw_fd(), &m, libc::MSG_NOSIGNAL) })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).register(r, t, i)
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).reregister(r, t, i)
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).deregister(r)
    }
}
