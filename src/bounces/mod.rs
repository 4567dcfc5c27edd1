//! Bounces and complaints: what comes back after a message went out, read (`report`), matched
//! to the delivery it is about, and applied to its reader through `subscribers`.

pub mod report;

pub use report::{Report, read};
