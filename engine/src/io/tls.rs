//! TLS with `rustls`, inside the same readiness loop as plain connections:
//! no thread per connection, the handshake bounded by `handshake_timeout`.
//!
//! Reads: ciphertext arrives in the worker's receive buffer, goes into the
//! session, and plaintext comes out into a second worker buffer. Writes: the
//! connection's queue (plaintext) is flushed into the session, whose buffer
//! limit keeps backpressure visible, then the session writes ciphertext.

use rustls::ServerConnection;
use std::io::{self, Write};
use std::sync::Arc;

/// Most plaintext a session buffers before it pushes back on the queue.
pub(crate) const SESSION_BUFFER: usize = 64 * 1024;

/// A server configuration from PEM: a certificate chain and its private key
/// (PKCS#8, PKCS#1 or SEC1), TLS 1.2 and 1.3, ALPN `http/1.1`.
pub fn server_config(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> io::Result<Arc<rustls::ServerConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}"))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad("certificate PEM", &e))?;
    if certs.is_empty() {
        return Err(bad("certificate PEM", &"no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad("private key PEM", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("certificate and key", &e))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// [`server_config`] from two PEM files.
pub fn server_config_from_files(
    cert_chain: impl AsRef<std::path::Path>,
    key: impl AsRef<std::path::Path>,
) -> io::Result<Arc<rustls::ServerConfig>> {
    server_config(&std::fs::read(cert_chain)?, &std::fs::read(key)?)
}

/// A new server session with the plaintext buffer limit set.
pub(crate) fn session(cfg: &Arc<rustls::ServerConfig>) -> io::Result<ServerConnection> {
    let mut s = ServerConnection::new(cfg.clone()).map_err(io::Error::other)?;
    s.set_buffer_limit(Some(SESSION_BUFFER));
    Ok(s)
}

/// Plaintext into a session; `WouldBlock` once its buffer is full.
pub(crate) struct Plain<'a>(pub &'a mut ServerConnection);

impl Write for Plain<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Write the session's ciphertext to the socket. `Ok(true)`: all written.
pub(crate) fn write_out(s: &mut ServerConnection, sock: &mut impl Write) -> io::Result<bool> {
    struct Sock<'a, W>(&'a mut W);
    impl<W: Write> io::Write for Sock<'_, W> {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.write(b)
        }
        fn write_vectored(&mut self, b: &[io::IoSlice<'_>]) -> io::Result<usize> {
            self.0.write_vectored(b)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    while s.wants_write() {
        match s.write_tls(&mut Sock(sock)) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
