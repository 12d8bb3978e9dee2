//! The WebSocket upgrade, accepted here rather than by warp's `ws()` filter
//! so that each socket's buffers can be sized ([`socket_config`]): warp
//! leaves tungstenite's defaults, a 128 KiB read buffer allocated eagerly
//! per socket, which alone exceeds the memory an idle subscriber may use.
//!
//! The handshake is RFC 6455's: a `GET` with `Connection: upgrade`,
//! `Upgrade: websocket`, `Sec-WebSocket-Version: 13` and a key; the answer
//! is `101 Switching Protocols` with the key's accept hash. The socket is
//! then taken over from hyper and driven by `tokio-tungstenite`.

use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use http::{HeaderMap, HeaderValue, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use warp::reply::Response;

/// An upgraded WebSocket.
pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Bytes read from the socket at a time. Client frames are small (joins,
/// heartbeats, broadcasts); a larger one is read in several steps.
const READ_BUFFER: usize = 4096;
/// Frames are written to the socket once this many bytes are buffered (or
/// at a flush, after each batch taken from the outbox).
const WRITE_BUFFER: usize = 16 * 1024;

/// A request that is not a WebSocket upgrade.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotUpgrade(pub &'static str);

fn has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Checks the handshake headers; returns the `Sec-WebSocket-Accept` value.
pub fn accept_key(headers: &HeaderMap) -> Result<String, NotUpgrade> {
    if !has_token(headers, CONNECTION, "upgrade") {
        return Err(NotUpgrade("Connection header did not include 'upgrade'"));
    }
    if !has_token(headers, UPGRADE, "websocket") {
        return Err(NotUpgrade("Upgrade header is not 'websocket'"));
    }
    if headers.get(SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        return Err(NotUpgrade("Sec-WebSocket-Version must be 13"));
    }
    let key = headers.get(SEC_WEBSOCKET_KEY).ok_or(NotUpgrade("Sec-WebSocket-Key is missing"))?;
    Ok(derive_accept_key(key.as_bytes()))
}

/// The `101 Switching Protocols` answer.
pub fn switching_protocols(accept: &str) -> Response {
    let mut res = Response::default();
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    res
}

/// The buffers and limits of one socket.
pub fn socket_config(max_message_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes))
}

/// Waits for hyper to hand the connection over, then wraps it.
pub async fn take_over(on_upgrade: hyper::upgrade::OnUpgrade, config: WebSocketConfig) -> Result<Socket, hyper::Error> {
    let upgraded = on_upgrade.await?;
    Ok(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn accepts_rfc_6455_handshakes_only() {
        let ok = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        // The example of RFC 6455, section 1.3.
        assert_eq!(accept_key(&headers(&ok)).as_deref(), Ok("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(accept_key(&headers(&ok[1..])).is_err(), "no Connection: upgrade");
        assert!(accept_key(&headers(&[ok[0], ok[2], ok[3]])).is_err(), "no Upgrade");
        assert!(accept_key(&headers(&[ok[0], ok[1], ("sec-websocket-version", "8"), ok[3]])).is_err(), "old version");
        assert!(accept_key(&headers(&ok[..3])).is_err(), "no key");
        let res = switching_protocols("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(res.headers()[SEC_WEBSOCKET_ACCEPT], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn buffers_are_small() {
        let c = socket_config(1 << 20);
        assert_eq!((c.read_buffer_size, c.write_buffer_size), (READ_BUFFER, WRITE_BUFFER));
        assert_eq!(c.max_message_size, Some(1 << 20));
    }
}
