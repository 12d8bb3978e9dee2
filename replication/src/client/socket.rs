//! [`Socket`]: a TCP or Unix-domain stream behind one type, connected from
//! [`ConnectParams`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use super::config::{ConnectParams, Host};
use super::error::ClientError;

/// A connected byte stream to the server.
#[derive(Debug)]
pub enum Socket {
    /// TCP (with `TCP_NODELAY`).
    Tcp(TcpStream),
    /// Unix-domain socket.
    Unix(UnixStream),
}

impl Socket {
    /// Connects to the host or socket named by `params` (no timeout here;
    /// the caller wraps the whole handshake in one).
    pub async fn connect(params: &ConnectParams) -> Result<Socket, ClientError> {
        match &params.host {
            Host::Tcp(host) => {
                let target = format!("{host}:{}", params.port);
                let s = TcpStream::connect((host.as_str(), params.port))
                    .await
                    .map_err(|source| ClientError::Connect { target: target.clone(), source })?;
                s.set_nodelay(true).map_err(|source| ClientError::Connect { target, source })?;
                Ok(Socket::Tcp(s))
            }
            Host::Unix(_) => {
                let path = params.unix_socket_path().unwrap_or_default();
                let s = UnixStream::connect(&path)
                    .await
                    .map_err(|source| ClientError::Connect { target: path.display().to_string(), source })?;
                Ok(Socket::Unix(s))
            }
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
