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
