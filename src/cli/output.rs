//! What a command prints: human text for a terminal, or one JSON document with `--json`.

use std::io::IsTerminal;

/// A command's result: the human form and the JSON form of the same facts.
pub struct Output {
    pub human: String,
    pub json: serde_json::Value,
    /// Lines for stderr (warnings), in both modes.
    pub warnings: Vec<String>,
    /// Exit code for a command that finished but wants to say "problems found" (check).
    pub exit_code: u8,
}

impl Output {
    pub fn new(human: String, json: serde_json::Value) -> Self {
        Self { human, json, warnings: Vec::new(), exit_code: 0 }
    }

    pub fn warn(mut self, w: impl Into<String>) -> Self {
        self.warnings.push(w.into());
        self
    }
}

/// Colours only when stdout is a terminal and NO_COLOR is unset.
pub fn colours() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

pub fn bold(s: &str) -> String {
    if colours() { format!("\x1b[1m{s}\x1b[0m") } else { s.to_owned() }
}

pub fn dim(s: &str) -> String {
    if colours() { format!("\x1b[2m{s}\x1b[0m") } else { s.to_owned() }
}

/// Fixed-width columns; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    // Cells hold what others typed (names, subjects, servers' replies): a control character in
    // one must not move the cursor or recolour the publisher's terminal.
    let rows: Vec<Vec<String>> =
        rows.iter().map(|r| r.iter().map(|c| crate::domain::for_terminal(c).into_owned()).collect()).collect();
    let rows = &rows;
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = bold(&line(header.iter().map(|h| h.to_string()).collect()));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.clone()));
        out.push('\n');
    }
    out
}
