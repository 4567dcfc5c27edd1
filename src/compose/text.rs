//! The plain-text part's layout: lines wrapped at 72 columns for plain-text clients, links
//! never broken, runs of blank lines that template loops leave behind folded to one.

/// The width plain-text mail is read at.
pub const WIDTH: usize = 72;

/// Lays out rendered `digest.txt` output for reading in a plain-text client.
pub fn layout(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut blank_run = 0;
    for raw in text.replace("\r\n", "\n").split('\n') {
        let line = raw.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run <= 1 && !out.is_empty() {
                out.push('\n');
            }
            continue;
        }
        blank_run = 0;
        wrap_into(line, &mut out);
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Appends one line, wrapped at 72 columns, with its line end.
pub(crate) fn wrap_into(line: &str, out: &mut String) {
    if textwrap::core::display_width(line) <= WIDTH {
        out.push_str(line);
        out.push('\n');
        return;
    }
    let indent: String = line.chars().take_while(|c| *c == ' ').collect();
    // A list item's continuation lines line up under its text, not under its marker.
    let body = &line[indent.len()..];
    let marker = list_marker_width(body);
    let hanging = format!("{indent}{}", " ".repeat(marker));
    let options = textwrap::Options::new(WIDTH)
        .initial_indent(&indent)
        .subsequent_indent(&hanging)
        .break_words(false)
        .word_separator(textwrap::WordSeparator::AsciiSpace)
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    for piece in textwrap::wrap(body, options) {
        out.push_str(piece.trim_end());
        out.push('\n');
    }
}

/// Width of a leading `1. `, `12. `, `- ` or `* `, else 0.
fn list_marker_width(s: &str) -> usize {
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && s[digits..].starts_with(". ") {
        return digits + 2;
    }
    if s.starts_with("- ") || s.starts_with("* ") {
        return 2;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_72_and_never_breaks_a_link() {
        let url = format!("https://example.org/{}", "a".repeat(90));
        let text = format!("{} {url} end", "word ".repeat(30));
        let out = layout(&text);
        for l in out.lines() {
            assert!(l.chars().count() <= WIDTH || l == url, "{l:?}");
        }
        assert!(out.lines().any(|l| l == url));
    }

    #[test]
    fn folds_blank_runs_and_keeps_list_items_hanging() {
        let out = layout(&format!("a\n\n\n\nb\n3. {}\n", "long words here ".repeat(8)));
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(&lines[..3], ["a", "", "b"]);
        assert!(lines[3].starts_with("3. "));
        assert!(lines[4].starts_with("   ") && !lines[4].starts_with("    "), "{:?}", lines[4]);
    }

    #[test]
    fn counts_wide_characters_by_display_width() {
        let out = layout(&"日本語のテキスト ".repeat(10));
        for l in out.lines() {
            assert!(textwrap::core::display_width(l) <= WIDTH);
        }
    }
}
