//! Subscriber CSV files (an import, or a list's file) → subscribers. A header row; `email` is
//! required, `name` and `lists` (names separated by `;`) are optional, every other column is an
//! attribute. Each bad row is reported by its line in the file (the header is line 1) with the
//! reason; the good rows go on.

use std::{
    collections::{BTreeMap, HashSet, VecDeque},
    io::Read,
};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{
    config::FileKeptList,
    domain::{ChoiceName, EmailAddress, ListName, SubscriberName, printable_line},
    store::{ImportPart, NewSubscriber, SubscriberRecord},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<NewSubscriber>,
    pub rejected: Vec<Rejected>,
}

/// The lists a file's rows go on, and those they may not name.
#[derive(Debug, Clone, Default)]
pub struct RowLists {
    /// Added to every row: `import --list`, or a list file's own list.
    pub every_row: Vec<ListName>,
    /// Lists that a file keeps. A row whose `lists` cell names one of them (other than one of
    /// `every_row`) is refused with its line: the list's file would drop it again at the next
    /// send, so taking it would report an import that does not last.
    pub kept: Vec<FileKeptList>,
    /// The editions and topics a row's `edition` and `topics` cells may name.
    pub editions: Vec<ChoiceName>,
    pub topics: Vec<ChoiceName>,
}

impl RowLists {
    /// Every row also goes on `list`.
    pub fn onto(list: Option<ListName>) -> Self {
        Self { every_row: list.into_iter().collect(), kept: Vec::new(), editions: Vec::new(), topics: Vec::new() }
    }

    /// Rows may choose among these editions and topics.
    pub fn offering(mut self, editions: Vec<ChoiceName>, topics: Vec<ChoiceName>) -> Self {
        self.editions = editions;
        self.topics = topics;
        self
    }

    /// No row may name one of `kept`.
    pub fn keeping(mut self, kept: Vec<FileKeptList>) -> Self {
        self.kept = kept;
        self
    }
}

/// What reading a file found beside the good rows.
#[derive(Debug, Default)]
pub struct Report {
    pub rejected: Vec<Rejected>,
    /// Good rows that went on no list at all.
    pub unlisted: u64,
    /// The SHA-256 of the file's bytes as read, in hex.
    pub digest: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsvError {
    #[error("the header row has no `email` column; the first line must name the columns, e.g. email,name,lists")]
    NoEmailColumn,
    #[error("line 1: cannot read the header row: {0}")]
    Header(String),
    #[error("reading the file stopped: {0}")]
    Reading(String),
}

/// Parses the whole file.
pub fn parse(text: &[u8], lists: &RowLists) -> Result<Parsed, CsvError> {
    let mut out = Parsed::default();
    for row in rows(text, lists)? {
        match row {
            Ok((_, r)) => out.rows.push(r),
            Err(r) => out.rejected.push(r),
        }
    }
    Ok(out)
}

/// The file's rows one at a time, each a subscriber with its line or the reason its line is
/// refused (a repeated address among them), so that a file of a million rows is never held as
/// a million subscribers.
pub fn rows<'t>(text: &'t [u8], lists: &'t RowLists) -> Result<Rows<'t, &'t [u8]>, CsvError> {
    Rows::new(text, lists, true)
}

impl<'t, R: Read> Rows<'t, R> {
    /// The rows of what `source` reads, its header read first. Without `repeats`, a row whose
    /// address an earlier row named is not refused here: the store that takes the rows finds it.
    fn new(source: R, lists: &'t RowLists, repeats: bool) -> Result<Self, CsvError> {
        let counted = Counted::new(source);
        let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::Headers).from_reader(counted);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| CsvError::Header(e.to_string()))?
            .iter()
            .map(|h| unguarded(h.trim()).to_ascii_lowercase())
            .collect();
        let email_col = headers.iter().position(|h| h == "email").ok_or(CsvError::NoEmailColumn)?;
        Ok(Rows {
            reader,
            headers,
            email_col,
            lists,
            seen: repeats.then(HashSet::new),
            record: csv::StringRecord::new(),
            stopped: false,
        })
    }

    /// Reads what is left of the source and returns the digest of all of it.
    fn finish(mut self) -> Result<String, CsvError> {
        let counted = self.reader.get_mut();
        std::io::copy(counted, &mut std::io::sink()).map_err(|e| CsvError::Reading(e.to_string()))?;
        Ok(format!("{:x}", std::mem::take(&mut counted.digest).finalize()))
    }
}

pub struct Rows<'t, R: Read> {
    /// The source, read through a counter of its lines: the csv crate miscounts lines in CRLF
    /// files, so they are counted from each record's byte offset.
    reader: csv::Reader<Counted<R>>,
    headers: Vec<String>,
    email_col: usize,
    lists: &'t RowLists,
    /// A digest of each address met so far, when repeats are refused here: a sixth of the
    /// memory of the addresses themselves, with a collision as likely as guessing a 128-bit key.
    /// A streamed file leaves them to the store, where a list of millions costs no memory.
    seen: Option<HashSet<[u8; 16]>>,
    record: csv::StringRecord,
    /// The source failed to read: nothing more comes of it.
    stopped: bool,
}

impl<R: Read> Iterator for Rows<'_, R> {
    type Item = Result<(u64, NewSubscriber), Rejected>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.stopped {
                return None;
            }
            let line = self.reader.position().line() + 1;
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) if e.is_io_error() => {
                    // A read that failed would fail again: the rows end here, this one refused.
                    self.stopped = true;
                    return Some(Err(Rejected { line, reason: format!("the file could not be read on: {e}") }));
                }
                Err(e) => {
                    let line = e.position().map_or(line, |p| p.line());
                    return Some(Err(Rejected { line, reason: format!("not valid CSV: {e}") }));
                }
            }
            let line = self.record.position().map_or(line, |p| self.reader.get_mut().line_at(p.byte()));
            if self.record.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            return Some(match row(&self.headers, self.email_col, &self.record, self.lists) {
                Ok(r) if self.seen.as_mut().is_some_and(|seen| !seen.insert(digest(&r.email))) => {
                    Err(repeated(line, &r.email))
                }
                Ok(r) => Ok((line, r)),
                Err(reason) => Err(Rejected { line, reason }),
            });
        }
    }
}

/// Rows handed to the store at a time.
const CHUNK: usize = 2000;

/// Reads the file's rows on a thread of their own and hands the good ones, in parts, to
/// `consume` (a store's `import_stream` or `sync_list_stream`), which runs meanwhile. Returns what
/// `consume` returned and what the reading found. A bad header is reported before `consume` is
/// called, so a file that is not a subscriber CSV never touches the store.
pub async fn stream<T, F, Fut>(
    text: Vec<u8>,
    lists: RowLists,
    strict: bool,
    consume: F,
) -> Result<(T, Report), CsvError>
where
    F: FnOnce(tokio::sync::mpsc::Receiver<ImportPart>) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let (parts, reading) = start(text, lists, strict)?;
    let consumed = consume(parts).await;
    Ok((consumed, reading.finish().await?))
}

/// Starts reading the file's rows on a thread of their own; they arrive in parts on the
/// receiver, and [`Reading::finish`] says what else the reading found. For several files handed
/// to one store call; [`stream`] is the usual way.
pub fn start(
    text: Vec<u8>,
    lists: RowLists,
    strict: bool,
) -> Result<(tokio::sync::mpsc::Receiver<ImportPart>, Reading), CsvError> {
    // The header is read again by the reading thread: the rows borrow the text, which moves there.
    rows(&text, &lists)?;
    let (to, parts) = tokio::sync::mpsc::channel(2);
    let handle = tokio::task::spawn_blocking(move || send_rows(Rows::new(&text[..], &lists, false)?, strict, to));
    Ok((parts, Reading { handle }))
}

/// [`stream`] of a file read as its rows are taken, never held whole: a list file of millions
/// of rows costs the memory of a few chunks of them.
pub async fn stream_file<T, F, Fut>(
    file: std::fs::File,
    lists: RowLists,
    strict: bool,
    consume: F,
) -> Result<(T, Report), CsvError>
where
    F: FnOnce(tokio::sync::mpsc::Receiver<ImportPart>) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let (parts, reading) = start_file(file, lists, strict).await?;
    let consumed = consume(parts).await;
    Ok((consumed, reading.finish().await?))
}

/// [`start`] of a file read on the reading thread as its rows are taken. Its header is read,
/// and a bad one reported, before this returns.
pub async fn start_file(
    file: std::fs::File,
    lists: RowLists,
    strict: bool,
) -> Result<(tokio::sync::mpsc::Receiver<ImportPart>, Reading), CsvError> {
    let (header_tx, header_rx) = tokio::sync::oneshot::channel();
    let (to, parts) = tokio::sync::mpsc::channel(2);
    let handle = tokio::task::spawn_blocking(move || match Rows::new(std::io::BufReader::new(file), &lists, false) {
        Ok(rows) => {
            let _ = header_tx.send(Ok(()));
            send_rows(rows, strict, to)
        }
        Err(e) => {
            let _ = header_tx.send(Err(e));
            Ok(Report::default())
        }
    });
    match header_rx.await {
        Ok(Ok(())) => Ok((parts, Reading { handle })),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(CsvError::Reading("the reading thread stopped".into())),
    }
}

/// A file being read by [`start`].
pub struct Reading {
    handle: tokio::task::JoinHandle<Result<Report, CsvError>>,
}

impl Reading {
    /// Waits for the reading to end (its receiver must have been read or dropped).
    pub async fn finish(self) -> Result<Report, CsvError> {
        self.handle.await.map_err(|e| CsvError::Reading(e.to_string()))?
    }
}

/// Sends the good rows to `to` as they are read, each with its line, then `End`, and returns
/// the bad rows. With `strict`, the first bad row withholds `End`, so the store imports
/// nothing; the rows still go to the store, which names every repeated address among them,
/// while the reading reports every other bad row.
fn send_rows<R: Read>(
    mut rows: Rows<'_, R>,
    strict: bool,
    to: tokio::sync::mpsc::Sender<ImportPart>,
) -> Result<Report, CsvError> {
    let mut report = Report::default();
    let mut to = Some(to);
    let mut ended = true;
    let mut chunk = Vec::with_capacity(CHUNK);
    for row in rows.by_ref() {
        match row {
            Ok((line, r)) if to.is_some() => {
                if r.lists.is_empty() {
                    report.unlisted += 1;
                }
                chunk.push((line, r));
                if chunk.len() == CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                    // A store that stopped listening has failed and says why itself.
                    if to.as_ref().is_some_and(|t| t.blocking_send(ImportPart::Rows(full)).is_err()) {
                        to = None;
                    }
                }
            }
            Ok(_) => {}
            Err(r) => {
                report.rejected.push(r);
                if strict {
                    ended = false;
                }
            }
        }
    }
    if let Some(to) = to {
        if !chunk.is_empty() {
            let _ = to.blocking_send(ImportPart::Rows(chunk));
        }
        if ended {
            let _ = to.blocking_send(ImportPart::End);
        }
    }
    report.digest = rows.finish()?;
    Ok(report)
}

/// The refusal of a row whose address an earlier row named, at `line`.
pub fn repeated(line: u64, email: &EmailAddress) -> Rejected {
    Rejected { line, reason: format!("{email} appears earlier in the file") }
}

/// Adds the rows the store took out as repeats to `rejected`, keeping the lines' order.
pub fn merge_repeated(rejected: &mut Vec<Rejected>, repeats: &[crate::store::Repeated]) {
    rejected.extend(repeats.iter().map(|r| repeated(r.line, &r.email)));
    rejected.sort_by_key(|r| r.line);
}

/// A cell as `subscribers export` wrote it, without the quote that keeps a spreadsheet from
/// reading it as a formula ([`guard_cell`]), so an export imports back as it was.
fn unguarded(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

/// What a spreadsheet takes for the start of a formula (OWASP's list for CSV injection).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Subscribers as a CSV a person may open in a spreadsheet (`subscribers export`, the
/// dashboard's export): `email`, `name`, `status`, `lists`, then every attribute, no cell a
/// formula.
pub fn export(subs: &[SubscriberRecord]) -> String {
    let mut keys: Vec<&String> = subs.iter().flat_map(|s| s.attributes.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["email", "name", "status", "lists"];
    // The readers' choices, as keys an import reads back, once any reader has made one: a
    // publication without editions or topics exports as it always did.
    let choices = subs.iter().any(|s| s.edition.is_some() || !s.topics.is_empty());
    if choices {
        header.extend(["edition", "topics"]);
    }
    header.extend(keys.iter().map(|k| k.as_str()));
    let _ = w.write_record(header.iter().map(|h| guard_cell(h).into_owned()));
    for s in subs {
        let mut rec = vec![s.email.clone(), s.name.clone(), s.status.to_string(), s.lists.join(";")];
        if choices {
            rec.extend([s.edition.clone().unwrap_or_default(), s.topics.join(";")]);
        }
        rec.extend(keys.iter().map(|k| s.attributes.get(*k).cloned().unwrap_or_default()));
        let _ = w.write_record(rec.iter().map(|c| guard_cell(c).into_owned()));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// A cell for a CSV a person may open in a spreadsheet: one that would start a formula
/// (`=HYPERLINK(…)`) gets a leading quote, which spreadsheets show as text.
pub fn guard_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

fn digest(email: &EmailAddress) -> [u8; 16] {
    let full = Sha256::digest(email.key().as_bytes());
    let mut out = [0; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// A source read through a count of its lines, with a digest of every byte: line numbers come
/// from byte offsets that only grow, so only the bytes read and not yet counted are kept (a
/// buffer's worth and a record), never the whole file. A leading byte-order mark is dropped.
struct Counted<R> {
    inner: R,
    /// The bytes read from offset `counted` on.
    pending: VecDeque<u8>,
    /// Bytes counted so far, and the line breaks among them.
    counted: u64,
    breaks: u64,
    digest: Sha256,
    started: bool,
}

impl<R> Counted<R> {
    fn new(inner: R) -> Self {
        Self { inner, pending: VecDeque::new(), counted: 0, breaks: 0, digest: Sha256::new(), started: false }
    }

    /// The 1-based line of the first character at or after `byte` that is not a line break.
    fn line_at(&mut self, byte: u64) -> u64 {
        // Offsets never go back with the csv reader's records; one that did keeps the count.
        let upto = usize::try_from(byte.saturating_sub(self.counted)).unwrap_or(usize::MAX).min(self.pending.len());
        self.breaks += self.pending.drain(..upto).filter(|b| *b == b'\n').count() as u64;
        self.counted += upto as u64;
        while let Some(b @ (b'\r' | b'\n')) = self.pending.front().copied() {
            self.pending.pop_front();
            self.counted += 1;
            if b == b'\n' {
                self.breaks += 1;
            }
        }
        self.breaks + 1
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = self.inner.read(buf)?;
        self.digest.update(&buf[..n]);
        if !self.started && n > 0 {
            self.started = true;
            if buf[..n].starts_with(b"\xEF\xBB\xBF") {
                buf.copy_within(3..n, 0);
                n -= 3;
            }
        }
        self.pending.extend(&buf[..n]);
        Ok(n)
    }
}

fn row(
    headers: &[String],
    email_col: usize,
    record: &csv::StringRecord,
    row_lists: &RowLists,
) -> Result<NewSubscriber, String> {
    if record.len() != headers.len() {
        return Err(format!("has {} fields where the header has {}", record.len(), headers.len()));
    }
    let email: EmailAddress = unguarded(record.get(email_col).unwrap_or_default())
        .parse()
        .map_err(|e| format!("email: {e}; fix or remove the row"))?;
    let mut name = None;
    let mut lists: Vec<ListName> = row_lists.every_row.clone();
    let mut attributes = BTreeMap::new();
    let (mut edition, mut topics) = (None, None);
    for (h, v) in headers.iter().zip(record.iter()) {
        let v = unguarded(v);
        match h.as_str() {
            // `status` is what `export` writes; an import makes its rows active whatever it says,
            // so it is not kept as an attribute either.
            "email" | "status" => {}
            "name" => name = SubscriberName::parse(v).map_err(|e| format!("name: {e}"))?,
            "lists" => {
                for l in v.split(';').map(str::trim).filter(|l| !l.is_empty()) {
                    let l: ListName = l.parse().map_err(|e| format!("lists: {e}"))?;
                    if lists.contains(&l) {
                        continue;
                    }
                    if let Some(kept) = row_lists.kept.iter().find(|k| k.list == l) {
                        return Err(format!(
                            "lists: `{l}` is kept by its file {}, which would drop this row again at the next send; add the row to that file, or leave `{l}` out of its lists",
                            kept.file.display()
                        ));
                    }
                    lists.push(l);
                }
            }
            "edition" => {
                let v = v.trim();
                edition = Some(if v.is_empty() { None } else { Some(chosen(&row_lists.editions, "edition", v)?) });
            }
            "topics" => {
                let mut keys = v
                    .split(';')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| chosen(&row_lists.topics, "topics", t))
                    .collect::<Result<Vec<_>, _>>()?;
                keys.sort_unstable();
                keys.dedup();
                topics = Some(keys);
            }
            key if !key.is_empty() => {
                // Attributes reach templates, terminals and CSV exports: one printable line.
                attributes.insert(key.to_owned(), printable_line(v).map_err(|e| format!("{key}: {e}"))?);
            }
            _ => {}
        }
    }
    Ok(NewSubscriber { email, name, lists, attributes, edition, topics })
}

/// The key of the one of `offered` that `typed` names, whatever its case; else the row's error,
/// naming those offered.
fn chosen(offered: &[ChoiceName], column: &str, typed: &str) -> Result<String, String> {
    if let Some(c) = offered.iter().find(|c| c.matches(typed)) {
        return Ok(c.key());
    }
    let names: Vec<&str> = offered.iter().map(ChoiceName::as_str).collect();
    Err(if names.is_empty() {
        format!("{column}: `{typed}` is not offered; this publication offers none")
    } else {
        format!("{column}: `{typed}` is not offered; choose among {}", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edition_and_topics_cells_are_read_as_keys_and_unknown_names_are_the_rows_error() {
        let offered = RowLists::default().offering(
            vec!["Daily".parse().expect("name"), "Weekly".parse().expect("name")],
            vec!["Science".parse().expect("name"), "Arts & Culture".parse().expect("name")],
        );
        let text = "email,edition,topics\n\
                    ann@example.org,WEEKLY,science; Arts & Culture;SCIENCE\n\
                    bob@example.org,,\n\
                    cy@example.org,hourly,science\n\
                    di@example.org,daily,sport\n";
        let p = parse(text.as_bytes(), &offered).expect("parses");
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].edition, Some(Some("weekly".into())));
        assert_eq!(p.rows[0].topics, Some(vec!["arts & culture".into(), "science".into()]));
        assert!(p.rows[0].attributes.is_empty(), "the choices are no attributes");
        assert_eq!((&p.rows[1].edition, &p.rows[1].topics), (&Some(None), &Some(vec![])), "the default, every topic");
        assert_eq!(p.rejected.len(), 2);
        assert_eq!(p.rejected[0].line, 4);
        assert!(p.rejected[0].reason.contains("hourly") && p.rejected[0].reason.contains("Daily, Weekly"));
        assert!(p.rejected[1].reason.contains("sport") && p.rejected[1].reason.contains("Science, Arts & Culture"));

        let without = parse(b"email,name\nann@example.org,Ann\n", &offered).expect("parses");
        assert_eq!((&without.rows[0].edition, &without.rows[0].topics), (&None, &None), "kept as stored");
        let none_offered = parse(b"email,edition\nann@example.org,weekly\n", &RowLists::default()).expect("parses");
        assert!(none_offered.rejected[0].reason.contains("offers none"));
    }

    #[test]
    fn reads_columns_and_reports_bad_rows_by_line() {
        let text = "email,name,lists,city\n\
                    ann@example.org,Ann,weekly;news,Yerevan\n\
                    not-an-address,Bob,weekly,\n\
                    \"eve@example.org\",\"Eve\r\nBcc: x@y.org\",weekly,\n\
                    ann@example.org,Ann again,,\n\
                    carl@example.org,Carl,bad list,\n\
                    short@example.org\n";
        let p = parse(text.as_bytes(), &RowLists::default()).expect("parses");
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].attributes.get("city").map(String::as_str), Some("Yerevan"));
        assert_eq!(p.rows[0].lists.len(), 2);
        assert_eq!(p.rows[1].name.as_deref(), Some("Eve Bcc: x@y.org"));
        let lines: Vec<u64> = p.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 6, 7, 8], "{:?}", p.rejected);
        assert!(p.rejected[0].reason.contains("email"));
    }

    #[test]
    fn a_control_character_is_its_rows_error_with_its_line() {
        let text = "email,name,city\nann@example.org,Ann,Oslo\nnul@example.org,Nu\0l,Oslo\nesc@example.org,Eve,Os\u{1b}[2Jlo\nbob@example.org,Bob,\n";
        let p = parse(text.as_bytes(), &RowLists::default()).expect("parses");
        let emails: Vec<&str> = p.rows.iter().map(|r| r.email.as_str()).collect();
        assert_eq!(emails, ["ann@example.org", "bob@example.org"]);
        let lines: Vec<(u64, &str)> = p.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].0, 3);
        assert!(lines[0].1.contains("name") && lines[0].1.contains("U+0000"), "{lines:?}");
        assert_eq!(lines[1].0, 4);
        assert!(lines[1].1.contains("city") && lines[1].1.contains("U+001B"), "{lines:?}");
    }

    #[test]
    fn an_exported_formula_guard_imports_back_as_it_was() {
        assert_eq!(guard_cell("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
        assert_eq!(guard_cell("-1"), "'-1");
        assert_eq!(guard_cell("Ann"), "Ann");
        let text = "email,name,'=tag\n'-ann@example.org,'=1+1,'@x\n";
        let p = parse(text.as_bytes(), &RowLists::default()).expect("parses");
        assert_eq!(p.rows[0].email.as_str(), "-ann@example.org");
        assert_eq!(p.rows[0].name.as_deref(), Some("=1+1"));
        assert_eq!(p.rows[0].attributes.get("=tag").map(String::as_str), Some("@x"));
    }

    #[test]
    fn crlf_files_report_the_same_lines() {
        let text = "email,name\r\nann@example.org,Ann\r\nbad,Bob\r\n\r\nalso-bad,Carl\r\n";
        let p = parse(text.as_bytes(), &RowLists::default()).expect("parses");
        let lines: Vec<u64> = p.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 5]);
    }

    /// What `stream` hands over, part by part, with the parts kept as they came.
    async fn streamed(text: &str, strict: bool) -> Result<(Vec<ImportPart>, Vec<Rejected>), CsvError> {
        stream(text.as_bytes().to_vec(), RowLists::default(), strict, |mut parts| async move {
            let mut got = Vec::new();
            while let Some(p) = parts.recv().await {
                got.push(p);
            }
            got
        })
        .await
        .map(|(parts, report)| (parts, report.rejected))
    }

    #[tokio::test]
    async fn a_stream_ends_with_end_unless_strict_meets_a_bad_row() {
        let mut text = String::from("email\n");
        for i in 0..(CHUNK + 1) {
            text.push_str(&format!("r{i}@example.org\n"));
        }
        text.push_str("bad\n");
        let (parts, rejected) = streamed(&text, false).await.expect("streams");
        let sizes: Vec<Option<usize>> =
            parts.iter().map(|p| if let ImportPart::Rows(r) = p { Some(r.len()) } else { None }).collect();
        assert_eq!(sizes, [Some(CHUNK), Some(1), None]);
        assert_eq!(rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [CHUNK as u64 + 3]);

        let (parts, rejected) = streamed(&text, true).await.expect("streams");
        assert!(!parts.iter().any(|p| matches!(p, ImportPart::End)), "no End after a bad row under --strict");
        assert_eq!(rejected.len(), 1);
    }

    #[tokio::test]
    async fn streamed_rows_carry_their_lines_and_leave_repeats_to_the_store() {
        let text = "email\nAnn@example.org\n\nbad\nann@example.org\nbob@example.org\n";
        let (parts, rejected) = streamed(text, false).await.expect("streams");
        let lines: Vec<(u64, &str)> = parts
            .iter()
            .filter_map(|p| if let ImportPart::Rows(r) = p { Some(r) } else { None })
            .flatten()
            .map(|(line, r)| (*line, r.email.as_str()))
            .collect();
        assert_eq!(lines, [(2, "Ann@example.org"), (5, "ann@example.org"), (6, "bob@example.org")]);
        assert_eq!(rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [4]);
        let whole = parse(text.as_bytes(), &RowLists::default()).expect("parses");
        assert_eq!(whole.rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [4, 5], "the whole text finds it itself");
        assert_eq!(whole.rejected[1].reason, "ann@example.org appears earlier in the file");
    }

    #[tokio::test]
    async fn a_file_read_as_it_streams_reports_what_the_whole_text_does() {
        // A byte-order mark, CRLF, a blank line and rows past a read buffer's length, so that
        // line numbers are counted across many reads.
        let mut text = String::from("\u{FEFF}email,name\r\nann@example.org,Ann\r\nbad,Bob\r\n\r\n");
        for i in 0..3000 {
            text.push_str(&format!("r{i}@example.org,{}\r\n", "n".repeat(i % 50)));
        }
        text.push_str("also-bad,Carl\r\nann@example.org,Again\r\n");
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("list.csv");
        std::fs::write(&path, &text).expect("write");
        let whole = parse(text.as_bytes(), &RowLists::default()).expect("parses");
        let file = std::fs::File::open(&path).expect("open");
        let (rows, report) = stream_file(file, RowLists::default(), false, |mut parts| async move {
            let mut n = 0;
            while let Some(p) = parts.recv().await {
                if let ImportPart::Rows(r) = p {
                    n += r.len();
                }
            }
            n
        })
        .await
        .expect("streams");
        // The repeat of line 2 is left to the store, which knows it by its line: the rows it
        // takes out and the reading's bad rows are what the whole text reports.
        assert_eq!(rows, whole.rows.len() + 1);
        let mut rejected = report.rejected;
        let again: crate::store::Repeated =
            crate::store::Repeated { line: 3006, email: "ann@example.org".parse().expect("address") };
        merge_repeated(&mut rejected, &[again]);
        assert_eq!(rejected, whole.rejected);
        assert_eq!(rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [3, 3005, 3006]);
        assert_eq!(report.digest, format!("{:x}", Sha256::digest(text.as_bytes())));

        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "name\nAnn\n").expect("write");
        let file = std::fs::File::open(&bad).expect("open");
        let result = stream_file(file, RowLists::default(), false, |_| async { panic!("the store was called") }).await;
        assert_eq!(result.err(), Some(CsvError::NoEmailColumn));
    }

    #[tokio::test]
    async fn a_bad_header_never_reaches_the_store() {
        let result =
            stream(b"name\nAnn\n".to_vec(), RowLists::default(), false, |_| async { panic!("the store was called") })
                .await;
        assert_eq!(result.err(), Some(CsvError::NoEmailColumn));
    }

    #[test]
    fn needs_an_email_column() {
        assert_eq!(parse(b"name\nAnn\n", &RowLists::default()).err(), Some(CsvError::NoEmailColumn));
    }

    #[test]
    fn default_lists_apply_to_every_row() {
        let weekly: ListName = "weekly".parse().expect("list");
        let p = parse(b"email\na@example.org\n", &RowLists::onto(Some(weekly.clone()))).expect("parses");
        assert_eq!(p.rows[0].lists, [weekly]);
    }

    #[tokio::test]
    async fn a_row_naming_a_list_its_file_keeps_is_refused_with_its_line() {
        let kept = |name: &str| FileKeptList { list: name.parse().expect("list"), file: format!("{name}.csv").into() };
        let text = "email,lists\na@example.org,readers\nb@example.org,readers;weekly\nc@example.org,\n";
        let lists = RowLists::onto(None).keeping(vec![kept("weekly")]);
        let p = parse(text.as_bytes(), &lists).expect("parses");
        let emails: Vec<&str> = p.rows.iter().map(|r| r.email.as_str()).collect();
        assert_eq!(emails, ["a@example.org", "c@example.org"]);
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].line, 3);
        assert!(p.rejected[0].reason.contains("weekly.csv"), "{:?}", p.rejected);

        // A list file may name its own list, which every one of its rows is on anyway.
        let own = RowLists::onto(Some("weekly".parse().expect("list"))).keeping(vec![kept("weekly")]);
        assert!(parse(text.as_bytes(), &own).expect("parses").rejected.is_empty());

        let (_, report) =
            stream(
                text.as_bytes().to_vec(),
                lists,
                false,
                |mut parts| async move { while parts.recv().await.is_some() {} },
            )
            .await
            .expect("streams");
        assert_eq!(report.unlisted, 1, "c@example.org names no list");
    }
}
