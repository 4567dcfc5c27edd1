//! A subscriber's name as people type it, made safe for a header, a terminal and every store.

use std::fmt;

use serde::Serialize;

/// The longest name kept, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// One line of printable text, at most [`MAX_NAME_CHARS`] characters, never empty. Whatever
/// arrives from a form, a CSV, the command line or the admin API is judged the same way, so no
/// edge answers differently from another, and a name cannot break a header, a terminal or a
/// PostgreSQL text column (which refuses a NUL).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SubscriberName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TextError {
    #[error("is longer than {MAX_NAME_CHARS} characters ({0}); shorten it")]
    TooLong(usize),
    #[error("holds the control character {0}; remove it")]
    Control(String),
}

impl SubscriberName {
    /// `Ok(None)` for a name that is empty once folded.
    pub fn parse(raw: &str) -> Result<Option<Self>, TextError> {
        let line = printable_line(raw)?;
        let chars = line.chars().count();
        if chars > MAX_NAME_CHARS {
            return Err(TextError::TooLong(chars));
        }
        Ok((!line.is_empty()).then_some(Self(line)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for SubscriberName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubscriberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Text on one printable line: runs of white space (line breaks included) become one space and
/// the ends are trimmed; any other control character, or a mark that reorders the text around it
/// (which can make `gro.elpmaxe` read as `example.org`), is refused, named by its code point.
pub fn printable_line(raw: &str) -> Result<String, TextError> {
    let mut out = String::with_capacity(raw.len());
    let mut space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if c.is_control() || is_reordering(c) {
            return Err(TextError::Control(format!("U+{:04X}", u32::from(c))));
        }
        if c == '\u{FEFF}' {
            // A byte-order mark left by an editor: nobody typed it.
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    Ok(out)
}

/// Text already stored, for a terminal: control and reordering characters shown as escapes,
/// so a value can never move the cursor, recolour the screen or hide what follows it.
pub fn for_terminal(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || is_reordering(c)) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| if c.is_control() || is_reordering(c) { c.escape_unicode().to_string() } else { c.to_string() })
            .collect(),
    )
}

fn is_reordering(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_white_space_to_one_line() {
        let n = SubscriberName::parse("  Ann\r\nBcc: x@y\t Lee\u{FEFF} ").expect("ok").expect("some");
        assert_eq!(n.as_str(), "Ann Bcc: x@y Lee");
    }

    #[test]
    fn refuses_control_and_reordering_characters() {
        assert_eq!(SubscriberName::parse("Ann\0"), Err(TextError::Control("U+0000".into())));
        assert_eq!(SubscriberName::parse("\u{1b}[31mAnn"), Err(TextError::Control("U+001B".into())));
        assert_eq!(SubscriberName::parse("Ann \u{202E}gro"), Err(TextError::Control("U+202E".into())));
        assert!(SubscriberName::parse("مریم\u{200C}ی").expect("a joiner is part of a name").is_some());
    }

    #[test]
    fn empty_is_none_and_long_is_refused() {
        assert_eq!(SubscriberName::parse(" \n "), Ok(None));
        assert_eq!(SubscriberName::parse(&"x".repeat(200)).expect("ok").map(|n| n.as_str().len()), Some(200));
        assert_eq!(SubscriberName::parse(&"é".repeat(201)), Err(TextError::TooLong(201)));
    }

    #[test]
    fn terminal_text_shows_controls_as_escapes() {
        assert_eq!(for_terminal("Ann"), "Ann");
        assert_eq!(for_terminal("A\u{1b}[2J\u{7}"), "A\\u{1b}[2J\\u{7}");
    }
}
