//! `gazette draft` and `gazette issues edit|approve|hold`: an issue made ahead for the editors,
//! and what they do to it from the command line. Each prints the `issues show` document.

use std::{path::Path, sync::Arc};

use tokio::io::AsyncReadExt;

use super::{Failure, Output, issues, setup};
use crate::{
    clock::{Clock, SystemClock},
    domain::Actor,
    review::{self, Drafted, Edit, ReviewError, mail::Occasion},
};

/// `gazette draft [--as-of T] [--edition NAME]`: the next issue (of that edition) as a draft,
/// mailed to `[review] editors`.
pub async fn draft(config: &Path, as_of: Option<&str>, edition: Option<&str>) -> Result<Output, Failure> {
    let publication = Arc::new(setup::publication(config).await?);
    let edition = setup::edition(&publication.config, edition)?;
    let as_of = setup::now(as_of, &publication)?;
    let store = setup::store(&publication.config).await?;
    let now = SystemClock.now();
    if let Some(open) = store.issue_in_review().await? {
        return Err(Failure::usage(format!(
            "issue #{n} is still {s}: approve it (`gazette issues approve {n}`), or cancel it, before drafting another",
            n = open.number,
            s = open.status
        )));
    }
    // The transport is checked before the draft is made, so that a draft is not left unmailed.
    let transport = publication.config.review.is_some().then(|| setup::transport(&publication.config));
    let transport = match transport {
        Some(t) => Some(t.await?),
        None => None,
    };
    let made = review::draft(&publication, &store, edition, as_of, None, None, &Actor::CommandLine, now)
        .await
        .map_err(failure)?;
    let record = match made {
        Drafted::Made(r) => *r,
        Drafted::Nothing(reason) => {
            return Ok(Output::new(
                format!("Nothing to draft: {reason}.\n"),
                serde_json::json!({ "issue": null, "reason": reason }),
            ));
        }
    };
    let site = &publication.config.publication;
    let mut header =
        format!("Issue #{} drafted; `gazette issues approve {}` sends it.\n", record.number, record.number);
    let mut warnings = Vec::new();
    match &transport {
        Some(t) => {
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            match review::mail::mail_editors(&publication, &record, t, clock, Occasion::Drafted).await {
                Ok(n) => header.push_str(&format!("Review copy mailed to {n} editor(s).\n")),
                Err(e) => warnings.push(format!("the review copy did not go out to every editor: {e}")),
            }
        }
        None => warnings.push("no [review] editors in gazette.toml: nobody was mailed the draft".into()),
    }
    let mut out = issues::show_output(&store, site, record.number, &header).await?;
    out.warnings = warnings;
    Ok(out)
}

/// `issues edit N`: the edit typed on the command line, applied at once.
pub async fn edit(
    config: &Path,
    number: u32,
    subject: Option<String>,
    intro: Option<&Path>,
    exclude: Vec<String>,
    order: Option<String>,
) -> Result<Output, Failure> {
    let publication = setup::publication(config).await?;
    let intro = match intro {
        Some(p) if p == Path::new("-") => {
            let mut text = String::new();
            tokio::io::stdin()
                .read_to_string(&mut text)
                .await
                .map_err(|e| Failure::usage(format!("--intro -: cannot read stdin: {e}")).field("--intro"))?;
            Some(text)
        }
        Some(p) => Some(
            tokio::fs::read_to_string(p)
                .await
                .map_err(|e| Failure::usage(format!("--intro {}: {e}", p.display())).field("--intro").file(p))?,
        ),
        None => None,
    };
    let order = order.map(|o| o.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect());
    let edit = Edit { subject, intro, exclude, include: Vec::new(), order };
    if edit == Edit::default() {
        return Err(Failure::usage("nothing to change: give --subject, --intro, --exclude or --order"));
    }
    let store = setup::store(&publication.config).await?;
    let record = review::edit(&publication, &store, number, &edit, &Actor::CommandLine, SystemClock.now())
        .await
        .map_err(failure)?;
    issues::show(&store, &publication.config.publication, record, &format!("Issue #{number} edited.\n")).await
}

/// `issues approve N`.
pub async fn approve(config: &Path, number: u32) -> Result<Output, Failure> {
    let publication = setup::publication(config).await?;
    let store = setup::store(&publication.config).await?;
    let record =
        review::approve(&publication, &store, number, &Actor::CommandLine, SystemClock.now()).await.map_err(failure)?;
    let header = match record.send_at {
        Some(at) if record.status == crate::domain::IssueStatus::Approved => {
            format!(
                "Issue #{number} approved; it goes out at its slot, {}.\n",
                at.with_timezone(&publication.config.publication.timezone).to_rfc3339()
            )
        }
        _ => format!(
            "Issue #{number} approved and queued: `gazette run` or `gazette worker` delivers it (or `gazette send --yes`).\n"
        ),
    };
    issues::show(&store, &publication.config.publication, record, &header).await
}

/// `issues hold N`.
pub async fn hold(config: &Path, number: u32) -> Result<Output, Failure> {
    let publication = setup::publication(config).await?;
    let store = setup::store(&publication.config).await?;
    let record =
        review::hold(&publication, &store, number, &Actor::CommandLine, SystemClock.now()).await.map_err(failure)?;
    let header = format!("Issue #{number} held: nothing sends it until `gazette issues approve {number}`.\n");
    issues::show(&store, &publication.config.publication, record, &header).await
}

/// A review error as the command line says it: a wrong state, an unknown issue or a bad edit is
/// the user's to fix (exit 2).
fn failure(e: ReviewError) -> Failure {
    match e {
        ReviewError::NotFound(_) | ReviewError::WrongState { .. } | ReviewError::BadEdit(_) => {
            Failure::usage(e.to_string())
        }
        ReviewError::Store(e) => e.into(),
        ReviewError::Render(e) => e.into(),
        ReviewError::Send(e) => e.into(),
    }
}
