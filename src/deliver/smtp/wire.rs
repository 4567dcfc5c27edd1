//! The socket under lettre's protocol client, shared with gazette. lettre owns the SMTP
//! dialogue, but two things it does not offer need the socket itself: writing a message's
//! content ahead of its final dot (so the content travels while the ledger commits, and only the
//! dot waits for it), and upgrading to TLS beneath lettre rather than inside it, so those writes
//! are encrypted like everything else.

use std::{
    borrow::Cow,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
};

use lettre::transport::smtp::client::AsyncTokioStream;
use rustls_pki_types::ServerName;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};

/// One connection's socket; clones share it. lettre and gazette never use it at the same time:
/// both are driven, one after the other, by the task that owns the connection.
#[derive(Clone)]
pub(super) struct Wire(Arc<Mutex<State>>);

struct State {
    layer: Layer,
    /// Bytes read before the socket's own, for a protocol client that starts over mid-dialogue.
    replay: Vec<u8>,
    peer: SocketAddr,
}

enum Layer {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Between taking the plain socket and the TLS handshake's end; a failed handshake stays here.
    Gone,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Wire({})", self.state().peer)
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the TLS handshake did not complete")
}

impl Wire {
    pub(super) fn plain(tcp: TcpStream) -> io::Result<Self> {
        let peer = tcp.peer_addr()?;
        Ok(Self(Arc::new(Mutex::new(State { layer: Layer::Plain(tcp), replay: Vec::new(), peer }))))
    }

    /// Starts TLS on the plain socket (right away for `smtps://`, after STARTTLS otherwise).
    pub(super) async fn start_tls(&self, connector: TlsConnector, name: ServerName<'static>) -> io::Result<()> {
        let tcp = match std::mem::replace(&mut self.state().layer, Layer::Gone) {
            Layer::Plain(tcp) => tcp,
            other => {
                self.state().layer = other;
                return Err(io::Error::other("TLS was already started on this connection"));
            }
        };
        let tls = connector.connect(name, tcp).await?;
        self.state().layer = Layer::Tls(Box::new(tls));
        Ok(())
    }

    /// Has the next reads return `bytes` before anything the server sends.
    pub(super) fn replay(&self, bytes: &[u8]) {
        self.state().replay.extend_from_slice(bytes);
    }

    /// Writes and flushes `bytes`, bypassing the protocol client (which is between commands).
    pub(super) async fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        let mut at = 0;
        while at < bytes.len() {
            let rest = &bytes[at..];
            let n = std::future::poll_fn(|cx| Pin::new(&mut *self.state()).poll_write(cx, rest)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            at += n;
        }
        std::future::poll_fn(|cx| Pin::new(&mut *self.state()).poll_flush(cx)).await
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock is held leaves a socket mid-write at worst, which the protocol
        // client then reports as broken; the state itself is still whole.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl AsyncRead for State {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.replay.is_empty() {
            let n = self.replay.len().min(buf.remaining());
            buf.put_slice(&self.replay[..n]);
            self.replay.drain(..n);
            return Poll::Ready(Ok(()));
        }
        match &mut self.layer {
            Layer::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Layer::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Layer::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for State {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.layer {
            Layer::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Layer::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Layer::Gone => Poll::Ready(Err(gone())),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.layer {
            Layer::Plain(s) => Pin::new(s).poll_flush(cx),
            Layer::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Layer::Gone => Poll::Ready(Err(gone())),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.layer {
            Layer::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Layer::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Layer::Gone => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncRead for Wire {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.state()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Wire {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.state()).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.state()).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.state()).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Wire {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.state().peer)
    }
}

/// The content of a message as it travels in DATA (RFC 5321 §4.5.2): a line that starts with a
/// dot gets a second one, so that no line of it reads as the end. Most messages have no such line
/// and go out as they are.
pub(super) fn transparent(content: &[u8]) -> Cow<'_, [u8]> {
    let starts_with_dot = content.first() == Some(&b'.');
    let mut breaks = memchr::memmem::find_iter(content, b"\n.").peekable();
    if !starts_with_dot && breaks.peek().is_none() {
        return Cow::Borrowed(content);
    }
    let mut out = Vec::with_capacity(content.len() + 64);
    if starts_with_dot {
        out.push(b'.');
    }
    let mut from = 0;
    for at in breaks {
        out.extend_from_slice(&content[from..=at]);
        out.push(b'.');
        from = at + 1;
    }
    out.extend_from_slice(&content[from..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::transparent;

    #[test]
    fn a_line_that_starts_with_a_dot_gets_a_second_one_and_nothing_else_changes() {
        let stuffed = |s: &[u8]| transparent(s).into_owned();
        assert_eq!(stuffed(b".hidden\r\nmid.dle\r\n.\r\n..two\r\n"), b"..hidden\r\nmid.dle\r\n..\r\n...two\r\n");
        assert_eq!(stuffed(b"\n.\n."), b"\n..\n..");
        assert_eq!(stuffed(b"ends with a break\r\n."), b"ends with a break\r\n..");
        assert!(matches!(transparent(b"plain\r\nlines\r\n"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(stuffed(b""), b"");
    }
}
