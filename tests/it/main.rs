//! End-to-end tests: the real `gazette` binary on real files, its output read back with a real
//! MIME parser, the digest rendered by a real browser and scored by SpamAssassin.

mod postgres;
mod support;

mod architecture;
mod archive;
mod bounce_pause;
mod bounces;
mod browser;
mod cli_errors;
mod compose_fixtures;
mod crash;
mod daemon;
mod dashboard;
mod deliver;
mod dkim;
mod edition_schedule;
mod editions;
mod enumeration;
mod feed_cache;
mod filling;
mod hostile;
mod imap;
mod issue_browser;
mod issue_pages;
mod logs;
mod look;
mod migrate;
mod permissions;
mod postfix;
mod preferences;
mod preview;
mod relays;
mod review;
mod send_asks;
mod smtp;
mod smtp_selftest;
mod subscriber_rules;
mod subscribers;
mod throttle;
mod views;
mod web;
mod web_api;
mod webhooks;
mod workers;
