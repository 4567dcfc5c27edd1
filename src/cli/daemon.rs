//! `gazette run` and `gazette worker`. `run` serves the web and reads `[bounces] maildir` and
//! `imap_url` beside the scheduler and the workers; one stop request (SIGINT/SIGTERM) stops them
//! all. A worker only delivers.

use std::{path::Path, sync::Arc};

use serde_json::json;
use tracing::{error, info, warn};

use tokio::task::JoinHandle;

use super::{Failure, Output, setup};
use crate::{
    bounces::watch::{Context, Watch},
    clock::{Clock, SystemClock},
    daemon::{self, Roles},
    deliver::Stop,
    publication::Publication,
    store::Store,
    web::{self, ServeError, access::AccessTokens},
};

pub async fn run(config: &Path, scheduler: bool, listen: Option<&str>) -> Result<Output, Failure> {
    // Only `run` serves the web; a worker has no use for its tokens.
    let tokens = if scheduler { Some(super::serve::access_tokens()?) } else { None };
    let publication = Arc::new(setup::publication(config).await?);
    if scheduler && crate::daemon::Timetable::all(&publication.config).is_empty() {
        let (why, field) = if publication.config.editions.is_empty() {
            ("no [schedule]; add one (cron = \"0 0 9 * * Mon\")", "schedule")
        } else {
            ("no [[edition]] has a cron; give one a cron (cron = \"0 0 9 * * Mon\")", "edition.cron")
        };
        return Err(Failure::usage(format!(
            "{}: {why} or run `gazette worker` for delivery alone",
            publication.config.file.display()
        ))
        .field(field));
    }
    let store = setup::store(&publication.config).await?;
    let transport = setup::transport(&publication.config).await?;
    // Only `run` reads bounces: one process per publication usually runs it, and another that
    // does too only reads the same reports again, which applies nothing twice.
    let watch = if scheduler {
        Watch::new(&publication.config.bounces)
            .await
            .map_err(|e| Failure::usage(e.to_string()).field("bounces.imap_ca_file"))?
    } else {
        None
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (stop_tx, stop) = Stop::new();
    let stop_tx = Arc::new(stop_tx);
    let signals = {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            super::signals::wait_for_signal().await;
            info!("stopping: letting messages in flight finish");
            let _ = stop_tx.send(true);
        })
    };
    let web = match tokens {
        Some(tokens) => start_web(&publication, &store, tokens, listen, stop.clone()).await?,
        None => None,
    };
    let bounces = watch.map(|watch| {
        let cx = Context {
            store: store.clone(),
            signer: publication.signer.clone(),
            settings: publication.config.bounces.clone(),
            clock: Arc::clone(&clock),
        };
        let stop = stop.clone();
        tokio::spawn(async move { watch.run(cx, stop).await })
    });
    let roles = Roles { scheduler, workers: true };
    let result = daemon::run(publication, store, transport, clock, stop, roles).await;
    // Whatever ended the daemon ends the web and the bounce reading too.
    let _ = stop_tx.send(true);
    if let Some(bounces) = bounces
        && let Err(e) = bounces.await
    {
        warn!("the reading of bounces stopped abnormally: {e}");
    }
    if let Some(web) = web {
        match web.await {
            Ok(Err(e)) => warn!("{e}"),
            Err(e) => warn!("the web server stopped abnormally: {e}"),
            Ok(Ok(())) => {}
        }
    }
    signals.abort();
    result?;
    Ok(Output::new(String::new(), json!({ "stopped": true })))
}

/// Starts the web server of `gazette run`. An address that cannot be bound stops `run` when it
/// was asked for with `--listen`; from `[web] listen` it is logged and delivery goes on: the
/// issues must not wait for a free port.
async fn start_web(
    publication: &Arc<Publication>,
    store: &Store,
    tokens: AccessTokens,
    listen: Option<&str>,
    mut stop: Stop,
) -> Result<Option<JoinHandle<Result<(), ServeError>>>, Failure> {
    let addr = super::serve::listen_addr(publication, listen)?;
    let listener = match web::server::bind(addr).await {
        Ok(l) => l,
        Err(e) if listen.is_some() => return Err(Failure::unfinished(e.to_string()).field("--listen")),
        Err(e) => {
            error!("the web server is not running: {e}");
            return Ok(None);
        }
    };
    let state = super::serve::state(publication.clone(), store.clone(), tokens).await?;
    super::serve::announce(&listener);
    Ok(Some(tokio::spawn(web::serve(state, listener, async move { stop.wait().await }))))
}
