//! The `/metrics` endpoint: HTTP/1.1 (hyper), plain on loopback, mutual TLS elsewhere
//! (the API's certificates; a scraper presents a client certificate signed by the same CA).

use super::Metrics;
use crate::auth::tls::{ReloadableTls, TlsFiles};
use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// Where and how the endpoint is served.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsListen {
    pub addr: SocketAddr,
    /// With TLS (required off loopback unless `--insecure-tcp`).
    pub tls: Option<TlsFiles>,
}

/// Parses `--metrics-listen`: `ADDR:PORT`, `[V6]:PORT`, or a bare `PORT` (loopback).
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        format!("--metrics-listen {s:?}: not an address; use ADDR:PORT (e.g. 127.0.0.1:9323) or a port alone")
    })
}

/// Decides how `addr` is served: loopback plainly; elsewhere only with TLS files or when
/// plain TCP is explicitly allowed.
pub fn plan(addr: SocketAddr, tls: Option<&TlsFiles>, insecure_tcp: bool) -> Result<MetricsListen, String> {
    if addr.ip().is_loopback() {
        return Ok(MetricsListen { addr, tls: None });
    }
    match tls {
        Some(t) => Ok(MetricsListen { addr, tls: Some(t.clone()) }),
        None if insecure_tcp => Ok(MetricsListen { addr, tls: None }),
        None => Err(format!(
            "--metrics-listen {addr}: off loopback the metrics are served with mutual TLS; give --tls-cert, \
             --tls-key and --tls-client-ca (or --insecure-tcp for a test)"
        )),
    }
}

async fn answer(metrics: Arc<Metrics>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let reply = |code: StatusCode, ctype: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = code;
        if let Ok(v) = http::HeaderValue::from_str(ctype) {
            r.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
        r
    };
    if req.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            format!("no such path {}; try /metrics\n", req.uri().path()),
        );
    }
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use GET\n".into());
    }
    // The collector reads the store and cgroup files: off the async threads.
    match tokio::task::spawn_blocking(move || metrics.render()).await {
        Ok(Ok(text)) => reply(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", text),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "metrics: encoding failed");
            reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "encoding the metrics failed\n".into())
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics: the collector panicked");
            reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "collecting the metrics failed\n".into())
        }
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn serve_conn<I>(metrics: Arc<Metrics>, io: I, stop: watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = hyper::service::service_fn(move |req| {
            let m = Arc::clone(&metrics);
            async move { Ok::<_, std::convert::Infallible>(answer(m, req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .header_read_timeout(std::time::Duration::from_secs(10))
            .timer(hyper_util::rt::TokioTimer::new())
            .serve_connection(hyper_util::rt::TokioIo::new(io), svc);
        let mut stop = stop;
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "metrics connection");
                }
            }
            _ = stopped(&mut stop) => {}
        }
    });
}

/// Binds `listen` and serves until `stop` turns true. Returns the bound address (a port 0
/// becomes the one the kernel chose).
pub async fn serve(
    listen: &MetricsListen,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let tl = tokio::net::TcpListener::bind(listen.addr)
        .await
        .with_context(|| format!("--metrics-listen {}: bind", listen.addr))?;
    let bound = tl.local_addr().context("metrics listener address")?;
    let task = match &listen.tls {
        None => {
            let mut stop2 = stop.clone();
            tokio::spawn(async move {
                loop {
                    let accepted = tokio::select! {
                        r = tl.accept() => r,
                        _ = stopped(&mut stop2) => break,
                    };
                    match accepted {
                        Ok((tcp, _)) => serve_conn(Arc::clone(&metrics), tcp, stop.clone()),
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!(error = %e, "metrics: accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                    }
                }
            })
        }
        Some(files) => {
            let tls = ReloadableTls::with_alpn(files.clone(), vec![b"http/1.1".to_vec()])?;
            let mut incoming = tls.incoming(tl);
            let mut stop2 = stop.clone();
            tokio::spawn(async move {
                use futures::StreamExt;
                loop {
                    tokio::select! {
                        c = incoming.next() => match c {
                            Some(Ok(s)) => serve_conn(Arc::clone(&metrics), s, stop.clone()),
                            Some(Err(e)) => tracing::warn!(error = %e, "metrics: TLS accept failed"),
                            None => break,
                        },
                        _ = stopped(&mut stop2) => break,
                    }
                }
            })
        }
    };
    tracing::info!(listen = %bound, tls = listen.tls.is_some(), "serving metrics at /metrics");
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_loopback_needs_no_tls() {
        assert_eq!(parse_addr("9323").unwrap(), "127.0.0.1:9323".parse().unwrap());
        assert_eq!(parse_addr("[::1]:9").unwrap(), "[::1]:9".parse().unwrap());
        let e = parse_addr("localhost").unwrap_err();
        assert!(e.contains("\"localhost\""), "{e}");
        assert!(plan("127.0.0.1:1".parse().unwrap(), None, false).is_ok());
        let e = plan("0.0.0.0:9323".parse().unwrap(), None, false).unwrap_err();
        assert!(e.contains("0.0.0.0:9323") && e.contains("--tls-cert"), "{e}");
        assert!(plan("0.0.0.0:9323".parse().unwrap(), None, true).unwrap().tls.is_none());
    }
}
