//! The command line: clap's structs (what a user types), then one small function per command
//! over the library. Errors become `Failure`s here, with the exit code docs/src/commands.md gives.

mod articles;
mod bounces;
mod check;
mod daemon;
mod delivery;
mod failure;
mod init;
mod issues;
mod migrate;
mod output;
mod preview;
mod review;
mod send;
mod serve;
mod setup;
mod signals;
mod subscribers;
mod users;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use failure::Failure;
pub use output::Output;

/// Every command that takes `--edition` says the same of it.
const EDITION_HELP: &str =
    "The edition (an [[edition]] name, case aside) whose next issue this is; the default edition without it";

/// Every command that takes `--as-of` says the same of it.
const AS_OF_HELP: &str = "Stand in for \"now\" when choosing articles and dating the issue: RFC 3339 \
     (2024-03-16T12:00:00-04:00) or a date (2024-03-16, the end of that day in the publication's time zone)";

#[derive(Debug, Parser)]
#[command(
    name = "gazette",
    version,
    about = "Compose a publication's recent articles into a weekly digest and deliver it"
)]
pub struct Cli {
    /// The publication's config file.
    #[arg(long, global = true, env = "GAZETTE_CONFIG", default_value = crate::config::DEFAULT_FILE)]
    pub config: PathBuf,
    /// Print one JSON document on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a working publication into DIR: config, templates, sample articles, a sample list.
    Init {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Check the config, templates and sources, and say what is wrong.
    Check,
    /// The articles the next issue would carry.
    Articles {
        #[arg(long, value_name = "T", help = AS_OF_HELP)]
        as_of: Option<String>,
        /// Also show the articles left out, and why.
        #[arg(long)]
        all: bool,
        #[arg(long, value_name = "NAME", help = EDITION_HELP)]
        edition: Option<String>,
    },
    /// Render the next issue as a subscriber would receive it; records and sends nothing.
    Preview {
        #[arg(long, value_name = "T", help = AS_OF_HELP)]
        as_of: Option<String>,
        /// Personalise for this subscriber: their name, attributes and topics (and their edition
        /// unless --edition names one).
        #[arg(long)]
        subscriber: Option<String>,
        #[arg(long, value_name = "NAME", help = EDITION_HELP)]
        edition: Option<String>,
        #[arg(long, value_enum, default_value_t = preview::Format::Html)]
        format: preview::Format,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Create the next issue and deliver it, or resume the unfinished one.
    Send {
        #[arg(long, value_name = "T", help = AS_OF_HELP)]
        as_of: Option<String>,
        /// Report what would happen; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Send a test copy to this address only, recorded nowhere (repeatable).
        #[arg(long)]
        to: Vec<String>,
        /// Create and queue the issue; leave delivery to `gazette worker`.
        #[arg(long)]
        queue_only: bool,
        /// Send without asking; needed where stdin is not a terminal (a pipe, cron).
        #[arg(long, short)]
        yes: bool,
        #[arg(long, value_name = "NAME", help = EDITION_HELP)]
        edition: Option<String>,
    },
    /// The issues and their delivery counts.
    #[command(subcommand)]
    Issues(issues::IssuesCommand),
    /// Create the next issue as a draft (articles frozen, nothing queued) and mail a review copy
    /// to [review] editors.
    Draft {
        #[arg(long, value_name = "T", help = AS_OF_HELP)]
        as_of: Option<String>,
        #[arg(long, value_name = "NAME", help = EDITION_HELP)]
        edition: Option<String>,
    },
    /// Subscribers: import, add, remove, list, export.
    #[command(subcommand)]
    Subscribers(subscribers::SubscribersCommand),
    /// Each list with its counts by status.
    Lists,
    /// The people who may use the dashboard: add, remove, list.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Bounces and complaints: read the messages that came back, and list what was recorded.
    #[command(subcommand)]
    Bounces(bounces::BouncesCommand),
    /// The daemon: the scheduler, the delivery workers and the web server in one process, until
    /// SIGINT/SIGTERM.
    Run {
        /// Serve the web here instead of [web] listen (ADDR:PORT; port 0 picks a free one).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Delivery workers alone: drain every issue that is sending, until SIGINT/SIGTERM.
    Worker,
    /// Copy every subscriber, issue and ledger row into another, empty store (e.g. SQLite to
    /// PostgreSQL). The source is left as it was.
    MigrateStore {
        /// The store to copy from; by default the config's [storage] database_url.
        #[arg(long)]
        from: Option<String>,
        /// The new store: postgres://USER@HOST/DB or sqlite://FILE.
        #[arg(long)]
        to: String,
    },
    /// The web server alone: sign-up, confirmation and unsubscribe pages, the archive.
    Serve {
        /// Listen here instead of [web] listen (ADDR:PORT; port 0 picks a free one).
        #[arg(long)]
        listen: Option<String>,
    },
}

impl Command {
    /// Long-running commands log what they do by default; the others only warn.
    pub fn is_daemon(&self) -> bool {
        matches!(self, Self::Run { .. } | Self::Worker | Self::Serve { .. })
    }
}

/// Runs one command; what it prints comes back as an `Output`.
pub async fn run(cli: Cli) -> Result<Output, Failure> {
    match cli.command {
        Command::Init { dir } => init::run(&dir).await,
        Command::Check => check::run(&cli.config).await,
        Command::Articles { as_of, all, edition } => {
            articles::run(&cli.config, as_of.as_deref(), all, edition.as_deref()).await
        }
        Command::Preview { as_of, subscriber, edition, format, out } => {
            let o = preview::Options {
                as_of: as_of.as_deref(),
                subscriber: subscriber.as_deref(),
                edition: edition.as_deref(),
                format,
                out: out.as_deref(),
            };
            preview::run(&cli.config, o).await
        }
        Command::Send { as_of, dry_run, to, queue_only, yes, edition } => {
            let o = send::Options {
                as_of: as_of.as_deref(),
                dry_run,
                to: &to,
                queue_only,
                yes,
                edition: edition.as_deref(),
            };
            send::run(&cli.config, o).await
        }
        Command::Issues(issues::IssuesCommand::Edit { number, subject, intro, exclude, order }) => {
            review::edit(&cli.config, number, subject, intro.as_deref(), exclude, order).await
        }
        Command::Issues(issues::IssuesCommand::Approve { number }) => review::approve(&cli.config, number).await,
        Command::Issues(issues::IssuesCommand::Hold { number }) => review::hold(&cli.config, number).await,
        Command::Issues(c) => issues::run(&cli.config, c).await,
        Command::Draft { as_of, edition } => review::draft(&cli.config, as_of.as_deref(), edition.as_deref()).await,
        Command::Subscribers(c) => subscribers::run(&cli.config, c, cli.json).await,
        Command::Lists => subscribers::lists(&cli.config).await,
        Command::Bounces(c) => bounces::run(&cli.config, c).await,
        Command::Users(c) => users::run(&cli.config, c).await,
        Command::Run { listen } => daemon::run(&cli.config, true, listen.as_deref()).await,
        Command::Worker => daemon::run(&cli.config, false, None).await,
        Command::MigrateStore { from, to } => migrate::run(&cli.config, from.as_deref(), &to).await,
        Command::Serve { listen } => serve::run(&cli.config, listen.as_deref()).await,
    }
}
