//! The web's templates: the pages (every one extends `web/layout.html`), the stylesheet served
//! at `/static/site.css`, and the emails the web sends (confirmation, welcome). The built-in
//! defaults are compiled in; a file of the same name in the publication's templates folder
//! replaces one, as it does for the digest. Pages are HTML-escaped by tera (names ending in
//! `.html`); nothing here reads the store or the network.

use std::path::{Path, PathBuf};

use axum::response::Html;
use sha2::{Digest, Sha256};
use tera::{Context, Tera};

use crate::{compose::context::PublicationContext, config};

pub const LAYOUT: &str = "web/layout.html";
pub const HOME: &str = "web/home.html";
pub const FORM: &str = "web/form.html";
pub const CHECK_INBOX: &str = "web/check-inbox.html";
pub const CONFIRM: &str = "web/confirm.html";
pub const CONFIRMED: &str = "web/confirmed.html";
pub const UNSUBSCRIBE: &str = "web/unsubscribe.html";
pub const UNSUBSCRIBED: &str = "web/unsubscribed.html";
pub const PREFERENCES: &str = "web/preferences.html";
pub const ERROR: &str = "web/error.html";
pub const ARCHIVE: &str = "web/archive.html";
pub const CONFIRM_MAIL_HTML: &str = "email/confirm.html";
pub const CONFIRM_MAIL_TEXT: &str = "email/confirm.txt";
pub const WELCOME_MAIL_HTML: &str = "email/welcome.html";
pub const WELCOME_MAIL_TEXT: &str = "email/welcome.txt";
pub const ADMIN_LAYOUT: &str = "web/admin/layout.html";
pub const ADMIN_LOGIN: &str = "web/admin/login.html";
pub const ADMIN_OVERVIEW: &str = "web/admin/overview.html";
pub const ADMIN_ISSUES: &str = "web/admin/issues.html";
pub const ADMIN_ISSUE: &str = "web/admin/issue.html";
/// The part of an issue's page its script asks for again while the issue sends.
pub const ADMIN_ISSUE_LIVE: &str = "web/admin/issue-live.html";
pub const ADMIN_DESK: &str = "web/admin/desk.html";
pub const ADMIN_SUBSCRIBERS: &str = "web/admin/subscribers.html";
pub const ADMIN_LISTS: &str = "web/admin/lists.html";
pub const ADMIN_USERS: &str = "web/admin/users.html";
pub const ADMIN_LOG: &str = "web/admin/log.html";
/// The stylesheet: served as it is, never run through tera.
pub const SITE_CSS: &str = "web/site.css";

/// Every template the web renders, with its built-in text. A page added to the web adds its
/// line here; the layout comes first so that pages can extend it.
pub const BUILT_IN: &[(&str, &str)] = &[
    (LAYOUT, include_str!("../../templates/web/layout.html")),
    (FORM, include_str!("../../templates/web/form.html")),
    (HOME, include_str!("../../templates/web/home.html")),
    (CHECK_INBOX, include_str!("../../templates/web/check-inbox.html")),
    (CONFIRM, include_str!("../../templates/web/confirm.html")),
    (CONFIRMED, include_str!("../../templates/web/confirmed.html")),
    (UNSUBSCRIBE, include_str!("../../templates/web/unsubscribe.html")),
    (UNSUBSCRIBED, include_str!("../../templates/web/unsubscribed.html")),
    (PREFERENCES, include_str!("../../templates/web/preferences.html")),
    (ERROR, include_str!("../../templates/web/error.html")),
    (ARCHIVE, include_str!("../../templates/web/archive.html")),
    (ADMIN_LAYOUT, include_str!("../../templates/web/admin/layout.html")),
    (ADMIN_LOGIN, include_str!("../../templates/web/admin/login.html")),
    (ADMIN_OVERVIEW, include_str!("../../templates/web/admin/overview.html")),
    (ADMIN_ISSUE_LIVE, include_str!("../../templates/web/admin/issue-live.html")),
    (ADMIN_DESK, include_str!("../../templates/web/admin/desk.html")),
    (ADMIN_ISSUES, include_str!("../../templates/web/admin/issues.html")),
    (ADMIN_ISSUE, include_str!("../../templates/web/admin/issue.html")),
    (ADMIN_SUBSCRIBERS, include_str!("../../templates/web/admin/subscribers.html")),
    (ADMIN_LISTS, include_str!("../../templates/web/admin/lists.html")),
    (ADMIN_USERS, include_str!("../../templates/web/admin/users.html")),
    (ADMIN_LOG, include_str!("../../templates/web/admin/log.html")),
    (CONFIRM_MAIL_HTML, include_str!("../../templates/email/confirm.html")),
    (CONFIRM_MAIL_TEXT, include_str!("../../templates/email/confirm.txt")),
    (WELCOME_MAIL_HTML, include_str!("../../templates/email/welcome.html")),
    (WELCOME_MAIL_TEXT, include_str!("../../templates/email/welcome.txt")),
];

const BUILT_IN_CSS: &str = include_str!("../../templates/web/site.css");

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("cannot read template {}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}; fix the template or delete it to use the built-in one", file.display())]
    Syntax { file: PathBuf, message: String },
    #[error("template {name}: {message}")]
    Render { name: String, message: String },
}

/// The compiled web templates of one publication.
#[derive(Debug)]
pub struct Views {
    tera: Tera,
    css: String,
    css_url: String,
    publication: PublicationContext,
}

impl Views {
    /// Reads `dir` (the publication's templates folder, if any) for overrides and compiles
    /// every template.
    pub async fn load(dir: Option<&Path>, publication: &config::Publication) -> Result<Self, ViewError> {
        let mut sources = Vec::with_capacity(BUILT_IN.len());
        for (name, text) in BUILT_IN {
            let (text, file) = match read_override(dir, name).await? {
                Some(found) => found,
                None => ((*text).to_owned(), PathBuf::from(format!("(built-in) {name}"))),
            };
            sources.push((*name, text, file));
        }
        let css = read_override(dir, SITE_CSS).await?.map_or_else(|| BUILT_IN_CSS.to_owned(), |(text, _)| text);
        let mut tera = Tera::default();
        // One at a time, so that an error names the file at fault; `extends` is resolved at the end.
        for (name, text, file) in &sources {
            tera.add_raw_template(name, text)
                .map_err(|e| ViewError::Syntax { file: file.clone(), message: one_line_chain(&e) })?;
        }
        tera.build_inheritance_chains()
            .map_err(|e| ViewError::Syntax { file: PathBuf::from("templates/web"), message: one_line_chain(&e) })?;
        // The stylesheet's URL changes with its content, so it can be cached for a long time.
        let digest = Sha256::digest(css.as_bytes());
        let version: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            tera,
            css,
            css_url: format!("/static/site.css?v={version}"),
            publication: PublicationContext::new(publication),
        })
    }

    /// A context every page starts from: `publication` and `css_url`.
    pub fn context(&self) -> Context {
        let mut ctx = Context::new();
        ctx.insert("publication", &self.publication);
        ctx.insert("css_url", &self.css_url);
        ctx
    }

    /// Renders a page (or an email's HTML part).
    pub fn render(&self, name: &str, ctx: &Context) -> Result<Html<String>, ViewError> {
        self.render_text(name, ctx).map(Html)
    }

    /// Renders any template to a string (an email's text part).
    pub fn render_text(&self, name: &str, ctx: &Context) -> Result<String, ViewError> {
        self.tera
            .render(name, ctx)
            .map_err(|e| ViewError::Render { name: name.to_owned(), message: one_line_chain(&e) })
    }

    pub fn css(&self) -> &str {
        &self.css
    }
}

async fn read_override(dir: Option<&Path>, name: &str) -> Result<Option<(String, PathBuf)>, ViewError> {
    let Some(dir) = dir else { return Ok(None) };
    let file = dir.join(name);
    match tokio::fs::read_to_string(&file).await {
        Ok(text) => Ok(Some((text, file))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ViewError::Read { file, source }),
    }
}

/// tera keeps the useful part of an error in its sources.
fn one_line_chain(e: &tera::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        parts.push(c.to_string());
        cur = c.source();
    }
    parts.iter().map(|p| p.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publication() -> config::Publication {
        config::Publication {
            name: "The <Weekly> Mirror".into(),
            from: config::Sender { name: None, address: "weekly@example.org".parse().expect("address") },
            reply_to: None,
            unsubscribe_mailto: None,
            base_url: "https://news.example.org".parse().expect("url"),
            timezone: chrono_tz::UTC,
            subject: "s".into(),
            lists: Vec::new(),
            postal_address: None,
        }
    }

    #[tokio::test]
    async fn built_ins_compile_and_escape() {
        let views = Views::load(None, &publication()).await.expect("built-ins compile");
        let mut ctx = views.context();
        ctx.insert("problem_title", "Oops");
        ctx.insert("problem_detail", "<script>");
        let Html(page) = views.render(ERROR, &ctx).expect("renders");
        assert!(page.contains("The &lt;Weekly&gt; Mirror"), "{page}");
        assert!(!page.contains("<script>"));
        assert!(page.contains(&views.css_url));
    }

    #[tokio::test]
    async fn an_override_replaces_one_page_and_the_stylesheet() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("web")).expect("mkdir");
        std::fs::write(
            dir.path().join("web/error.html"),
            "{% extends \"web/layout.html\" %}{% block content %}custom {{ problem_title }}{% endblock %}",
        )
        .expect("write");
        std::fs::write(dir.path().join("web/site.css"), "body { color: red }").expect("write");
        let views = Views::load(Some(dir.path()), &publication()).await.expect("compiles");
        let mut ctx = views.context();
        ctx.insert("problem_title", "Oops");
        ctx.insert("problem_detail", "x");
        assert!(views.render(ERROR, &ctx).expect("renders").0.contains("custom Oops"));
        assert_eq!(views.css(), "body { color: red }");
    }

    #[tokio::test]
    async fn a_broken_override_names_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("web")).expect("mkdir");
        let file = dir.path().join("web/home.html");
        std::fs::write(&file, "{% if %}").expect("write");
        match Views::load(Some(dir.path()), &publication()).await {
            Err(ViewError::Syntax { file: f, .. }) => assert_eq!(f, file),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }
}
