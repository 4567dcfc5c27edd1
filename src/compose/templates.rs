//! The tera templates of a publication: the built-in defaults compiled into the binary, replaced
//! one by one by files of the same name in the publication's templates folder, and the subject
//! line from the config. Errors name the file and, for syntax errors, the line.

use std::path::{Path, PathBuf};

use tera::Tera;

/// Names of the templates gazette renders, as they stand under the templates folder.
pub const DIGEST_HTML: &str = "email/digest.html";
pub const DIGEST_TEXT: &str = "email/digest.txt";
/// The subject line from `[publication] subject`; no suffix, so nothing is HTML-escaped in it.
pub const SUBJECT: &str = "subject";

const BUILT_IN: &[(&str, &str)] = &[
    (DIGEST_HTML, include_str!("../../templates/email/digest.html")),
    (DIGEST_TEXT, include_str!("../../templates/email/digest.txt")),
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template {}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}{}: {message}; fix the template or delete it to use the built-in one", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Syntax { file: PathBuf, line: Option<usize>, message: String },
    #[error("[publication] subject is not a valid template: {message}")]
    Subject { message: String },
}

/// The compiled templates of one publication, and where each came from.
#[derive(Debug, Clone)]
pub struct TemplateSet {
    pub(crate) tera: Tera,
    origins: Vec<(String, PathBuf)>,
}

impl TemplateSet {
    /// Reads `dir` (if any) for overrides of the built-in templates and compiles all of them,
    /// with `subject` as the subject template.
    pub async fn load(dir: Option<&Path>, subject: &str) -> Result<Self, TemplateError> {
        let mut sources: Vec<(String, String, PathBuf)> = Vec::new();
        for (name, text) in BUILT_IN {
            let mut source = ((*name).to_owned(), (*text).to_owned(), PathBuf::from(format!("(built-in) {name}")));
            if let Some(dir) = dir {
                let file = dir.join(name);
                match tokio::fs::read_to_string(&file).await {
                    Ok(text) => source = ((*name).to_owned(), text, file),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(TemplateError::Read { file, source }),
                }
            }
            sources.push(source);
        }
        Self::compile(sources, subject)
    }

    fn compile(sources: Vec<(String, String, PathBuf)>, subject: &str) -> Result<Self, TemplateError> {
        let mut tera = Tera::default();
        for (name, text, file) in &sources {
            tera.add_raw_template(name, text).map_err(|e| TemplateError::Syntax {
                file: file.clone(),
                line: error_line(&e),
                message: error_chain(&e),
            })?;
        }
        tera.add_raw_template(SUBJECT, subject).map_err(|e| TemplateError::Subject { message: error_chain(&e) })?;
        let origins = sources.into_iter().map(|(n, _, f)| (n, f)).collect();
        Ok(Self { tera, origins })
    }

    /// The file a template was read from, or `(built-in) NAME`.
    pub fn origin(&self, name: &str) -> PathBuf {
        self.origins.iter().find(|(n, _)| n == name).map(|(_, f)| f.clone()).unwrap_or_else(|| PathBuf::from(name))
    }

    pub fn get(&self, name: &str) -> Option<&tera::Template> {
        self.tera.get_template(name).ok()
    }
}

/// The whole cause chain of a tera error on one line: tera puts the useful part in the source.
pub(crate) fn error_chain(e: &tera::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        parts.push(c.to_string());
        cur = c.source();
    }
    parts.iter().map(|p| p.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join(": ")
}

/// The line of a syntax error: the parser reports it as ` --> LINE:COLUMN`.
fn error_line(e: &tera::Error) -> Option<usize> {
    let text = {
        let mut all = e.to_string();
        let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
        while let Some(c) = cur {
            all.push('\n');
            all.push_str(&c.to_string());
            cur = c.source();
        }
        all
    };
    let at = text.find("--> ")?;
    let rest = &text[at + 4..];
    let end = rest.find(':')?;
    rest[..end].trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn built_ins_compile() {
        let set = TemplateSet::load(None, "{{ publication.name }}").await.expect("built-ins compile");
        assert!(set.get(DIGEST_HTML).is_some());
        assert!(set.origin(DIGEST_TEXT).to_string_lossy().contains("built-in"));
    }

    #[tokio::test]
    async fn an_override_replaces_one_template_and_syntax_errors_name_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("email")).expect("mkdir");
        let file = dir.path().join("email/digest.txt");
        std::fs::write(&file, "line one\nline two\n{% for a in issue.articles %}\n{{ a.title | }}\n{% endfor %}\n")
            .expect("write");
        match TemplateSet::load(Some(dir.path()), "x").await {
            Err(TemplateError::Syntax { file: f, line, .. }) => {
                assert_eq!(f, file);
                assert_eq!(line, Some(4));
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
        std::fs::write(&file, "custom {{ issue.number }}").expect("write");
        let set = TemplateSet::load(Some(dir.path()), "x").await.expect("compiles");
        assert_eq!(set.origin(DIGEST_TEXT), file);
        assert!(set.origin(DIGEST_HTML).to_string_lossy().contains("built-in"));
    }

    #[tokio::test]
    async fn a_bad_subject_is_reported_as_the_subject() {
        let err = TemplateSet::load(None, "{{ oops").await.expect_err("bad subject");
        assert!(matches!(err, TemplateError::Subject { .. }));
    }
}
