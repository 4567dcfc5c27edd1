//! From articles to messages: which articles the next issue carries (`selection`), the tera
//! templates and their context (`templates`, `context`), the issue rendered once and filled in
//! per subscriber (`render`, `personalize`), the plain-text layout (`text`) and the MIME message
//! (`message`). It reads no source, opens no database and speaks no SMTP: callers hand it
//! articles, the history of past issues and subscribers.

pub mod context;
pub mod headers;
pub mod message;
pub mod personalize;
pub mod qp;
pub mod render;
pub mod selection;
pub mod templates;
pub mod text;

pub use message::{MessageError, MessageSettings};
pub use personalize::{HtmlPart, Letter, PreparedIssue, Recipient};
pub use render::{RenderError, RenderedIssue};
pub use selection::{LeftOut, Reason, Selected, select};
pub use templates::{TemplateError, TemplateSet};

/// Gmail clips a message whose HTML is larger than this; `check` and `preview` warn before it.
pub const GMAIL_CLIP_BYTES: usize = 102 * 1024;
