//! The byte stream to the server: TCP, a unix socket, or TLS over TCP.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

use super::params::{ConnParams, Host, SslMode};
use super::tls;
use crate::postgres::error::{PgError, PgResult};

pub enum PgStream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl PgStream {
    pub fn is_tls(&self) -> bool {
        matches!(self, PgStream::Tls(_))
    }

    pub fn is_unix(&self) -> bool {
        matches!(self, PgStream::Unix(_))
    }
}

impl AsyncRead for PgStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            PgStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PgStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PgStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            PgStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            PgStream::Unix(s) => Pin::new(s).poll_flush(cx),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            PgStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

async fn open_socket(params: &ConnParams) -> PgResult<PgStream> {
    let connect = async {
        match &params.host {
            Host::Tcp { host, port } => {
                let tcp = TcpStream::connect((host.as_str(), *port)).await?;
                tcp.set_nodelay(true)?;
                Ok(PgStream::Tcp(tcp))
            }
            Host::Unix { dir, port } => {
                let path = dir.join(format!(".s.PGSQL.{port}"));
                Ok(PgStream::Unix(UnixStream::connect(path).await?))
            }
        }
    };
    match tokio::time::timeout(params.connect_timeout, connect).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(source)) => Err(PgError::Connect {
            target: params.host.to_string(),
            source,
        }),
        Err(_) => Err(PgError::Connect {
            target: params.host.to_string(),
            source: io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
        }),
    }
}

/// Connects and negotiates TLS as `sslmode` says; the result is ready for
/// the startup message.
pub async fn connect(params: &ConnParams) -> PgResult<PgStream> {
    let stream = open_socket(params).await?;
    let PgStream::Tcp(mut tcp) = stream else {
        return Ok(stream);
    };
    if params.sslmode == SslMode::Disable {
        return Ok(PgStream::Tcp(tcp));
    }
    // Built before any byte goes out, so a bad sslrootcert fails early.
    let config = tls::client_config(params)?;
    let lost = |source| PgError::ConnectionLost {
        target: params.target(),
        context: "TLS negotiation",
        source,
    };
    let mut request = bytes::BytesMut::new();
    postgres_protocol::message::frontend::ssl_request(&mut request);
    tcp.write_all(&request).await.map_err(lost)?;
    let answer = tcp.read_u8().await.map_err(lost)?;
    match answer {
        b'S' => {}
        b'N' if params.sslmode == SslMode::Prefer => return Ok(PgStream::Tcp(tcp)),
        b'N' => {
            return Err(PgError::Tls {
                target: params.target(),
                reason: "the server does not accept TLS connections; set `ssl = on` in postgresql.conf or use sslmode=prefer/disable".into(),
            })
        }
        other => {
            return Err(PgError::protocol(
                "TLS negotiation",
                format!("the server answered the SSLRequest with byte {other:#x}"),
            ))
        }
    }
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tls = connector
        .connect(tls::server_name(params)?, tcp)
        .await
        .map_err(|e| PgError::Tls {
            target: params.target(),
            reason: format!("handshake failed: {e}"),
        })?;
    Ok(PgStream::Tls(Box::new(tls)))
}
