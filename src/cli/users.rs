//! `gazette users …`: the people who may use the dashboard. A password is read as one line on
//! stdin, never from an argument (which `ps` and the shell's history would show), and hashed
//! off the async runtime. Each change is recorded in the log of actions as the command line's.

use std::{io::IsTerminal, path::Path};

use serde_json::json;
use tokio::io::AsyncBufReadExt;

use super::{Failure, Output, output, setup};
use crate::{
    accounts::{self, Password},
    clock::{Clock, SystemClock},
    domain::{Actor, EmailAddress, Role},
    store::{NewAction, NewUser},
};

#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Add a user (or set a user's role and password, ending their sessions); the password is
    /// read as one line on stdin.
    Add {
        email: String,
        /// owner (everything, users too) or editor (everything but users); by default owner for
        /// the first user, editor for the others.
        #[arg(long)]
        role: Option<String>,
    },
    /// Remove a user; their sessions end at once.
    Remove { email: String },
    /// The users, with their roles.
    List,
}

fn email(s: &str) -> Result<EmailAddress, Failure> {
    s.parse().map_err(|e| Failure::usage(format!("EMAIL: {e}")).field("EMAIL"))
}

/// One line of stdin, the password; prompted for on a terminal.
async fn read_password() -> Result<Password, Failure> {
    if std::io::stdin().is_terminal() {
        eprint!("Password for the dashboard (at least {} characters): ", accounts::MIN_PASSWORD_CHARS);
    }
    let mut line = String::new();
    tokio::io::BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await
        .map_err(|e| Failure::usage(format!("cannot read the password from stdin: {e}")))?;
    Password::new(&line).map_err(|e| Failure::usage(format!("{e} (read as one line on stdin)")).field("password"))
}

pub async fn run(config: &Path, command: UsersCommand) -> Result<Output, Failure> {
    let now = SystemClock.now();
    match command {
        UsersCommand::Add { email: e, role } => {
            let address = email(&e)?;
            let role: Option<Role> = role
                .map(|r| r.parse().map_err(|e| Failure::usage(format!("--role: {e}")).field("--role")))
                .transpose()?;
            let password = read_password().await?;
            let cfg = setup::config(config).await?;
            let store = setup::store(&cfg).await?;
            // The first user can manage the others, or nobody could from the dashboard.
            let role = match role {
                Some(role) => role,
                None if store.users().await.map_err(Failure::from)?.is_empty() => Role::Owner,
                None => Role::Editor,
            };
            let hash = accounts::hash(password).await.map_err(|e| Failure::unfinished(e.to_string()))?;
            let created = store
                .put_user(&NewUser { email: &address, role, password_hash: &hash }, now)
                .await
                .map_err(Failure::from)?;
            let (what, detail) = if created {
                ("added a user", format!("{address} as {role}"))
            } else {
                ("changed a user", format!("{address} is now {role}, with a new password"))
            };
            let action =
                NewAction { actor: &Actor::CommandLine, action: what, issue: None, subscriber: None, detail: &detail };
            store.record_action(&action, now).await.map_err(Failure::from)?;
            let human = if created {
                format!("{address} may sign in to the dashboard as {role}\n")
            } else {
                format!("{address} is now {role}, with the new password; their sessions ended\n")
            };
            Ok(Output::new(human, json!({ "email": address.as_str(), "role": role, "created": created })))
        }
        UsersCommand::Remove { email: e } => {
            let address = email(&e)?;
            let store = setup::store(&setup::config(config).await?).await?;
            let removed = store.remove_user(&address).await.map_err(Failure::from)?;
            if removed {
                let detail = address.to_string();
                let action = NewAction {
                    actor: &Actor::CommandLine,
                    action: "removed a user",
                    issue: None,
                    subscriber: None,
                    detail: &detail,
                };
                store.record_action(&action, now).await.map_err(Failure::from)?;
            }
            let human = if removed {
                format!("{address} removed; their sessions ended\n")
            } else {
                format!("{address} was not a user\n")
            };
            Ok(Output::new(human, json!({ "email": address.as_str(), "removed": removed })))
        }
        UsersCommand::List => {
            let store = setup::store(&setup::config(config).await?).await?;
            let users = store.users().await.map_err(Failure::from)?;
            let json = json!({ "users": users.iter().map(|u| json!({
                "email": u.email,
                "role": u.role,
                "created_at": u.created_at.to_rfc3339(),
            })).collect::<Vec<_>>() });
            let human = if users.is_empty() {
                "No user yet; add one with `gazette users add EMAIL --role owner`.\n".to_owned()
            } else {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|u| {
                        vec![u.email.clone(), u.role.to_string(), u.created_at.format("%Y-%m-%d %H:%M UTC").to_string()]
                    })
                    .collect();
                output::table(&["EMAIL", "ROLE", "CREATED"], &rows)
            };
            Ok(Output::new(human, json))
        }
    }
}
