//! One keep-alive HTTP/1.1 connection per closed-loop worker, polled in the
//! worker's own task (hyper's client connection, no pool).
//!
//! The load generator shares the server's two cores, so what it spends per
//! request is taken from the server. A pooled client (reqwest) hands every
//! request to a connection task and the answer back: two task wake-ups and
//! a pool lock per request. Here the worker's task writes the request,
//! reads the answer and drives the socket itself.

use std::future::Future;

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;

/// Where requests go: the server's address and the `Host` header.
#[derive(Clone, Debug)]
pub struct Target {
    addr: String,
    host: HeaderValue,
}

impl Target {
    /// From a base URL such as `http://127.0.0.1:7101` (plain HTTP only).
    pub fn from_url(url: &str) -> Result<Target> {
        let uri: Uri = url.parse().with_context(|| format!("bad url {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(anyhow!("{url}: only http:// is supported by this client"));
        }
        let authority = uri.authority().ok_or_else(|| anyhow!("{url}: no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        Ok(Target { addr: format!("{}:{port}", authority.host()), host: HeaderValue::from_str(authority.as_str())? })
    }
}

/// A request on the worker's connection.
pub type Sender = SendRequest<Full<Bytes>>;

/// Opens a connection to `target` and runs `work` with its sender while
/// this task also drives the connection. Ends with `work`'s result, or
/// with an error if the connection ends first.
pub async fn with_connection<T, F, Fut>(target: &Target, work: F) -> Result<T>
where
    F: FnOnce(Sender) -> Fut,
    Fut: Future<Output = T>,
{
    let stream = tokio::net::TcpStream::connect(&target.addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::select! {
        out = work(sender) => Ok(out),
        end = conn => Err(anyhow!("connection ended: {end:?}")),
    }
}

/// Sends one request (`body` makes it a POST with `content-type: application/json`)
/// and reads the whole answer. True for a 2xx status with a complete body.
pub async fn send(
    sender: &mut Sender,
    target: &Target,
    path_and_query: &str,
    headers: &[(&'static str, &str)],
    bearer: &str,
    body: Option<String>,
) -> Result<bool> {
    let method = if body.is_some() { Method::POST } else { Method::GET };
    let mut req = Request::builder().method(method).uri(path_and_query).header(HOST, target.host.clone());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req = req.header(AUTHORIZATION, format!("Bearer {bearer}"));
    if body.is_some() {
        req = req.header(CONTENT_TYPE, "application/json");
    }
    let req = req.body(Full::new(body.map(Bytes::from).unwrap_or_default()))?;
    sender.ready().await?;
    let res = sender.send_request(req).await?;
    let ok = res.status().is_success();
    res.into_body().collect().await?;
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_come_from_plain_http_urls() {
        let t = Target::from_url("http://127.0.0.1:7101").expect("target");
        assert_eq!(t.addr, "127.0.0.1:7101");
        assert_eq!(t.host, "127.0.0.1:7101");
        assert_eq!(Target::from_url("http://localhost/").expect("target").addr, "localhost:80");
        assert!(Target::from_url("https://example.com").is_err());
        assert!(Target::from_url("not a url").is_err());
    }
}
