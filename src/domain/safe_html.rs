//! HTML that has been through the sanitiser. Only `sources::sanitize` makes one, so a template
//! may mark it `safe` without re-checking.

use serde::{Deserialize, Serialize};

/// Sanitised HTML: no scripts, styles, frames, forms, event handlers, `javascript:`/`data:` URLs
/// or tracking pixels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SafeHtml(String);

impl SafeHtml {
    /// Wraps HTML that the caller has sanitised.
    ///
    /// # Danger
    /// The string reaches readers unescaped; pass only the output of the sanitiser.
    pub fn assume_sanitised(html: String) -> Self {
        Self(html)
    }

    /// Text escaped for HTML element content or a quoted attribute value. Only the five
    /// characters that matter are touched, so a link stays readable.
    pub fn escape(text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                _ => out.push(c),
            }
        }
        out
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl AsRef<str> for SafeHtml {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
