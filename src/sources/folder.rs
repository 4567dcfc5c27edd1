//! A folder of Markdown files → articles. These files are written by the publisher by hand, so
//! unlike feeds they are read strictly: a missing title or date, an unknown key or a date that
//! does not parse is an error naming the file and line and saying what to write instead, rather
//! than an article that silently goes missing from an issue.
//!
//! Every `*.md` file of the folder is read (not subfolders, not hidden files), in file-name
//! order. A file is front matter, TOML between `+++` lines or YAML between `---` lines, then
//! the body in Markdown (tables, footnotes, strikethrough). Keys: `title` and `date` (required),
//! `author`, `url`, `summary`, `image`, `image_alt`, `tags`, `draft`.

use std::path::Path;

use chrono::{DateTime, Utc};
use url::Url;

use super::sanitize::{first_image, sanitize_html};
use super::text::{clean_text, safe_html_to_text, summary_from_text};
use super::{FolderSource, ReadOptions, SourceError, dates};
use crate::domain::{Article, ArticleImage};

const KEYS: &str = "title, date, author, url, summary, image, image_alt, tags, draft";

/// Reads every `*.md` file of the folder (not its subfolders), in file-name order.
pub async fn read_folder(folder: &FolderSource, options: &ReadOptions) -> Result<Vec<Article>, SourceError> {
    let unreadable = |source| SourceError::ReadFile { path: folder.path.clone(), source };
    let mut entries = tokio::fs::read_dir(&folder.path).await.map_err(unreadable)?;
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(unreadable)? {
        let path = entry.path();
        let is_markdown = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("md"));
        // Hidden files (editor lock files such as `.#post.md`, macOS `._post.md`) are no articles.
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !is_markdown || hidden {
            continue;
        }
        // Follows symlinks, so a linked article counts; subfolders named *.md do not.
        let metadata =
            tokio::fs::metadata(&path).await.map_err(|source| SourceError::ReadFile { path: path.clone(), source })?;
        if metadata.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));

    let label = folder_label(&folder.path);
    let mut articles = Vec::with_capacity(files.len());
    for path in files {
        let bytes =
            tokio::fs::read(&path).await.map_err(|source| SourceError::ReadFile { path: path.clone(), source })?;
        articles.push(parse_markdown_article(&path, &bytes, &label, options)?);
    }
    Ok(articles)
}

/// The folder's name, as the articles' source label.
fn folder_label(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .or_else(|| path.canonicalize().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())))
        .unwrap_or_else(|| path.display().to_string())
}

/// One Markdown file → an article. `path` names the file in errors and gives the article's id.
pub fn parse_markdown_article(
    path: &Path,
    bytes: &[u8],
    label: &str,
    options: &ReadOptions,
) -> Result<Article, SourceError> {
    let error = |line: usize, message: String| SourceError::Article { file: path.to_path_buf(), line, message };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        error(line, "is not UTF-8 text; save the file as UTF-8".into())
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let split = split_front_matter(text).map_err(|message| error(1, message))?;
    let fields = match split.syntax {
        Syntax::Toml => read_toml(split.front_matter),
        Syntax::Yaml => read_yaml(split.front_matter),
    }
    .map_err(|(line, message)| error(line + split.first_line, message))?;
    let front = FrontMatter::from_fields(fields, split.syntax, options)
        .map_err(|(line, message)| error(line.map_or(1, |l| l + split.first_line), message))?;

    let html = markdown_to_html(split.body);
    let content_html = sanitize_html(&html, front.url.as_ref());
    let summary = match &front.summary {
        Some(summary) => summary_from_text(summary),
        None => summary_from_text(&safe_html_to_text(&content_html)),
    };
    let image = match front.image {
        Some(url) => Some(ArticleImage { url, alt: front.image_alt.unwrap_or_else(|| front.title.clone()) }),
        None => first_image(&content_html)
            .map(|(url, alt)| ArticleImage { url, alt: alt.unwrap_or_else(|| front.title.clone()) }),
    };
    let id =
        path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    Ok(Article {
        id,
        title: front.title,
        url: front.url,
        date: Some(front.date),
        author: front.author,
        summary,
        content_html,
        image,
        tags: front.tags,
        source: label.to_string(),
        source_id: label.to_string(),
        draft: front.draft,
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Syntax {
    Toml,
    Yaml,
}

impl Syntax {
    /// How to write `key = value` in this syntax, for hints.
    fn example(self, key: &str, value: &str) -> String {
        match self {
            Syntax::Toml => format!("{key} = {value}"),
            Syntax::Yaml => format!("{key}: {value}"),
        }
    }
}

struct Split<'a> {
    syntax: Syntax,
    front_matter: &'a str,
    /// The file line of the front matter's first line, less one (so front-matter line `n` is
    /// file line `n + first_line`).
    first_line: usize,
    body: &'a str,
}

fn split_front_matter(text: &str) -> Result<Split<'_>, String> {
    let first_line_end = text.find('\n').map_or(text.len(), |i| i + 1);
    let opening = text[..first_line_end].trim_end();
    let syntax = match opening {
        "+++" => Syntax::Toml,
        "---" => Syntax::Yaml,
        _ => {
            return Err("no front matter; start the file with a line `+++`, then `title = \"…\"` and \
                 `date = 2024-03-12`, then a closing `+++` line (or the same in YAML between \
                 `---` lines)"
                .into());
        }
    };
    let mut offset = first_line_end;
    while offset < text.len() {
        let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i + 1);
        if text[offset..line_end].trim_end() == opening {
            return Ok(Split {
                syntax,
                front_matter: &text[first_line_end..offset],
                first_line: 1,
                body: &text[line_end..],
            });
        }
        offset = line_end;
    }
    Err(format!(
        "the front matter opened by `{opening}` on line 1 is never closed; add a `{opening}` line \
         after it"
    ))
}

/// A front-matter value, whichever syntax it came from.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Text(String),
    Bool(bool),
    Number(String),
    /// A TOML date or date-time, as written.
    Date(String),
    List(Vec<Value>),
    Table,
    Null,
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Text(_) => "a string",
            Value::Bool(_) => "true or false",
            Value::Number(_) => "a number",
            Value::Date(_) => "a date",
            Value::List(_) => "a list",
            Value::Table => "a table",
            Value::Null => "empty",
        }
    }
}

/// (key, value, front-matter line of the key)
type Fields = Vec<(String, Value, usize)>;
/// (front-matter line, message)
type FieldError = (usize, String);

fn read_toml(front_matter: &str) -> Result<Fields, FieldError> {
    let table: toml::Table = toml::from_str(front_matter).map_err(|error| {
        let line = error.span().map_or(1, |span| line_of_offset(front_matter, span.start));
        (line, format!("the TOML front matter does not parse: {}", error.message().trim()))
    })?;
    Ok(table
        .into_iter()
        .map(|(key, value)| {
            let line = line_of_key(front_matter, &key, Syntax::Toml);
            (key, from_toml(value), line)
        })
        .collect())
}

fn from_toml(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::Text(s),
        toml::Value::Integer(n) => Value::Number(n.to_string()),
        toml::Value::Float(n) => Value::Number(n.to_string()),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::Date(d.to_string()),
        toml::Value::Array(items) => Value::List(items.into_iter().map(from_toml).collect()),
        toml::Value::Table(_) => Value::Table,
    }
}

fn read_yaml(front_matter: &str) -> Result<Fields, FieldError> {
    if front_matter.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: serde_norway::Value = serde_norway::from_str(front_matter).map_err(|error| {
        let line = error.location().map_or(1, |location| line_of_offset(front_matter, location.index()));
        let message = error.to_string();
        // The message repeats the position we already give.
        let message = message.split(" at line ").next().unwrap_or(&message).trim().to_string();
        (line, format!("the YAML front matter does not parse: {message}"))
    })?;
    let mapping = match value {
        serde_norway::Value::Mapping(mapping) => mapping,
        serde_norway::Value::Null => return Ok(Vec::new()),
        _ => {
            return Err((1, "the YAML front matter is not a set of `key: value` lines".into()));
        }
    };
    let mut fields = Vec::new();
    for (key, value) in mapping {
        let key = match key {
            serde_norway::Value::String(key) => key,
            other => {
                return Err((1, format!("front-matter keys must be words, not {other:?}")));
            }
        };
        let line = line_of_key(front_matter, &key, Syntax::Yaml);
        fields.push((key, from_yaml(value), line));
    }
    Ok(fields)
}

fn from_yaml(value: serde_norway::Value) -> Value {
    match value {
        serde_norway::Value::Null => Value::Null,
        serde_norway::Value::Bool(b) => Value::Bool(b),
        serde_norway::Value::Number(n) => Value::Number(n.to_string()),
        serde_norway::Value::String(s) => Value::Text(s),
        serde_norway::Value::Sequence(items) => Value::List(items.into_iter().map(from_yaml).collect()),
        serde_norway::Value::Mapping(_) => Value::Table,
        serde_norway::Value::Tagged(tagged) => from_yaml(tagged.value),
    }
}

/// 1-based line of a byte offset (an offset at the very end counts as the last line).
fn line_of_offset(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    let line = 1 + text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count();
    line.min(text.lines().count().max(1))
}

/// 1-based line on which a top-level key is set (1 if it cannot be found).
fn line_of_key(front_matter: &str, key: &str, syntax: Syntax) -> usize {
    let separator = match syntax {
        Syntax::Toml => '=',
        Syntax::Yaml => ':',
    };
    front_matter
        .lines()
        .position(|line| {
            let line = line.trim_start();
            let unquoted = line
                .strip_prefix('"')
                .and_then(|l| l.strip_prefix(key))
                .and_then(|l| l.strip_prefix('"'))
                .or_else(|| line.strip_prefix(key));
            unquoted.is_some_and(|rest| rest.trim_start().starts_with(separator))
        })
        .map_or(1, |index| index + 1)
}

/// The front matter, checked.
struct FrontMatter {
    title: String,
    date: DateTime<Utc>,
    author: Option<String>,
    url: Option<Url>,
    summary: Option<String>,
    image: Option<Url>,
    image_alt: Option<String>,
    tags: Vec<String>,
    draft: bool,
}

impl FrontMatter {
    /// Errors carry the front-matter line (or `None` for "the whole front matter").
    fn from_fields(fields: Fields, syntax: Syntax, options: &ReadOptions) -> Result<Self, (Option<usize>, String)> {
        let mut title = None;
        let mut date = None;
        let mut front = FrontMatter {
            title: String::new(),
            date: DateTime::<Utc>::MIN_UTC,
            author: None,
            url: None,
            summary: None,
            image: None,
            image_alt: None,
            tags: Vec::new(),
            draft: false,
        };
        for (key, value, line) in fields {
            let at = |message: String| (Some(line), message);
            match key.as_str() {
                "title" => {
                    let text = text_value(&key, &value, syntax).map_err(at)?;
                    if text.is_empty() {
                        return Err(at(format!("title is empty; write {}", syntax.example("title", "\"A title\""))));
                    }
                    title = Some(text);
                }
                "date" => {
                    let raw = match &value {
                        Value::Text(text) | Value::Date(text) => text.clone(),
                        other => {
                            return Err(at(format!(
                                "date is {}; write {} or {}",
                                other.kind(),
                                syntax.example("date", "2024-03-12"),
                                syntax.example("date", "2024-03-12T09:00:00+01:00"),
                            )));
                        }
                    };
                    date = Some(dates::parse_front_matter_date(&raw, options.timezone).ok_or_else(|| {
                        at(format!(
                            "date: \"{raw}\" is not a date; write 2024-03-12 or \
                                     2024-03-12T09:00:00+01:00"
                        ))
                    })?);
                }
                "author" => front.author = non_empty(text_value(&key, &value, syntax).map_err(at)?),
                "summary" => front.summary = non_empty(text_value(&key, &value, syntax).map_err(at)?),
                "image_alt" => front.image_alt = non_empty(text_value(&key, &value, syntax).map_err(at)?),
                "url" => {
                    let raw = text_value(&key, &value, syntax).map_err(at)?;
                    if !raw.is_empty() {
                        let url = Url::parse(&raw).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(
                            || {
                                at(format!(
                                    "url: \"{raw}\" is not an http(s) address; write the full \
                                     link, e.g. https://example.org/2024/03/hello"
                                ))
                            },
                        )?;
                        front.url = Some(url);
                    }
                }
                "image" => {
                    let raw = text_value(&key, &value, syntax).map_err(at)?;
                    // A path next to the file cannot be shown in an email: left out.
                    front.image = Url::parse(raw.trim()).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
                }
                "tags" => front.tags = tags_value(&value, syntax).map_err(at)?,
                "draft" => match value {
                    Value::Bool(draft) => front.draft = draft,
                    other => {
                        return Err(at(format!(
                            "draft is {}; write {} or {}",
                            other.kind(),
                            syntax.example("draft", "true"),
                            syntax.example("draft", "false")
                        )));
                    }
                },
                _ => {
                    return Err(at(format!("unknown key \"{key}\" in the front matter; the keys are {KEYS}")));
                }
            }
        }
        front.title = title.ok_or_else(|| {
            (None, format!("the front matter has no title; add {}", syntax.example("title", "\"A title\"")))
        })?;
        front.date = date.ok_or_else(|| {
            (None, format!("the front matter has no date; add {}", syntax.example("date", "2024-03-12")))
        })?;
        Ok(front)
    }
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn text_value(key: &str, value: &Value, syntax: Syntax) -> Result<String, String> {
    match value {
        Value::Text(text) => Ok(clean_text(text)),
        Value::Number(text) | Value::Date(text) => Ok(text.clone()),
        other => Err(format!("{key} is {}; write {}", other.kind(), syntax.example(key, "\"…\""))),
    }
}

fn tags_value(value: &Value, syntax: Syntax) -> Result<Vec<String>, String> {
    let hint = || format!("tags must be a list of words; write {}", syntax.example("tags", "[\"news\", \"events\"]"));
    let raw: Vec<String> = match value {
        Value::List(items) => items
            .iter()
            .map(|item| match item {
                Value::Text(text) | Value::Number(text) => Ok(text.clone()),
                _ => Err(hint()),
            })
            .collect::<Result<_, _>>()?,
        Value::Text(text) => text.split(',').map(str::to_string).collect(),
        Value::Null => Vec::new(),
        _ => return Err(hint()),
    };
    let mut tags: Vec<String> = Vec::new();
    for tag in raw {
        let tag = clean_text(&tag);
        if !tag.is_empty() && !tags.iter().any(|t| t.eq_ignore_ascii_case(&tag)) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

/// CommonMark with tables, footnotes and strikethrough. Raw HTML passes through to the
/// sanitiser like any feed's HTML.
pub(super) fn markdown_to_html(markdown: &str) -> String {
    use pulldown_cmark::{Options, Parser, html};
    let options = Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES | Options::ENABLE_STRIKETHROUGH;
    let parser = Parser::new_ext(markdown, options);
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, parser);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ReadOptions {
        ReadOptions { timezone: chrono_tz::America::New_York }
    }

    fn parse(text: &str) -> Result<Article, SourceError> {
        parse_markdown_article(Path::new("articles/2024-03-12-hello.md"), text.as_bytes(), "articles", &options())
    }

    fn error_of(text: &str) -> String {
        parse(text).expect_err("should fail").to_string()
    }

    #[test]
    fn toml_article() {
        let article = parse(
            "+++\ntitle = \"Hello\"\ndate = 2024-03-12\nauthor = \"Ann\"\nurl = \"https://e.org/hello/\"\n\
             tags = [\"news\", \"News\", \"town\"]\nimage = \"https://e.org/i.jpg\"\nimage_alt = \"A hall\"\n+++\n\
             # Heading\n\nSome *text* with a [link](/about) and ~~old~~.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n\
             Note[^1].\n\n[^1]: The note.\n<script>alert(1)</script>\n",
        )
        .expect("parses");
        assert_eq!(article.id, "2024-03-12-hello.md");
        assert_eq!(article.title, "Hello");
        assert_eq!(article.date.map(|d| d.to_rfc3339()).as_deref(), Some("2024-03-12T04:00:00+00:00"));
        assert_eq!(article.author.as_deref(), Some("Ann"));
        assert_eq!(article.tags, vec!["news".to_string(), "town".to_string()]);
        let html = article.content_html.as_str();
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("<del>old</del>"), "{html}");
        assert!(html.contains("href=\"https://e.org/about\""), "{html}");
        assert!(!html.contains("script"), "{html}");
        assert!(article.summary.starts_with("Heading Some text with a link"), "{}", article.summary);
        let image = article.image.expect("image");
        assert_eq!(image.alt, "A hall");
        assert_eq!(article.source, "articles");
        assert!(!article.draft);
    }

    #[test]
    fn yaml_article() {
        let article = parse(
            "---\ntitle: \"Hi: there\"\ndate: 2024-03-12 09:30\nsummary: Short one.\ndraft: true\n\
             image: images/local.png\ntags: [a, b]\n---\nBody ![pic](https://e.org/p.png)\n",
        )
        .expect("parses");
        assert_eq!(article.title, "Hi: there");
        assert_eq!(article.date.map(|d| d.to_rfc3339()).as_deref(), Some("2024-03-12T13:30:00+00:00"));
        assert_eq!(article.summary, "Short one.");
        assert!(article.draft);
        // The relative image is left out; the body's image stands in, with the title as alt.
        let image = article.image.expect("image from the body");
        assert_eq!(image.url.as_str(), "https://e.org/p.png");
        assert_eq!(image.alt, "pic");
    }

    #[test]
    fn errors_name_file_line_and_fix() {
        assert_eq!(
            error_of("+++\ntitle = \"Hello\"\ndate = \"next tuesday\"\n+++\nbody"),
            "articles/2024-03-12-hello.md:3: date: \"next tuesday\" is not a date; write \
             2024-03-12 or 2024-03-12T09:00:00+01:00"
        );
        assert_eq!(
            error_of("---\ntitle: Hello\ndate: 2024-03-12\ncolour: blue\n---\n"),
            format!(
                "articles/2024-03-12-hello.md:4: unknown key \"colour\" in the front matter; \
                 the keys are {KEYS}"
            )
        );
        let message = error_of("# Just markdown\n");
        assert!(message.starts_with("articles/2024-03-12-hello.md:1: no front matter"), "{message}");
        let message = error_of("+++\ndate = 2024-03-12\n+++\n");
        assert!(message.contains(":1: the front matter has no title; add title = "), "{message}");
        let message = error_of("+++\ntitle = \"x\"\n+++\n");
        assert!(message.contains("no date; add date = 2024-03-12"), "{message}");
        let message = error_of("+++\ntitle = \"x\"\ndate = 2024-03-12\ntags = [1,\n+++\n");
        assert!(
            message.starts_with("articles/2024-03-12-hello.md:4: the TOML front matter does not parse"),
            "{message}"
        );
        let message = error_of("---\ntitle: x\ndate: 2024-03-12\ntitle2: [unclosed\n---\n");
        assert!(message.contains("the YAML front matter does not parse"), "{message}");
        let message = error_of("+++\ntitle = \"x\"\ndate = 2024-03-12\n");
        assert!(message.contains("never closed"), "{message}");
        let message = error_of("+++\ntitle = \"x\"\ndate = 2024-03-12\ndraft = \"yes\"\n+++\n");
        assert!(message.contains(":4: draft is a string"), "{message}");
        let message = error_of("+++\ntitle = \"x\"\ndate = 2024-03-12\nurl = \"/rel\"\n+++\n");
        assert!(message.contains(":4: url: \"/rel\" is not an http(s) address"), "{message}");
        let bad = parse_markdown_article(Path::new("a.md"), b"+++\ntitle = \"\xff\"\n", "x", &options())
            .expect_err("not utf-8");
        assert_eq!(bad.line(), Some(2));
        assert!(!bad.is_unreachable());
    }

    #[tokio::test]
    async fn reads_a_folder_in_name_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect("write");
        };
        write("b.md", "+++\ntitle = \"B\"\ndate = 2024-03-13\n+++\nbody b\n");
        write("a.md", "---\ntitle: A\ndate: 2024-03-12\n---\nbody a\n");
        write("notes.txt", "not an article");
        write(".#a.md", "an editor's lock file");
        std::fs::create_dir(dir.path().join("sub.md")).expect("mkdir");
        write("sub.md/c.md", "+++\ntitle = \"C\"\ndate = 2024-03-14\n+++\n");
        let folder = FolderSource { path: dir.path().to_path_buf(), name: "Pub".into() };
        let articles = read_folder(&folder, &options()).await.expect("reads");
        let titles: Vec<&str> = articles.iter().map(|a| a.title.as_str()).collect();
        assert_eq!(titles, ["A", "B"]);

        let missing = FolderSource { path: dir.path().join("nope"), name: "Pub".into() };
        let error = read_folder(&missing, &options()).await.expect_err("missing");
        assert!(error.is_unreachable());
    }
}
