//! The words of the product as types: what a user types or a source yields is parsed into these
//! once, at the edge, and the core never sees raw strings. Nothing here does I/O.

mod actor;
mod article;
mod choice;
mod delivery;
mod duration;
mod email;
mod list_name;
mod message_id;
mod name;
mod rate;
mod return_path;
mod role;
mod safe_html;
mod share;
mod status;

pub use actor::Actor;
pub use article::{Article, ArticleImage};
pub use choice::{ChoiceName, ChoiceNameError, EditionName, TopicName};
pub use delivery::{Claimed, Outcome};
pub use duration::{Duration, DurationError, took};
pub use email::{EmailAddress, EmailAddressError};
pub use list_name::{ListName, ListNameError};
pub use message_id::{MessageId, MessageIdError};
pub use name::{MAX_NAME_CHARS, SubscriberName, TextError, for_terminal, printable_line};
pub use rate::{Rate, RateError, RateValue, readable_rate, throughput};
pub use return_path::{ReturnPath, ReturnPathError};
pub use role::{Role, UnknownRole};
pub use safe_html::SafeHtml;
pub use share::{RateLimits, Share, ShareError};
pub use status::{BounceKind, DeliveryState, IssueStatus, ReportKind, SubscriberStatus, UnknownState};
