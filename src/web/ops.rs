//! What operators ask of a running server: `GET /healthz` (is the store answering?) and
//! `GET /metrics` (Prometheus's text format), and the middleware that counts every web request
//! by route pattern and status: [`track_requests`]. Neither route shows an address or a token.
//! `/metrics` answers only a caller with `$GAZETTE_METRICS_TOKEN` or `$GAZETTE_ADMIN_TOKEN`:
//! its figures move with sign-ups and bounces, so they would tell a stranger whether an address
//! is known. Without either variable it is not there at all (404).

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};

use super::AppState;
use crate::{metrics, store::Store};

/// How long the store may take to answer a health check before the server counts as unhealthy.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// Gauges counted from the store are refreshed at most this often: counting a million
/// subscribers on every scrape would cost more than the scrape.
const GAUGE_REFRESH: Duration = Duration::from_secs(30);

/// When the store-counted gauges were last refreshed (or a refresh started).
static LAST_REFRESH: Mutex<Option<Instant>> = Mutex::new(None);

pub fn routes() -> Router<AppState> {
    // Serving metrics means recording them: the recorder is installed with the routes.
    metrics::install();
    Router::new().route("/healthz", get(healthz)).route("/metrics", get(prometheus))
}

async fn healthz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(HEALTH_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "the store does not answer\n").into_response()
        }
        Err(_) => {
            tracing::warn!("health check: the store took longer than {HEALTH_TIMEOUT:?}");
            (StatusCode::SERVICE_UNAVAILABLE, "the store does not answer in time\n").into_response()
        }
    }
}

async fn prometheus(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.tokens.metrics_on() {
        return super::not_found(State(state)).await;
    }
    if !state.tokens.admits_metrics(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"gazette\"")],
            "send Authorization: Bearer $GAZETTE_METRICS_TOKEN (or the admin token)\n",
        )
            .into_response();
    }
    let Some(handle) = metrics::install() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "metrics are off in this process\n").into_response();
    };
    refresh_gauges(&state.store).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}

/// Recounts subscribers and issues by status, and the ledger's deliveries, if the last count is
/// older than [`GAUGE_REFRESH`]; a scrape that comes while another is counting shows the last
/// count. The ledger is counted here rather than added up as this process records outcomes,
/// since `gazette worker` processes send too and serve no metrics of their own.
async fn refresh_gauges(store: &Store) {
    let due = match LAST_REFRESH.lock() {
        Ok(mut last) => {
            let due = last.is_none_or(|at| at.elapsed() >= GAUGE_REFRESH);
            if due {
                *last = Some(Instant::now());
            }
            due
        }
        Err(_) => false,
    };
    if !due {
        return;
    }
    match store.status_counts().await {
        Ok(counts) => metrics::subscribers(&counts),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count subscribers"),
    }
    match store.issue_status_counts().await {
        Ok(counts) => metrics::issues(&counts),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count issues"),
    }
    match store.ledger_counts().await {
        Ok(counts) => metrics::ledger(counts.iter()),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count deliveries"),
    }
    match store.bounce_kind_counts().await {
        Ok(counts) => metrics::bounces(&counts),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count bounces"),
    }
}

/// Counts each request by the route pattern it matched (`/archive/{number}`, never the path a
/// visitor typed, so neither tokens nor addresses become labels), its method and its status.
/// It needs the matched route, so it goes on the router itself (`web::router` adds it), inside
/// any layer the server wraps around the whole; requests no route matched count as `unmatched`.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = request.method().clone();
    let response = next.run(request).await;
    // Methods outside the usual few are folded into one label: a client picks the method.
    let method = match method.as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
        _ => "other",
    };
    metrics::http_request(&route, method, response.status().as_u16(), started.elapsed());
    response
}
