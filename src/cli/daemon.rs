//! `gazette run` and `gazette worker`.

use std::{path::Path, sync::Arc};

use serde_json::json;
use tracing::info;

use super::{Failure, Output, setup};
use crate::{
    clock::{Clock, SystemClock},
    daemon::{self, Roles},
    deliver::Stop,
    issue,
};

pub async fn run(config: &Path, scheduler: bool) -> Result<Output, Failure> {
    let publication = Arc::new(setup::publication(config).await?);
    if scheduler && publication.config.schedule.is_none() {
        return Err(Failure::usage(format!(
            "{}: no [schedule]; add one (cron = \"0 0 9 * * Mon\") or run `gazette worker` for delivery alone",
            publication.config.file.display()
        ))
        .field("schedule"));
    }
    let store = issue::open_store(&publication.config).await.map_err(Failure::from)?;
    let transport = issue::transport(&publication.config).await?;
    let (stop_tx, stop) = Stop::new();
    let signals = tokio::spawn(async move {
        super::send::wait_for_signal().await;
        info!("stopping: letting messages in flight finish");
        let _ = stop_tx.send(true);
    });
    if let Some(s) = &publication.config.schedule {
        let tz = publication.config.publication.timezone;
        let next = crate::schedule::next_slots(&s.cron, tz, SystemClock.now(), 1);
        if let Some(n) = next.first() {
            info!(next = %n.at.with_timezone(&tz), "scheduler started ({})", s.expression);
        }
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let roles = Roles { scheduler, workers: true };
    let result = daemon::run(publication, store, transport, clock, stop, roles).await;
    signals.abort();
    result?;
    Ok(Output::new(String::new(), json!({ "stopped": true })))
}
