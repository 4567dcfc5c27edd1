//! Why a command stopped, in the shape docs/src/commands.md gives errors: a message, the file,
//! line and field at fault, and the exit code (1: could not finish, the same command resumes;
//! 2: bad usage, config, template or input, nothing changed).

use std::path::PathBuf;

use serde::Serialize;

use crate::{
    bounces::BounceError,
    compose::{RenderError, TemplateError},
    config::ConfigError,
    deliver::DeliverError,
    issue::IssueError,
    publication::PublicationError,
    setup::SetupError,
    sources::SourceError,
    store::StoreError,
    subscribers::{Field, SubscriberError},
};

#[derive(Debug, Serialize)]
pub struct Failure {
    #[serde(skip)]
    pub exit_code: u8,
    pub message: String,
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub field: Option<String>,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Self { exit_code: 2, message: message.into(), file: None, line: None, field: None }
    }

    pub fn unfinished(message: impl Into<String>) -> Self {
        Self { exit_code: 1, ..Self::usage(message) }
    }

    pub fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    pub fn file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Self {
            exit_code: 2,
            message: e.to_string(),
            file: Some(e.file().to_owned()),
            line: e.line(),
            field: e.field().map(str::to_owned),
        }
    }
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Self {
        let exit_code = if e.is_unreachable() { 1 } else { 2 };
        Self { exit_code, ..Self::usage(e.to_string()) }
    }
}

impl From<TemplateError> for Failure {
    fn from(e: TemplateError) -> Self {
        let (file, line, field) = match &e {
            TemplateError::Read { file, .. } => (Some(file.clone()), None, None),
            TemplateError::Syntax { file, line, .. } => (Some(file.clone()), *line, None),
            TemplateError::Subject { .. } => (None, None, Some("publication.subject".to_owned())),
        };
        Self { exit_code: 2, message: e.to_string(), file, line, field }
    }
}

impl From<RenderError> for Failure {
    fn from(e: RenderError) -> Self {
        let file = match &e {
            RenderError::Template { file, .. } | RenderError::Inline { file, .. } => Some(file.clone()),
            RenderError::EmptySubject => None,
        };
        Self { exit_code: 2, message: e.to_string(), file, line: None, field: None }
    }
}

impl From<PublicationError> for Failure {
    fn from(e: PublicationError) -> Self {
        match e {
            PublicationError::Source(e) => e.into(),
            PublicationError::Template(e) => e.into(),
            PublicationError::Render(e) => e.into(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        let code = match e {
            StoreError::Unsupported(_) => 2,
            _ => 1,
        };
        Self { exit_code: code, ..Self::usage(e.to_string()) }.field("storage.database_url")
    }
}

impl From<BounceError> for Failure {
    fn from(e: BounceError) -> Self {
        match e {
            BounceError::Store(e) => e.into(),
            BounceError::Read { ref path, .. } | BounceError::NotMaildir(ref path) => {
                Self::usage(e.to_string()).file(path.clone())
            }
            // What was read is applied: the same command reads the rest, and nothing twice.
            BounceError::Move { ref path, .. } => Self::unfinished(e.to_string()).file(path.clone()),
        }
    }
}

impl From<DeliverError> for Failure {
    fn from(e: DeliverError) -> Self {
        let field = match e {
            DeliverError::Setup(_) => Some("delivery".to_owned()),
            _ => None,
        };
        Self { exit_code: 1, field, ..Self::usage(e.to_string()) }
    }
}

impl From<IssueError> for Failure {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Store(e) => e.into(),
            IssueError::Source(e) => e.into(),
            IssueError::Publication(e) => e.into(),
            IssueError::Deliver(e) => e.into(),
            IssueError::Compose(m) => Self::usage(m),
            IssueError::TestCopy { .. } => Self::unfinished(e.to_string()),
        }
    }
}

impl From<SetupError> for Failure {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::Store(e) => e.into(),
            SetupError::Transport(e) => e.into(),
            SetupError::Dkim(d) => {
                let file = match &d {
                    crate::deliver::DkimError::Read { file, .. } | crate::deliver::DkimError::Key { file, .. } => {
                        file.clone()
                    }
                };
                Self::usage(d.to_string()).field("dkim.private_key_file").file(file)
            }
        }
    }
}

impl From<SubscriberError> for Failure {
    fn from(e: SubscriberError) -> Self {
        match e {
            SubscriberError::Store(e) => e.into(),
            SubscriberError::Invalid { ref field, ref reason } => match field {
                Field::Email => Self::usage(format!("EMAIL: {reason}")).field("EMAIL"),
                Field::Name => Self::usage(format!("--name {reason}")).field("--name"),
                Field::Lists => Self::usage(format!("--list: {reason}")).field("--list"),
                Field::Attribute(_) | Field::Pause => Self::usage(e.to_string()),
            },
            SubscriberError::FileKept(kept) => Self::usage(format!("--list {}: {kept}", kept.list)).field("--list"),
            SubscriberError::Strict { file, rejected } => {
                let rows: Vec<String> =
                    rejected.iter().map(|r| format!("{}:{}: {}", file.display(), r.line, r.reason)).collect();
                let mut f = Self::usage(format!(
                    "{} bad rows in {}; nothing imported (--strict):\n{}",
                    rejected.len(),
                    file.display(),
                    rows.join("\n")
                ))
                .file(&file);
                f.line = rejected.first().and_then(|r| usize::try_from(r.line).ok());
                f
            }
            SubscriberError::Read { ref file, .. }
            | SubscriberError::Csv { ref file, .. }
            | SubscriberError::ListFile { ref file, .. }
            | SubscriberError::ListCsv { ref file, .. } => Self::usage(e.to_string()).file(file.clone()),
            SubscriberError::LeftEarlier(_)
            | SubscriberError::NotFound(_)
            | SubscriberError::NoSuchList
            | SubscriberError::UnknownChoice { .. }
            | SubscriberError::SignupsClosed => Self::usage(e.to_string()),
        }
    }
}
