//! The list headers lettre has no type for, as typed headers: their values come only from the
//! publication's own links, so they need no parsing of their own.

use lettre::message::header::{Header, HeaderName, HeaderValue};

macro_rules! text_header {
    ($(#[$doc:meta])* $ty:ident, $name:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $ty(pub String);

        impl Header for $ty {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($name)
            }

            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok(Self(s.to_owned()))
            }

            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

text_header!(
    /// RFC 2919.
    ListId,
    "List-Id"
);
text_header!(
    /// RFC 2369: the signed https link, and a mailto where one is set.
    ListUnsubscribe,
    "List-Unsubscribe"
);
text_header!(
    /// RFC 8058: `List-Unsubscribe=One-Click`.
    ListUnsubscribePost,
    "List-Unsubscribe-Post"
);
text_header!(
    /// RFC 3834: marks confirmation and welcome mails as sent by a program.
    AutoSubmitted,
    "Auto-Submitted"
);
