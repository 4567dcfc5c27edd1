//! `[[shaping]]`: limits on the sending to a group of recipient domains. The groups are checked
//! here (names lower-cased, each domain in one group at most); what the limits do is `deliver`'s.

use std::collections::HashSet;

use crate::domain::Rate;

/// One group of recipient domains and its caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shaping {
    /// Lower-cased, at least one, none in another group.
    pub domains: Vec<String>,
    /// Messages in flight to these domains at once; `None` = no cap of its own.
    pub concurrency: Option<usize>,
    /// Messages a second to these domains at most; `None` = no limit.
    pub rate: Option<Rate>,
}

impl Shaping {
    /// The group's name in metrics and logs: its first domain.
    pub fn name(&self) -> &str {
        self.domains.first().map_or("", String::as_str)
    }
}

/// Why a group's domains were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapingError {
    #[error("name at least one domain, e.g. domains = [\"gmail.com\", \"googlemail.com\"]")]
    NoDomains,
    #[error("`{0}` is not a domain name")]
    NotADomain(String),
    #[error("`{0}` is in more than one group")]
    Repeated(String),
}

/// The domains of one group, lower-cased, refusing any already in `seen` (the groups before).
pub fn domains(raw: &[String], seen: &mut HashSet<String>) -> Result<Vec<String>, ShapingError> {
    if raw.is_empty() {
        return Err(ShapingError::NoDomains);
    }
    let mut out = Vec::with_capacity(raw.len());
    for d in raw {
        let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !d.contains('.') || !d.split('.').all(label_ok) {
            return Err(ShapingError::NotADomain(d));
        }
        if !seen.insert(d.clone()) {
            return Err(ShapingError::Repeated(d));
        }
        out.push(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_lower_cased_and_each_in_one_group_at_most() {
        let mut seen = HashSet::new();
        let gmail = domains(&["GMail.com".into(), "googlemail.com.".into()], &mut seen).expect("gmail");
        assert_eq!(gmail, ["gmail.com", "googlemail.com"]);
        assert_eq!(domains(&["gmail.COM".into()], &mut seen), Err(ShapingError::Repeated("gmail.com".into())));
        assert_eq!(domains(&[], &mut seen), Err(ShapingError::NoDomains));
        assert_eq!(domains(&["not a domain".into()], &mut seen), Err(ShapingError::NotADomain("not a domain".into())));
        assert_eq!(domains(&["a@b.org".into()], &mut seen), Err(ShapingError::NotADomain("a@b.org".into())));
    }
}
