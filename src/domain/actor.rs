//! Who acted on the publisher's side, as the log of actions names them.

use std::fmt;

use super::EmailAddress;

/// The one who made a change: a dashboard user, or one of gazette's own ways in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person signed in to the dashboard.
    User(EmailAddress),
    /// Someone at the command line (its user is not known to gazette).
    CommandLine,
    /// The daemon's scheduler, acting at a slot.
    Scheduler,
    /// A client of the admin API, holding its bearer token.
    AdminApi,
}

impl Actor {
    /// How the log shows it. A user's address is a publisher's colleague, not a reader.
    pub fn label(&self) -> String {
        match self {
            Self::User(email) => email.as_str().to_owned(),
            Self::CommandLine => "command line".to_owned(),
            Self::Scheduler => "scheduler".to_owned(),
            Self::AdminApi => "admin API".to_owned(),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_way_in() {
        let ed: EmailAddress = "ed@example.org".parse().expect("valid");
        assert_eq!(Actor::User(ed).label(), "ed@example.org");
        assert_eq!(Actor::CommandLine.to_string(), "command line");
        assert_eq!(Actor::Scheduler.to_string(), "scheduler");
        assert_eq!(Actor::AdminApi.to_string(), "admin API");
    }
}
