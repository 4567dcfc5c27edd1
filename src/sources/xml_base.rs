//! The `xml:base` values in scope on each Atom entry, its content and its summary. feed-rs
//! applies `xml:base` to the links it reads, but of the rest it keeps only the raw attribute of
//! `<content>`: by the time a relative link or image inside the content is resolved, a base on
//! the entry (WordPress and Blogger put one on each entry) or on the feed is lost, and
//! `../page.html` resolves against the wrong folder. So the document is read once more here,
//! for the bases alone, in the order feed-rs reads the entries.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::{NsReader, XmlVersion};

const ATOM: &str = "http://www.w3.org/2005/Atom";

/// The `xml:base` values in scope on one entry's parts, outermost first (the feed's, the
/// entry's, the content's own); each one is relative to the ones before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EntryBases {
    pub entry: Vec<String>,
    pub content: Vec<String>,
    pub summary: Vec<String>,
}

/// The bases of each entry of an Atom document, in document order, or `None` when the document
/// is not Atom or cannot be read to its end.
pub(crate) fn atom_entry_bases(document: &str) -> Option<Vec<EntryBases>> {
    let mut reader = NsReader::from_str(document);
    // As feed-rs reads it: `<content xml:base="…"/>` opens and closes like any element.
    reader.config_mut().expand_empty_elements = true;
    // Each open element's own xml:base, outermost first.
    let mut open: Vec<Option<String>> = Vec::new();
    let mut entries = Vec::new();
    // The depth of entries: 2 under `<feed>`, 1 in a document that is a lone `<entry>`.
    let mut entry_depth = 0;
    let mut in_entry = false;
    loop {
        let (namespace, event) = reader.read_resolved_event().ok()?;
        match event {
            Event::Start(element) => {
                // feed-rs reads unprefixed elements of an Atom document as Atom.
                let atom = match namespace {
                    ResolveResult::Bound(Namespace(uri)) => uri == ATOM,
                    ResolveResult::Unbound => true,
                    ResolveResult::Unknown(_) => false,
                };
                open.push(xml_base(&element));
                let depth = open.len();
                let name = element.local_name();
                let in_scope = || open.iter().flatten().cloned().collect::<Vec<String>>();
                if depth == 1 {
                    entry_depth = match name.as_ref() {
                        "feed" => 2,
                        "entry" => 1,
                        _ => return None,
                    };
                }
                if !atom {
                    continue;
                }
                if depth == entry_depth && name.as_ref() == "entry" {
                    let scope = in_scope();
                    entries.push(EntryBases { entry: scope.clone(), content: scope.clone(), summary: scope });
                    in_entry = true;
                } else if in_entry && depth == entry_depth + 1 {
                    let Some(current) = entries.last_mut() else { continue };
                    match name.as_ref() {
                        "content" => current.content = in_scope(),
                        "summary" => current.summary = in_scope(),
                        _ => {}
                    }
                }
            }
            Event::End(_) => {
                if open.len() == entry_depth {
                    in_entry = false;
                }
                open.pop();
            }
            Event::Eof => return Some(entries),
            _ => {}
        }
    }
}

fn xml_base(element: &BytesStart<'_>) -> Option<String> {
    let attribute = element.attributes().flatten().find(|attribute| attribute.key.as_ref() == "xml:base")?;
    let value = match attribute.normalized_value(XmlVersion::Implicit1_0) {
        Ok(value) => value.into_owned(),
        Err(_) => attribute.value.into_owned(),
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| value.to_string()).collect()
    }

    #[test]
    fn bases_nest_from_the_feed_down_to_the_content() {
        let document = r#"<?xml version="1.0"?>
            <feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://example.org/">
              <entry xml:base="blog/2024/03/">
                <title>One</title>
                <summary type="html">Hi</summary>
                <content type="html" xml:base="drafts/">x</content>
              </entry>
              <entry><content type="xhtml" xml:base="https://cdn.example/"><div xmlns="http://www.w3.org/1999/xhtml"
                xml:base="ignored/">y</div></content></entry>
              <entry xml:base="a&amp;b/"/>
              <other:entry xmlns:other="urn:other" xml:base="skipped/"/>
            </feed>"#;
        let bases = atom_entry_bases(document).expect("atom");
        assert_eq!(
            bases,
            [
                EntryBases {
                    entry: strings(&["https://example.org/", "blog/2024/03/"]),
                    content: strings(&["https://example.org/", "blog/2024/03/", "drafts/"]),
                    summary: strings(&["https://example.org/", "blog/2024/03/"]),
                },
                EntryBases {
                    entry: strings(&["https://example.org/"]),
                    content: strings(&["https://example.org/", "https://cdn.example/"]),
                    summary: strings(&["https://example.org/"]),
                },
                EntryBases {
                    entry: strings(&["https://example.org/", "a&b/"]),
                    content: strings(&["https://example.org/", "a&b/"]),
                    summary: strings(&["https://example.org/", "a&b/"]),
                },
            ]
        );
    }

    #[test]
    fn a_lone_entry_and_other_documents() {
        let entry =
            r#"<entry xmlns="http://www.w3.org/2005/Atom" xml:base="https://e.org/x/"><content>c</content></entry>"#;
        assert_eq!(atom_entry_bases(entry).expect("atom")[0].content, strings(&["https://e.org/x/"]));
        assert_eq!(atom_entry_bases("<rss version=\"2.0\"><channel/></rss>"), None);
        assert_eq!(atom_entry_bases("<feed><entry></feed>"), None);
    }
}
