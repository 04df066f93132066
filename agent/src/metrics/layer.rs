//! The tower layer that times and counts every gRPC call (outermost, so refused calls count
//! too). A call ends when its response body ends: the status is then in the trailers, or in
//! the headers of a trailers-only response.

use super::Metrics;
use crate::transport::outcome::{status_of, OnEnd, Outcome};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::body::Body;

/// Adds [`MetricsService`] around the routes.
#[derive(Clone)]
pub struct MetricsLayer(Option<Arc<Metrics>>);

impl MetricsLayer {
    /// With `None` the layer passes calls through untouched (no `--metrics-listen`).
    pub fn new(metrics: Option<Arc<Metrics>>) -> MetricsLayer {
        MetricsLayer(metrics)
    }
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;
    fn layer(&self, inner: S) -> MetricsService<S> {
        MetricsService { inner, metrics: self.0.clone() }
    }
}

/// Times the calls of `inner`.
#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Option<Arc<Metrics>>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<Body>> for MetricsService<S>
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

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(metrics) = self.metrics.clone() else {
            return Box::pin(inner.call(req));
        };
        let path = req.uri().path().to_string();
        let t0 = Instant::now();
        Box::pin(async move {
            match inner.call(req).await {
                Ok(resp) => {
                    let header = status_of(resp.headers());
                    let on_end: OnEnd = Box::new(move |outcome: Option<(String, String)>| {
                        let code = outcome.or(header).map(|(c, _)| c).unwrap_or_else(|| "Ok".into());
                        metrics.observe_rpc(&path, &code, t0.elapsed().as_secs_f64());
                    });
                    Ok(resp.map(|b| Body::new(Outcome::new(b, on_end))))
                }
                Err(e) => {
                    metrics.observe_rpc(&path, "Internal", t0.elapsed().as_secs_f64());
                    Err(e)
                }
            }
        })
    }
}
