//! One full render of the subject, the HTML part (CSS inlined for mail clients that ignore
//! `<style>`) and the text part (laid out at 72 columns).

use std::path::PathBuf;

use super::{
    context::DigestContext,
    templates::{self, DIGEST_HTML, DIGEST_TEXT, SUBJECT, TemplateSet},
    text,
};

/// The three texts of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedIssue {
    pub subject: String,
    pub html: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{}: {message}; fix the template (the variables it can use are listed in the README)", file.display())]
    Template { file: PathBuf, message: String },
    #[error("cannot inline the CSS of {}: {message}", file.display())]
    Inline { file: PathBuf, message: String },
    #[error("the subject rendered empty; check [publication] subject")]
    EmptySubject,
}

pub(crate) fn render_all(templates: &TemplateSet, mut ctx: DigestContext) -> Result<RenderedIssue, RenderError> {
    let fail = |name: &str| {
        let file = templates.origin(name);
        move |e: tera::Error| RenderError::Template { file, message: templates::error_chain(&e) }
    };
    ctx.issue.subject = String::new();
    let subject = match &ctx.issue.fixed_subject {
        Some(fixed) => one_line(fixed),
        None => one_line(&templates.tera.render(SUBJECT, &ctx.to_tera()).map_err(fail(SUBJECT))?),
    };
    if subject.is_empty() {
        return Err(RenderError::EmptySubject);
    }
    ctx.issue.subject = subject.clone();
    let tctx = ctx.to_tera();
    let html = templates.tera.render(DIGEST_HTML, &tctx).map_err(fail(DIGEST_HTML))?;
    let html =
        inline_css(&html).map_err(|message| RenderError::Inline { file: templates.origin(DIGEST_HTML), message })?;
    let text = text::layout(&templates.tera.render(DIGEST_TEXT, &tctx).map_err(fail(DIGEST_TEXT))?);
    Ok(RenderedIssue { subject, html, text })
}

/// The HTML part alone, as the issue's archive web page: `web_page` set, the subject as given
/// (the one the issue went out with), the CSS inlined as in the message.
pub fn web_page(templates: &TemplateSet, mut ctx: DigestContext) -> Result<String, RenderError> {
    ctx.web_page = true;
    let html = templates.tera.render(DIGEST_HTML, &ctx.to_tera()).map_err(|e| RenderError::Template {
        file: templates.origin(DIGEST_HTML),
        message: templates::error_chain(&e),
    })?;
    inline_css(&html).map_err(|message| RenderError::Inline { file: templates.origin(DIGEST_HTML), message })
}

/// Moves the `<style>` rules onto the elements, keeping `@media` rules (dark mode, phones) in a
/// style element; never fetches a remote stylesheet.
pub fn inline_css(html: &str) -> Result<String, String> {
    css_inline::CSSInliner::options()
        .keep_style_tags(false)
        .keep_at_rules(true)
        .keep_link_tags(false)
        .minify_css(true)
        .load_remote_stylesheets(false)
        .build()
        .inline(html)
        .map_err(|e| e.to_string())
}

/// Header-safe text: every run of white space, line breaks included, becomes one space.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
