//! The accept loop: HTTP/1.1 connections with the timeouts `axum::serve`
//! leaves out. axum gives hyper no timer, so hyper's header-read timeout
//! never fires, and a client that trickles its request head holds a
//! connection (a socket and a task) forever, before any authentication.

use std::future::Future;
use std::time::Duration;

use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

/// How long a connection may keep the server waiting.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// From when the server waits for a request until its whole head has
    /// arrived. hyper starts this wait as soon as a response is sent, so it
    /// also closes keep-alive connections left idle this long.
    pub header_read: Duration,
    /// The longest pause while a request body is arriving. The request
    /// gets a 408 problem; a body that keeps arriving is not cut here (an
    /// import's file has its own deadline).
    pub body_idle: Duration,
    /// After the shutdown signal, how long requests in progress may run.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self { header_read: Duration::from_secs(30), body_idle: Duration::from_secs(30), shutdown_grace: Duration::from_secs(30) }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the
/// requests in progress finish (up to `limits.shutdown_grace`).
///
/// HTTP/1.1 only: every timeout here is HTTP/1's; browsers speak HTTP/2
/// only over TLS, which a proxy in front of the service terminates.
pub async fn serve(listener: TcpListener, app: Router, limits: ConnectionLimits, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read);
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    pause_after(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small responses (problems, JSON pages) go out at once.
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let request = request.map(|body| axum::body::Body::new(TimeoutBody::new(limits.body_idle, body)));
            app.clone().oneshot(request)
        });
        let connection = connections.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, connections.shutdown()).await.is_err() {
        tracing::warn!(grace = ?limits.shutdown_grace, "requests still in progress at shutdown were cut");
    }
    Ok(())
}

/// A failed accept. A connection reset before it was taken concerns only
/// that client. Anything else, such as running out of file descriptors,
/// would fail again at once: wait a moment for connections to close.
async fn pause_after(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
