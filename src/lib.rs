//! gazette: a publication's recent articles in, one personalised weekly digest per subscriber
//! out. The binary in `main.rs` is a thin shell over these modules; ARCHITECTURE.md maps them.

pub mod accounts;
pub mod bounces;
pub mod cli;
pub mod clock;
pub mod compose;
pub mod config;
pub mod csv_import;
pub mod daemon;
pub mod deliver;
pub mod domain;
pub mod issue;
pub mod logging;
pub mod metrics;
pub mod publication;
pub mod review;
pub mod schedule;
pub mod setup;
pub mod sources;
pub mod store;
pub mod subscribers;
pub mod tokens;
pub mod views;
pub mod web;
