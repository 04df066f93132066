//! The tower layer in front of every service: finds the caller, checks its role against the
//! method, hands the [`Caller`] to the handler, and writes the audit log.
//!
//! The request body is not buffered: a tap copies the first gRPC frame as it streams past
//! (bounded), which is the whole message of a unary call and the opening message of a
//! streaming one (exec, attach, import), and the audit line names its identifying fields.

use super::audit::{self, AuditLog};
use super::{identity_of_cert, is_mutating, required_role, Caller, Identity, Role, RoleMap};
use crate::transport::outcome::{status_of, OnEnd, Outcome};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo, UdsConnectInfo};

/// Largest first frame copied for the audit log's target.
const TAP_LIMIT: usize = 64 * 1024;

/// Request fields that identify what a call acts on, in the order they are reported.
const TARGET_FIELDS: &[&str] = &["id", "name", "container", "image", "reference", "network", "source"];
/// Message fields looked into, one level deep (e.g. `spec.name` of Create).
const NESTED_FIELDS: &[&str] = &["spec", "options", "start"];

/// What the layer needs to decide and record.
pub struct AuthState {
    /// Certificate subject → role.
    pub roles: RoleMap,
    /// Where mutating and refused calls are recorded.
    pub audit: Option<AuditLog>,
    /// Operators may create privileged containers too.
    pub allow_privileged_operator: bool,
    pool: Option<prost_reflect::DescriptorPool>,
}

impl AuthState {
    /// The state for `roles` and an optional audit log.
    pub fn new(roles: RoleMap, audit: Option<AuditLog>, allow_privileged_operator: bool) -> Arc<AuthState> {
        let pool = match prost_reflect::DescriptorPool::decode(agent_proto::FILE_DESCRIPTOR_SET) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(error = %e, "audit log will not name targets: descriptor set unreadable");
                None
            }
        };
        Arc::new(AuthState { roles, audit, allow_privileged_operator, pool })
    }

    /// The caller's identity and role, from the connection the request came on. The unix
    /// socket is guarded by its file mode, and a plain TCP listener was explicitly made
    /// insecure, so both get `admin`; a TLS client gets what its certificate maps to.
    fn caller(&self, ext: &http::Extensions) -> (Identity, Option<Role>) {
        if let Some(tls) = ext.get::<TlsConnectInfo<TcpConnectInfo>>() {
            let peer = tls.get_ref().remote_addr().map(|a| a.to_string());
            let mut id =
                tls.peer_certs().and_then(|c| c.first().and_then(|c| identity_of_cert(c.as_ref()))).unwrap_or_default();
            id.peer = peer;
            let role = self.roles.role_of(&id);
            return (id, role);
        }
        if let Some(uds) = ext.get::<UdsConnectInfo>() {
            let peer = uds.peer_cred.map(|c| format!("uid={}", c.uid())).unwrap_or_else(|| "unix".into());
            return (Identity { peer: Some(peer), ..Default::default() }, Some(Role::Admin));
        }
        if let Some(tcp) = ext.get::<TcpConnectInfo>() {
            let peer = tcp.remote_addr().map(|a| format!("tcp:{a} (insecure)")).unwrap_or_else(|| "tcp".into());
            return (Identity { peer: Some(peer), ..Default::default() }, Some(Role::Admin));
        }
        (Identity::default(), None)
    }

    /// The identifying fields of the first request message of `path`.
    fn target(&self, path: &str, frame: Option<&[u8]>) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        let (Some(pool), Some(frame)) = (&self.pool, frame) else { return out };
        // gRPC frame: 1 byte compressed flag, 4 bytes big-endian length, the message.
        if frame.len() < 5 || frame[0] != 0 {
            return out;
        }
        let Some((svc, method)) = path.trim_start_matches('/').split_once('/') else { return out };
        let Some(m) = pool.get_service_by_name(svc).and_then(|s| s.methods().find(|m| m.name() == method)) else {
            return out;
        };
        let Ok(msg) = prost_reflect::DynamicMessage::decode(m.input(), &frame[5..]) else { return out };
        collect_targets(&msg, "", &mut out, true);
        out
    }

    fn record(&self, id: &Identity, role: Option<Role>, path: &str, target: &[u8], result: &str, message: &str) {
        if let Some(log) = &self.audit {
            let peer = id.to_string();
            let peer = match (&id.cn, &id.peer) {
                (Some(_), Some(addr)) => format!("{peer}@{addr}"),
                _ => peer,
            };
            let frame = (!target.is_empty()).then_some(target);
            log.write(&audit::Record {
                time: audit::now(),
                peer: &peer,
                role: role.map(Role::as_str),
                method: path,
                target: self.target(path, frame),
                result,
                message,
            });
        }
    }
}

fn collect_targets(
    msg: &prost_reflect::DynamicMessage,
    prefix: &str,
    out: &mut serde_json::Map<String, serde_json::Value>,
    nest: bool,
) {
    use prost_reflect::{ReflectMessage, Value};
    for f in msg.descriptor().fields() {
        if !msg.has_field(&f) {
            continue;
        }
        let v = msg.get_field(&f);
        match v.as_ref() {
            Value::String(s) if TARGET_FIELDS.contains(&f.name()) && !s.is_empty() => {
                out.insert(format!("{prefix}{}", f.name()), serde_json::Value::String(s.clone()));
            }
            Value::List(items) if f.name() == "tags" && !items.is_empty() => {
                let tags = items.iter().filter_map(|v| v.as_str()).map(|t| serde_json::Value::String(t.to_string()));
                out.insert(format!("{prefix}tags"), serde_json::Value::Array(tags.collect()));
            }
            Value::Message(inner) if nest && NESTED_FIELDS.contains(&f.name()) => {
                collect_targets(inner, &format!("{}.", f.name()), out, false);
            }
            _ => {}
        }
    }
}

/// The layer: add with `Server::builder().layer(AuthLayer::new(state))`.
#[derive(Clone)]
pub struct AuthLayer(Arc<AuthState>);

impl AuthLayer {
    /// A layer sharing `state`.
    pub fn new(state: Arc<AuthState>) -> AuthLayer {
        AuthLayer(state)
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService { inner, state: Arc::clone(&self.0) }
    }
}

/// The service the layer wraps around the routes.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    state: Arc<AuthState>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<Body>> for AuthService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let path = req.uri().path().to_string();
        let (id, role) = self.state.caller(req.extensions());
        let need = required_role(&path);
        let allowed = role.is_some_and(|r| r >= need);
        if !allowed {
            let msg = match role {
                None => format!(
                    "permission denied: {id} has no role on this agent (map its CN, SAN or OU under [roles] \
                     in agentd's config)"
                ),
                Some(r) => {
                    format!("permission denied: role {} may not call {path} (needs {})", r.as_str(), need.as_str())
                }
            };
            tracing::warn!(peer = %id, method = %path, "{msg}");
            let state = Arc::clone(&self.state);
            // Read the first message anyway (bounded in size and time) so the audit line says
            // what was attempted.
            return Box::pin(async move {
                let frame = first_frame(req.into_body()).await;
                state.record(&id, role, &path, &frame, "PermissionDenied", &msg);
                Ok(tonic::Status::permission_denied(msg).into_http())
            });
        }
        let role = role.unwrap_or(Role::Viewer);
        let may_privileged = role == Role::Admin || (role == Role::Operator && self.state.allow_privileged_operator);
        req.extensions_mut().insert(Caller { identity: id.clone(), role, may_privileged });
        // The clone that was polled ready is the one to call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if !is_mutating(&path) || self.state.audit.is_none() {
            return Box::pin(inner.call(req));
        }
        let slot = Arc::new(Mutex::new(Vec::new()));
        let (parts, body) = req.into_parts();
        let tap = Tap { inner: body, buf: Vec::new(), slot: Arc::clone(&slot), done: false };
        let req = http::Request::from_parts(parts, Body::new(tap));
        let state = Arc::clone(&self.state);
        Box::pin(async move {
            let res = inner.call(req).await;
            let frame = move || match slot.lock() {
                Ok(mut s) => std::mem::take(&mut *s),
                Err(_) => Vec::new(),
            };
            match res {
                Ok(resp) => {
                    // The outcome is known when the response ends: in the headers of a
                    // trailers-only error, else in the trailers (a streaming call can fail
                    // after it started).
                    let header = status_of(resp.headers());
                    let on_end: OnEnd = Box::new(move |outcome: Option<(String, String)>| {
                        let (result, message) = outcome.or(header).unwrap_or_else(|| ("Ok".into(), String::new()));
                        state.record(&id, Some(role), &path, &frame(), &result, &message);
                    });
                    Ok(resp.map(|b| Body::new(Outcome::new(b, on_end))))
                }
                Err(e) => {
                    state.record(&id, Some(role), &path, &frame(), "Internal", "transport error");
                    Err(e)
                }
            }
        })
    }
}

/// The first gRPC frame of a body that will not be served: at most [`TAP_LIMIT`] bytes,
/// waiting at most a second.
async fn first_frame(body: Body) -> Vec<u8> {
    let slot = Arc::new(Mutex::new(Vec::new()));
    let mut tap = Tap { inner: body, buf: Vec::new(), slot: Arc::clone(&slot), done: false };
    let read = async {
        use http_body_util::BodyExt;
        while !tap.done {
            match tap.frame().await {
                Some(Ok(_)) => {}
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), read).await;
    let frame = match slot.lock() {
        Ok(mut s) => std::mem::take(&mut *s),
        Err(_) => Vec::new(),
    };
    frame
}

/// A request body that copies its first gRPC frame into `slot` as it passes.
struct Tap {
    inner: Body,
    buf: Vec<u8>,
    slot: Arc<Mutex<Vec<u8>>>,
    done: bool,
}

impl Tap {
    fn see(&mut self, data: &[u8]) {
        if self.done {
            return;
        }
        let room = TAP_LIMIT.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
        if self.buf.len() >= 5 {
            let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
            if self.buf.len() >= 5 + len || self.buf.len() >= TAP_LIMIT {
                self.done = true;
                if self.buf.len() >= 5 + len {
                    self.buf.truncate(5 + len);
                    if let Ok(mut s) = self.slot.lock() {
                        *s = std::mem::take(&mut self.buf);
                    }
                }
                self.buf = Vec::new();
            }
        }
    }
}

impl HttpBody for Tap {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r {
            if let Some(d) = f.data_ref() {
                let d = d.clone();
                this.see(&d);
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn target_names_the_fields_of_the_first_message() {
        let st = AuthState::new(RoleMap::default(), None, false);
        let req = agent_proto::v1::RemoveContainerRequest { id: "web".into(), force: true, remove_volumes: false };
        let mut frame = vec![0u8];
        frame.extend_from_slice(&(req.encoded_len() as u32).to_be_bytes());
        frame.extend_from_slice(&req.encode_to_vec());
        let t = st.target("/agent.v1.ContainerService/Remove", Some(&frame));
        assert_eq!(t.get("id").and_then(|v| v.as_str()), Some("web"));
        let spec = agent_proto::v1::ContainerSpec { name: "db".into(), image: "busybox".into(), ..Default::default() };
        let req = agent_proto::v1::CreateContainerRequest { spec: Some(spec) };
        let mut frame = vec![0u8];
        frame.extend_from_slice(&(req.encoded_len() as u32).to_be_bytes());
        frame.extend_from_slice(&req.encode_to_vec());
        let t = st.target("/agent.v1.ContainerService/Create", Some(&frame));
        assert_eq!(t.get("spec.name").and_then(|v| v.as_str()), Some("db"));
        assert_eq!(t.get("spec.image").and_then(|v| v.as_str()), Some("busybox"));
        // Garbage or truncated frames give no target, never a panic.
        assert!(st.target("/agent.v1.ContainerService/Create", Some(&frame[..3])).is_empty());
        assert!(st.target("/agent.v1.ContainerService/Create", Some(&[0, 0, 0, 0, 3, 0xff, 0xff, 0xff])).is_empty());
        assert!(st.target("nonsense", Some(&frame)).is_empty());
    }

    #[tokio::test]
    async fn first_frame_of_a_refused_body() {
        let mut bytes = vec![0u8, 0, 0, 0, 3, 1, 2, 3];
        bytes.extend_from_slice(&[0, 0, 0, 0, 1, 9]);
        let body = Body::new(http_body_util::Full::new(Bytes::from(bytes)));
        assert_eq!(first_frame(body).await, vec![0, 0, 0, 0, 3, 1, 2, 3]);
    }

    #[test]
    fn tap_keeps_only_a_whole_first_frame() {
        let slot = Arc::new(Mutex::new(Vec::new()));
        let mut t = Tap { inner: Body::empty(), buf: Vec::new(), slot: Arc::clone(&slot), done: false };
        t.see(&[0, 0, 0, 0, 2, b'a']);
        assert!(slot.lock().unwrap().is_empty());
        t.see(&[b'b', 0, 0, 0, 0, 9]);
        assert_eq!(*slot.lock().unwrap(), vec![0, 0, 0, 0, 2, b'a', b'b']);
        assert_eq!(crate::transport::outcome::percent_decode("no%20such%3A x%"), "no such: x%");
    }
}
