//! The mail editors get: the draft as readers will see it, sent as a test copy is (its envelope
//! sender marks it as one, and no delivery records it), marked as a review copy with a link to
//! where it is reviewed; and the same when a draft was held at its slot for want of approval.

use std::sync::Arc;

use crate::{
    clock::Clock,
    deliver::{DeliverError, Transport},
    issue::{IssueError, IssueLetters},
    publication::Publication,
    store::IssueRecord,
};

use super::{ReviewError, review_link};

/// Why the editors get a mail about an issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occasion {
    /// A draft was made and waits for review.
    Drafted,
    /// Its send time came without an approval: it is held.
    Held,
}

impl Occasion {
    fn note(self, number: u32) -> String {
        match self {
            Self::Drafted => format!("Review copy of issue {number}: review, edit and approve it before it goes out."),
            Self::Held => {
                format!("Issue {number} was not approved by its send time and is held: approve it to send it at once.")
            }
        }
    }
}

/// Mails `issue` to each of `[review] editors` for `occasion`; nothing without `[review]`.
/// Every editor is tried; the first failure is returned.
pub async fn mail_editors(
    publication: &Arc<Publication>,
    issue: &IssueRecord,
    transport: &Transport,
    clock: Arc<dyn Clock>,
    occasion: Occasion,
) -> Result<usize, ReviewError> {
    let Some(review) = &publication.config.review else { return Ok(0) };
    transport.check().await.map_err(|e| IssueError::from(DeliverError::Server(e.reply)))?;
    let letters = IssueLetters::new(Arc::clone(publication), issue, clock)?;
    let note = occasion.note(issue.number);
    let link = review_link(publication, issue.number);
    let mut first_error = None;
    let mut sent = 0;
    for editor in &review.editors {
        let (message, id) = letters.review_copy_for(editor.clone(), &note, &link).map_err(IssueError::Compose)?;
        match transport.send(message, &id).await {
            Ok(_) => sent += 1,
            Err(e) => {
                first_error.get_or_insert(IssueError::TestCopy {
                    to: editor.clone(),
                    refused: e.kind.is_final(),
                    reply: e.reply,
                });
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(sent),
    }
}
