//! `gazette serve`: the web alone, on `[web] listen` or `--listen`, until SIGINT/SIGTERM. It
//! prints `listening on http://ADDR` once bound (with port 0, the port the system chose).

use std::{net::SocketAddr, path::Path, sync::Arc};

use serde_json::json;
use tracing::info;

use super::{Failure, Output, setup};
use crate::{
    clock::{Clock, SystemClock},
    publication::Publication,
    store::Store,
    web::{
        self, AppState,
        access::AccessTokens,
        webhooks::{WebhookVars, Webhooks, sns_client_builder},
    },
};

pub async fn run(config: &Path, listen: Option<&str>) -> Result<Output, Failure> {
    let tokens = access_tokens()?;
    let publication = Arc::new(setup::publication(config).await?);
    let addr = listen_addr(&publication, listen)?;
    let store = setup::store(&publication.config).await?;
    let listener = web::server::bind(addr).await.map_err(|e| Failure::unfinished(e.to_string()).field("web.listen"))?;
    let state = state(publication, store, tokens).await?;
    announce(&listener);
    web::serve(state, listener, super::signals::wait_for_signal())
        .await
        .map_err(|e| Failure::unfinished(e.to_string()))?;
    Ok(Output::new(String::new(), json!({ "stopped": true })))
}

/// `--listen`, else `[web] listen`.
pub(super) fn listen_addr(publication: &Publication, listen: Option<&str>) -> Result<SocketAddr, Failure> {
    match listen {
        Some(l) => l.parse().map_err(|_| {
            Failure::usage(format!("--listen {l}: write an address and port, like 127.0.0.1:8080")).field("--listen")
        }),
        None => Ok(publication.config.web.listen),
    }
}

/// The web's tokens from the environment, read before anything starts: a token too short to
/// guard anything stops `serve` and `run` (exit 2).
pub(super) fn access_tokens() -> Result<AccessTokens, Failure> {
    let tokens = AccessTokens::from_env().map_err(|e| Failure::usage(e.to_string()).field(e.variable()))?;
    if tokens.admin.is_none() {
        tracing::warn!("GAZETTE_ADMIN_TOKEN is not set: the admin API (/api/) is off and answers 401");
    }
    if !tokens.metrics_on() {
        tracing::warn!("neither GAZETTE_METRICS_TOKEN nor GAZETTE_ADMIN_TOKEN is set: /metrics is off (404)");
    }
    Ok(tokens)
}

/// The providers' webhooks the environment turns on: a value that cannot be used stops `serve`
/// and `run` (exit 2), naming the variable.
fn webhooks() -> Result<Webhooks, Failure> {
    let client = sns_client_builder()
        .build()
        .map_err(|e| Failure::unfinished(format!("cannot set up the https client for SNS: {e}")))?;
    let webhooks = Webhooks::new(WebhookVars::from_process(), client)
        .map_err(|e| Failure::usage(e.to_string()).field(e.variable()))?;
    let on = webhooks.providers();
    if !on.is_empty() {
        let names: Vec<&str> = on.iter().map(|p| p.as_str()).collect();
        info!(providers = %names.join(", "), "webhooks on");
    }
    Ok(webhooks)
}

/// What the web's handlers share, for `serve` and `run`.
pub(super) async fn state(
    publication: Arc<Publication>,
    store: Store,
    tokens: AccessTokens,
) -> Result<AppState, Failure> {
    let webhooks = webhooks()?;
    let transport = Arc::new(setup::transport(&publication.config).await?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = AppState::new(publication, store, transport, clock).await.map_err(|e| match &e {
        web::views::ViewError::Read { file, .. } | web::views::ViewError::Syntax { file, .. } => {
            Failure::usage(e.to_string()).file(file.clone())
        }
        web::views::ViewError::Render { .. } => Failure::usage(e.to_string()),
    })?;
    Ok(state.with_tokens(tokens).with_webhooks(webhooks))
}

/// Says where the web is, on stderr (stdout is kept for the one document `--json` prints).
pub(super) fn announce(listener: &tokio::net::TcpListener) {
    if let Ok(addr) = listener.local_addr() {
        eprintln!("listening on http://{addr}");
        info!(%addr, "web server started");
    }
}
