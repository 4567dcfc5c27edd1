//! Serving the router: HTTP/1.1 on our own accept loop (so that a client must send its headers
//! within `HEADER_TIMEOUT`, which `axum::serve` does not ask), the security headers, a time
//! limit per request, one log line per request (by route pattern, so that no token or address
//! in a path reaches the log), the client's address for the sign-up limit, and a graceful stop
//! that lets requests and the web's mail finish.

use std::{future::Future, net::SocketAddr, time::Duration};

use axum::{
    body::Body,
    extract::{ConnectInfo, MatchedPath},
    http::{Request, StatusCode},
    middleware,
};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::{
    timeout::TimeoutLayer,
    trace::{DefaultOnFailure, DefaultOnRequest, TraceLayer},
};
use tracing::{Level, debug, info, info_span, warn};

use super::{AppState, router, security};

/// The longest a request may take (a slow client or a stalled store): then 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping server waits for the requests in progress.
const DRAIN: Duration = Duration::from_secs(20);
/// How long a stopping server waits for the web's mail in flight.
const MAIL_GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}; choose another address with [web] listen or --listen")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the web server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// Binds `addr`, for `serve`. Separate, so a caller can report the bound address (port 0).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })
}

/// Serves the web on `listener` until `shutdown` completes, then lets the requests in progress
/// and the mail being sent finish.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let postman = state.postman.clone();
    let app = app(state);
    let mut http = http1::Builder::new();
    // A client gets this long to send a request's headers, so that slow ones cannot hold
    // connections open for ever.
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: wait a moment rather than spin.
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = app.clone().map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        warn!("stopped with requests still open after {DRAIN:?}");
    }
    postman.finish(MAIL_GRACE).await;
    Ok(())
}

/// The router with what every request goes through: the log line, the time limit, the headers.
fn app(state: AppState) -> axum::Router {
    router(state)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<Body>| {
                    // The route's pattern (`/confirm/{token}`), never the path itself.
                    let route = request.extensions().get::<MatchedPath>().map_or("(no route)", MatchedPath::as_str);
                    info_span!("request", method = %request.method(), route)
                })
                .on_request(DefaultOnRequest::new().level(Level::DEBUG))
                .on_response(|response: &axum::response::Response, latency: Duration, _: &tracing::Span| {
                    info!(status = response.status().as_u16(), ms = latency.as_millis() as u64, "answered");
                })
                .on_failure(DefaultOnFailure::new().level(Level::WARN)),
        )
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(middleware::from_fn(security::headers))
}
