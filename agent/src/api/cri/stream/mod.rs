//! The CRI streaming server, as kubelet's runtimes have one: Exec, Attach and PortForward
//! answer with a URL `http://ADDR/{exec,attach,portforward}/TOKEN` on this HTTP endpoint
//! (`[cri] stream_listen`, default 127.0.0.1 with a port the OS chooses); the client
//! (kubelet's proxy, or crictl) upgrades that request to SPDY/3.1 and speaks the
//! Kubernetes stream protocols over it: `remotecommand.rs` (`v4.channel.k8s.io` … for
//! exec and attach) and `portforward.rs` (`portforward.k8s.io`). All three are also served
//! over WebSocket (`ws.rs`: `v5.channel.k8s.io`, `v4.channel.k8s.io` and the base64
//! variants for exec and attach; `portforward_ws.rs`).
//!
//! A token is random, names one validated request, is good for one connection, and
//! expires after a minute (kubelet's default cache TTL); an unknown, used or expired token
//! is a 404. With `[cri] stream_tls_cert` / `stream_tls_key` the endpoint speaks TLS
//! (rustls; no client certificates: the token is the credential) and its URLs are https://.

mod portforward;
mod portforward_ws;
mod remotecommand;
mod session;
pub mod spdy;
mod ws;

use crate::runtime::Runtime;
use base64::Engine;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a URL stays good.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);
/// At most this many URLs wait for their client (kubelet's cache holds 1000).
const MAX_PENDING: usize = 1000;
/// How long a client may take over its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// What a token stands for (validated when it was handed out).
#[derive(Clone, Debug)]
pub enum Pending {
    Exec {
        container: String,
        cmd: Vec<String>,
        io: IoOptions,
    },
    Attach {
        container: String,
        io: IoOptions,
    },
    /// `ports`: those of the request (WebSocket fixes them when it opens; SPDY names a
    /// port on each stream).
    PortForward {
        sandbox: String,
        ports: Vec<u16>,
    },
}

/// Which streams a command has.
#[derive(Clone, Copy, Debug, Default)]
pub struct IoOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Pending {
    fn path(&self) -> &'static str {
        match self {
            Pending::Exec { .. } => "exec",
            Pending::Attach { .. } => "attach",
            Pending::PortForward { .. } => "portforward",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("too many pending streaming requests ({MAX_PENDING}); try again in a minute")]
    TooMany,
    #[error("no randomness for a streaming token: {0}")]
    Random(String),
}

/// Single-use tokens, each naming a request, good for [`TOKEN_TTL`].
#[derive(Default)]
struct Tokens {
    pending: Mutex<HashMap<String, (Instant, Pending)>>,
}

impl Tokens {
    fn insert(&self, p: Pending, now: Instant) -> Result<String, StreamError> {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| StreamError::Random(e.to_string()))?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let mut m = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, (t, _)| now.saturating_duration_since(*t) < TOKEN_TTL);
        if m.len() >= MAX_PENDING {
            return Err(StreamError::TooMany);
        }
        m.insert(token.clone(), (now, p));
        Ok(token)
    }

    /// Takes the request of `token` if it is good for `path` at `now` (once only).
    fn take(&self, path: &str, token: &str, now: Instant) -> Option<Pending> {
        let mut m = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let (t, p) = m.remove(token)?;
        if now.saturating_duration_since(t) >= TOKEN_TTL || p.path() != path {
            return None;
        }
        Some(p)
    }
}

/// The endpoint and its tokens.
pub struct StreamServer {
    addr: SocketAddr,
    /// `http` or `https`.
    scheme: &'static str,
    rt: Arc<Runtime>,
    tokens: Tokens,
}

impl StreamServer {
    /// Binds `listen` (`IP:PORT`, port 0: the OS chooses) and serves until `stop`.
    pub async fn start(
        listen: &str,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
        rt: Arc<Runtime>,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Arc<StreamServer>> {
        let want: SocketAddr = listen
            .parse()
            .map_err(|e| anyhow::anyhow!("[cri] stream_listen {listen:?} is not an IP:PORT address: {e}"))?;
        let l = tokio::net::TcpListener::bind(want)
            .await
            .map_err(|e| anyhow::anyhow!("[cri] stream_listen {listen}: cannot listen: {e}"))?;
        let addr = l.local_addr()?;
        if !addr.ip().is_loopback() && tls.is_none() {
            tracing::warn!(%addr, "the CRI streaming server listens beyond loopback, without TLS");
        }
        tracing::info!(%addr, tls = tls.is_some(), "CRI streaming server");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let srv = Arc::new(StreamServer { addr, scheme, rt, tokens: Tokens::default() });
        let s = Arc::clone(&srv);
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            tokio::pin!(stopped);
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    acc = l.accept() => match acc {
                        Ok((tcp, peer)) => {
                            let s = Arc::clone(&s);
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                let _ = tcp.set_nodelay(true);
                                let Some(a) = acceptor else { return s.serve_http(tcp).await };
                                match tokio::time::timeout(HANDSHAKE, a.accept(tcp)).await {
                                    Ok(Ok(tls)) => s.serve_http(tls).await,
                                    Ok(Err(e)) => tracing::info!(%peer, error = %e, "CRI streaming: TLS handshake"),
                                    Err(_) => tracing::info!(%peer, "CRI streaming: TLS handshake timed out"),
                                }
                            });
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "CRI streaming server: accept");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                }
            }
        });
        Ok(srv)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A fresh single-use URL for `p`.
    pub fn register(&self, p: Pending) -> Result<String, StreamError> {
        let path = p.path();
        let token = self.tokens.insert(p, Instant::now())?;
        Ok(format!("{}://{}/{path}/{token}", self.scheme, self.addr))
    }

    async fn serve_http<IO>(self: Arc<Self>, io: IO)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let s = Arc::clone(&self);
        let svc = hyper::service::service_fn(move |req| {
            let s = Arc::clone(&s);
            async move { Ok::<_, std::convert::Infallible>(s.handle(req)) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(io), svc)
            .with_upgrades();
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "CRI streaming connection");
        }
    }

    fn handle(self: &Arc<Self>, mut req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().trim_start_matches('/').to_string();
        let Some((kind, token)) = path.split_once('/') else {
            return plain(StatusCode::NOT_FOUND, "not found");
        };
        let Some(p) = self.tokens.take(kind, token, Instant::now()) else {
            return plain(StatusCode::NOT_FOUND, "unknown, used or expired streaming URL");
        };
        let upgrade = header_values(&req, "upgrade");
        if upgrade.iter().any(|u| u.eq_ignore_ascii_case("websocket")) {
            return self.websocket(req, p);
        }
        if !upgrade.iter().any(|u| u.eq_ignore_ascii_case("SPDY/3.1")) {
            return plain(StatusCode::BAD_REQUEST, "this endpoint needs Upgrade: SPDY/3.1 or websocket");
        }
        let offered = header_values(&req, "x-stream-protocol-version");
        let ours: &[&str] = match p {
            Pending::PortForward { .. } => portforward::PROTOCOLS,
            _ => remotecommand::PROTOCOLS,
        };
        // The client's order of preference, as kubelet's handshake does; none offered means
        // the oldest protocol.
        let chosen = if offered.is_empty() {
            ours[ours.len() - 1].to_string()
        } else {
            match negotiate(&offered, ours) {
                Ok(c) => c,
                Err(r) => return *r,
            }
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let s = Arc::clone(self);
        let proto = chosen.clone();
        tokio::spawn(async move {
            let Some(io) = upgraded(on_upgrade).await else { return };
            let sess = session::Session::start(io);
            match p {
                Pending::PortForward { sandbox, .. } => portforward::serve(&s.rt, sess, &sandbox).await,
                other => s.remote_command(remotecommand::Transport::Spdy(sess), &proto, other).await,
            }
        });
        let mut r = switching("SPDY/3.1");
        if let Ok(v) = hyper::header::HeaderValue::from_str(&chosen) {
            r.headers_mut().insert("X-Stream-Protocol-Version", v);
        }
        r
    }

    /// Exec, attach or port-forward over WebSocket: the subprotocol chosen from
    /// `Sec-WebSocket-Protocol` (none offered: the binary framing, as kubelet does).
    fn websocket(self: &Arc<Self>, mut req: Request<hyper::body::Incoming>, p: Pending) -> Response<Full<Bytes>> {
        let Some(key) = req.headers().get("sec-websocket-key").map(|k| k.as_bytes().to_vec()) else {
            return plain(StatusCode::BAD_REQUEST, "a WebSocket upgrade needs Sec-WebSocket-Key");
        };
        let offered = header_values(&req, "sec-websocket-protocol");
        let (ours, default) = match p {
            Pending::PortForward { .. } => (portforward_ws::PROTOCOLS, "v4.channel.k8s.io"),
            _ => (ws::PROTOCOLS, "channel.k8s.io"),
        };
        let chosen = if offered.is_empty() {
            None
        } else {
            match negotiate(&offered, ours) {
                Ok(c) => Some(c),
                Err(r) => return *r,
            }
        };
        let proto = chosen.clone().unwrap_or_else(|| default.to_string());
        let p = match p {
            Pending::PortForward { sandbox, ports } => {
                let ports = match (ports.is_empty(), portforward_ws::query_ports(req.uri().query())) {
                    (false, _) => ports,
                    (true, Ok(q)) => q,
                    (true, Err(e)) => return plain(StatusCode::BAD_REQUEST, &e),
                };
                if ports.is_empty() {
                    let msg = "port-forward over WebSocket needs its ports (in the PortForward request or ?port=)";
                    return plain(StatusCode::BAD_REQUEST, msg);
                }
                if ports.len() > portforward_ws::max_ports(&proto) {
                    let msg = format!("{} ports are more than {proto} can carry", ports.len());
                    return plain(StatusCode::BAD_REQUEST, &msg);
                }
                Pending::PortForward { sandbox, ports }
            }
            other => other,
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let s = Arc::clone(self);
        tokio::spawn(async move {
            let Some(io) = upgraded(on_upgrade).await else { return };
            match p {
                Pending::PortForward { sandbox, ports } => {
                    portforward_ws::serve(&s.rt, io, &proto, &sandbox, ports).await;
                }
                other => {
                    let conn = ws::WsConn::start(io, &proto, &[ws::STDIN, ws::RESIZE]).await;
                    s.remote_command(remotecommand::Transport::Ws(conn), &proto, other).await;
                }
            }
        });
        let mut r = switching("websocket");
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
        for (k, v) in [("Sec-WebSocket-Accept", Some(accept)), ("Sec-WebSocket-Protocol", chosen)] {
            if let Some(Ok(v)) = v.map(|v| hyper::header::HeaderValue::from_str(&v)) {
                r.headers_mut().insert(k, v);
            }
        }
        r
    }

    async fn remote_command(&self, t: remotecommand::Transport, proto: &str, p: Pending) {
        match p {
            Pending::Exec { container, cmd, io } => remotecommand::exec(&self.rt, t, proto, &container, cmd, io).await,
            Pending::Attach { container, io } => remotecommand::attach(&self.rt, t, proto, &container, io).await,
            Pending::PortForward { .. } => {}
        }
    }
}

/// The first of the client's protocols that we speak, or the 403 kubelet answers.
fn negotiate(offered: &[String], ours: &[&str]) -> Result<String, Box<Response<Full<Bytes>>>> {
    match offered.iter().find(|o| ours.contains(&o.as_str())) {
        Some(c) => Ok(c.clone()),
        None => Err(Box::new(plain(
            StatusCode::FORBIDDEN,
            &format!("unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {ours:?}"),
        ))),
    }
}

fn switching(upgrade: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("Upgrade"));
    h.insert(hyper::header::UPGRADE, hyper::header::HeaderValue::from_static(upgrade));
    r
}

/// Every value of a header, comma-separated lists split.
fn header_values<B>(req: &Request<B>, name: &str) -> Vec<String> {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn plain(code: StatusCode, msg: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{msg}\n"))));
    *r.status_mut() = code;
    r
}

/// The connection once hyper has switched protocols (None, logged, when the upgrade failed).
async fn upgraded(on: hyper::upgrade::OnUpgrade) -> Option<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>> {
    match on.await {
        Ok(u) => Some(hyper_util::rt::TokioIo::new(u)),
        Err(e) => {
            tracing::info!(error = %e, "CRI streaming: upgrade failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pf() -> Pending {
        Pending::PortForward { sandbox: "sb".into(), ports: vec![80] }
    }

    #[test]
    fn a_token_is_good_once_for_its_path_until_it_expires() {
        let t = Tokens::default();
        let now = Instant::now();
        let a = t.insert(pf(), now).unwrap();
        assert_eq!(a.len(), 22, "16 random bytes, base64url: {a}");
        assert!(t.take("portforward", &a, now + Duration::from_secs(59)).is_some());
        assert!(t.take("portforward", &a, now).is_none(), "used");
        let b = t.insert(pf(), now).unwrap();
        assert_ne!(a, b);
        assert!(t.take("portforward", &b, now + TOKEN_TTL).is_none(), "expired");
        let c = t.insert(pf(), now).unwrap();
        assert!(t.take("exec", &c, now).is_none(), "a port-forward token is no exec token");
        assert!(t.take("portforward", &c, now).is_none(), "and a refused try spends it");
        assert!(t.take("portforward", "forged", now).is_none());
    }

    #[test]
    fn pending_tokens_are_bounded_and_expired_ones_make_room() {
        let t = Tokens::default();
        let now = Instant::now();
        for _ in 0..MAX_PENDING {
            t.insert(pf(), now).unwrap();
        }
        assert!(matches!(t.insert(pf(), now), Err(StreamError::TooMany)));
        assert!(t.insert(pf(), now + TOKEN_TTL).is_ok());
    }
}
