//! How both stores find an address: by its key (the whole address in lower case, which a unique
//! index on `lower(email)` holds once), and a forgotten address by a digest of it.

use sha2::{Digest, Sha256};

use crate::domain::EmailAddress;

/// What a forgotten address is kept as: enough to recognise it on a later import, in any case
/// of its letters, and nothing to read it back from.
pub(super) fn forgotten(email: &EmailAddress) -> String {
    hashed(&email.key())
}

/// Every form a forgotten `email` may be stored under: by its key, and by its spelling as given,
/// which stores forgot addresses by before they compared them case-insensitively.
pub(super) fn forgotten_forms(email: &EmailAddress) -> [String; 2] {
    [forgotten(email), hashed(email.as_str())]
}

fn hashed(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    format!("forgotten:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The mailbox an address reaches, as the sign-up limit counts it: a digest, so the count of
/// requests holds no address.
pub(super) fn mailbox_digest(email: &EmailAddress) -> String {
    let digest = Sha256::digest(email.mailbox().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgotten_forms_ignore_case_and_keep_the_old_form() {
        let a: EmailAddress = "Ann@Example.org".parse().expect("valid");
        let b: EmailAddress = "ann@example.org".parse().expect("valid");
        assert_eq!(forgotten(&a), forgotten(&b));
        assert_eq!(forgotten_forms(&a)[1], hashed("Ann@example.org"));
        let tagged: EmailAddress = "ANN+x@example.org".parse().expect("valid");
        assert_eq!(mailbox_digest(&tagged), mailbox_digest(&b));
    }
}
