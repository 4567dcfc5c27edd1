//! The `gazette` binary: parse the command line, start logging, run one command, print what it
//! says, exit with its code. No logic lives here.

use std::{io::Write, process::ExitCode};

use clap::Parser;
use gazette::{
    cli::{self, Cli},
    logging,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let default_level = if cli.command.is_daemon() { tracing::Level::INFO } else { tracing::Level::WARN };
    match logging::Settings::from_env(default_level) {
        Ok(settings) => settings.install(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    gazette::sources::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(cli::run(cli));
    let mut stdout = std::io::stdout().lock();
    match result {
        Ok(out) => {
            for w in &out.warnings {
                eprintln!("warning: {w}");
            }
            let printed = if json {
                writeln!(stdout, "{}", out.json)
            } else if out.human.is_empty() {
                Ok(())
            } else {
                write!(stdout, "{}", out.human)
            };
            // A closed pipe (`gazette articles | head`) is not an error of ours.
            let _ = printed.and_then(|()| stdout.flush());
            ExitCode::from(out.exit_code)
        }
        Err(failure) => {
            if json {
                let _ = writeln!(stdout, "{}", serde_json::json!({ "error": failure }));
            } else {
                eprintln!("error: {failure}");
            }
            ExitCode::from(failure.exit_code)
        }
    }
}
