//! Serving the router: HTTP/1.1 on our own accept loop (so that a client must send its headers
//! within `HEADER_TIMEOUT`, which `axum::serve` does not ask), the security headers, a time
//! limit per request, one log line per request (by route pattern, so that no token or address
//! in a path reaches the log), the client's address for the sign-up limit, and a graceful stop
//! that lets requests and the web's mail finish.
//!
//! What one client can hold is bounded: at most `MAX_CONNECTIONS` open at once, request headers
//! of `MAX_HEADER_BYTES` (more gets 431), and bodies (`web::router`). A connection that is not
//! answering a request (it has yet to send one, or waits between two) is idle; at the limit, a
//! new connection takes the place of the one idle the longest, so idle connections, however
//! many, cannot keep `/healthz` or a reader out. Only when every connection is busy answering
//! does a new one wait for a place.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, MatchedPath},
    http::{Request, Response, StatusCode},
    middleware,
};
use hyper::{
    body::{Frame, Incoming, SizeHint},
    server::conn::http1,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::TcpListener,
    sync::{Notify, OwnedSemaphorePermit, Semaphore, watch},
};
use tower::ServiceExt;
use tower_http::{
    timeout::TimeoutLayer,
    trace::{DefaultOnFailure, DefaultOnRequest, TraceLayer},
};
use tracing::{Level, debug, info, info_span, warn};

use super::{AppState, router, security};

/// The longest a request may take (a slow client or a stalled store): then 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a client may take to send a request's headers, and how long a connection may wait
/// for its next request.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once. Readers come through a reverse proxy that reuses its connections,
/// or for one page each: a few hundred is far beyond a publication's traffic, and well under a
/// process's usual 1024 file descriptors, which the store and the mail also need.
pub const MAX_CONNECTIONS: usize = 256;
/// The most bytes of a request's start line and headers. gazette sets no cookies, so a
/// browser's request is 1 or 2 KiB, a proxy's additions included.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How long a stopping server waits for the requests in progress.
const DRAIN: Duration = Duration::from_secs(20);
/// How long a connection closed to make room may take to finish writing its last answer.
const EVICTION_GRACE: Duration = Duration::from_secs(1);
/// How often a new connection waiting for a place looks again for an idle one to replace.
const ROOM_CHECK: Duration = Duration::from_millis(50);
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

/// What the server holds open at most, and for how long; the constants above, smaller in tests.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_connections: usize,
    header_timeout: Duration,
    max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_connections: MAX_CONNECTIONS, header_timeout: HEADER_TIMEOUT, max_header_bytes: MAX_HEADER_BYTES }
    }
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
    run(app(state), listener, shutdown, Limits::default()).await;
    postman.finish(MAIL_GRACE).await;
    Ok(())
}

/// The accept loop: each connection gets a place among `limits.max_connections` (see
/// [`Connections::admit`]) and a task of its own, until `shutdown`; then the connections are
/// asked to finish, and given [`DRAIN`] to.
async fn run(app: Router, listener: TcpListener, shutdown: impl Future<Output = ()>, limits: Limits) {
    let mut http = http1::Builder::new();
    // A client gets this long to send a request's headers, so that slow ones cannot hold
    // connections open for ever; the same timer closes a kept-alive connection left idle.
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    let connections = Connections::new(limits.max_connections);
    let (stop, stopping) = watch::channel(false);
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
        let place = tokio::select! {
            place = connections.admit() => place,
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tracked = Arc::clone(&place.connection);
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let busy = Busy::start(&tracked);
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await?;
                Ok::<_, Infallible>(response.map(|body| Body::new(Answering { body, _busy: busy })))
            }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(serve_connection(connection, place, stopping.clone()));
    }
    drop(listener);
    let _ = stop.send(true);
    if tokio::time::timeout(DRAIN, connections.all_closed()).await.is_err() {
        warn!("stopped with requests still open after {DRAIN:?}");
    }
}

/// Drives one connection until it ends, or until it is asked to close (to make room, or
/// because the server stops): then it finishes the answer in progress, if any, within a grace.
async fn serve_connection<C>(connection: C, place: Place, mut stopping: watch::Receiver<bool>)
where
    C: Future<Output = Result<(), hyper::Error>> + GracefulClose,
{
    let mut connection = std::pin::pin!(connection);
    let grace = tokio::select! {
        ended = connection.as_mut() => return log_end(ended),
        () = place.connection.close.notified() => {
            if !place.connection.asked_anything.load(Ordering::Acquire) {
                // Never sent a whole request: nothing of it is in flight, and dropping it is
                // the only way to close one that sent part of its headers.
                return;
            }
            EVICTION_GRACE
        }
        _ = stopping.wait_for(|stop| *stop) => DRAIN,
    };
    connection.as_mut().close_gracefully();
    match tokio::time::timeout(grace, connection).await {
        Ok(ended) => log_end(ended),
        Err(_) => debug!("connection closed before its last answer was written"),
    }
}

fn log_end(ended: Result<(), hyper::Error>) {
    if let Err(e) = ended {
        debug!(error = %e, "connection ended with an error");
    }
}

/// A connection that can be asked to finish the request in progress and close.
trait GracefulClose {
    fn close_gracefully(self: Pin<&mut Self>);
}

impl<I, B, S> GracefulClose for http1::Connection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn close_gracefully(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// The open connections: a place each, out of a fixed number, and what each is doing.
struct Connections {
    places: Arc<Semaphore>,
    max: u32,
    /// By a number given in order of arrival.
    open: Mutex<BTreeMap<u64, Arc<Connection>>>,
    next: AtomicU64,
    /// Idle times are kept as milliseconds since this.
    epoch: Instant,
}

/// One open connection, as the accept loop sees it.
struct Connection {
    /// Answering a request (from its headers until its answer's body has been handed over).
    busy: AtomicBool,
    /// Has sent at least one whole request.
    asked_anything: AtomicBool,
    /// When it last became idle (or opened), in milliseconds since [`Connections::epoch`].
    idle_since: AtomicU64,
    /// Already asked to make room.
    closing: AtomicBool,
    close: Notify,
    epoch: Instant,
}

impl Connection {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A connection's place, given back when its task ends.
struct Place {
    connections: Arc<Connections>,
    id: u64,
    connection: Arc<Connection>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.connections.open.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

impl Connections {
    fn new(max: usize) -> Arc<Self> {
        let max = u32::try_from(max.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
        Arc::new(Self {
            places: Arc::new(Semaphore::new(max as usize)),
            max,
            open: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// A place for a new connection: a free one, else the place of the connection idle the
    /// longest, once it has closed. While every connection is busy, it waits.
    async fn admit(self: &Arc<Self>) -> Place {
        loop {
            if let Ok(permit) = Arc::clone(&self.places).try_acquire_owned() {
                return self.place(permit);
            }
            self.make_room();
            tokio::select! {
                permit = Arc::clone(&self.places).acquire_owned() => {
                    if let Ok(permit) = permit {
                        return self.place(permit);
                    }
                }
                () = tokio::time::sleep(ROOM_CHECK) => {}
            }
        }
    }

    fn place(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Place {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            busy: AtomicBool::new(false),
            asked_anything: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            close: Notify::new(),
            epoch: self.epoch,
        });
        connection.idle_since.store(connection.now(), Ordering::Release);
        self.open.lock().unwrap_or_else(PoisonError::into_inner).insert(id, Arc::clone(&connection));
        Place { connections: Arc::clone(self), id, connection, _permit: permit }
    }

    /// Asks the connection idle the longest to close, unless one asked already is still
    /// closing: one place is all a new connection needs.
    fn make_room(&self) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.values().any(|c| c.closing.load(Ordering::Acquire)) {
            return;
        }
        let idlest = open
            .values()
            .filter(|c| !c.busy.load(Ordering::Acquire))
            .min_by_key(|c| c.idle_since.load(Ordering::Acquire));
        if let Some(c) = idlest {
            debug!("at {} connections: closing the one idle the longest", self.max);
            c.closing.store(true, Ordering::Release);
            c.close.notify_one();
        }
    }

    /// Completes once every place has been given back.
    async fn all_closed(&self) {
        let _ = self.places.acquire_many(self.max).await;
    }
}

/// A request being answered on a connection: busy from its headers until its answer's body has
/// been handed over, then idle again.
struct Busy(Arc<Connection>);

impl Busy {
    fn start(connection: &Arc<Connection>) -> Self {
        connection.asked_anything.store(true, Ordering::Release);
        connection.busy.store(true, Ordering::Release);
        Self(Arc::clone(connection))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.idle_since.store(self.0.now(), Ordering::Release);
        self.0.busy.store(false, Ordering::Release);
    }
}

/// An answer's body that keeps its connection busy until hyper has taken all of it.
struct Answering {
    body: Body,
    _busy: Busy,
}

impl hyper::body::Body for Answering {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
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
                .on_response(|response: &Response<Body>, latency: Duration, _: &tracing::Span| {
                    info!(status = response.status().as_u16(), ms = latency.as_millis() as u64, "answered");
                })
                .on_failure(DefaultOnFailure::new().level(Level::WARN)),
        )
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(middleware::from_fn(security::headers))
}

#[cfg(test)]
mod tests;
