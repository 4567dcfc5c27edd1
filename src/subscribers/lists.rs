//! Which lists a subscriber may be put on. A list with a file (`[[list]] file`) is made to
//! match its file before each issue, so whoever joined it any other way would be dropped again
//! at the next send: every way in refuses it, and a reader may join only the publication's lists
//! that no file keeps.

use crate::{
    config::{Config, FileKeptList},
    csv_import::RowLists,
    domain::ListName,
};

/// The publication's lists that no file keeps: those the web form offers, and those a subscriber
/// added without naming a list goes on.
pub fn joinable(config: &Config) -> Vec<ListName> {
    let kept = config.file_kept_lists();
    config.publication.lists.iter().filter(|name| !kept.iter().any(|k| &k.list == *name)).cloned().collect()
}

/// Refuses the first of `lists` that a file keeps, before anything is read or written.
pub fn refuse_file_kept(config: &Config, lists: &[ListName]) -> Result<(), FileKeptList> {
    match config.file_kept_lists().into_iter().find(|k| lists.contains(&k.list)) {
        Some(kept) => Err(kept),
        None => Ok(()),
    }
}

/// True when the publication sends to lists and a file keeps every one of them: whoever is
/// added on no list then gets no issue, and there is no list to suggest instead.
pub fn all_lists_kept_by_files(config: &Config) -> bool {
    !config.publication.lists.is_empty() && joinable(config).is_empty()
}

/// How a list file's rows are read: each goes on the file's list, and none may name another
/// list that a file keeps (the other file would drop it again).
pub fn list_file_rows(config: &Config, list: &ListName) -> RowLists {
    RowLists::onto(Some(list.clone()))
        .keeping(config.file_kept_lists())
        .offering(offered_editions(config), offered_topics(config))
}

/// How an import's rows are read: each also goes on `list`, and none may name a list that a
/// file keeps.
pub(super) fn import_rows(config: &Config, list: Option<ListName>) -> RowLists {
    RowLists::onto(list).keeping(config.file_kept_lists()).offering(offered_editions(config), offered_topics(config))
}

fn offered_editions(config: &Config) -> Vec<crate::domain::ChoiceName> {
    config.editions.iter().map(|e| e.name.clone()).collect()
}

fn offered_topics(config: &Config) -> Vec<crate::domain::ChoiceName> {
    config.topics.iter().map(|t| t.name.clone()).collect()
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Environment;

    pub(in crate::subscribers) fn config(lists: &str, extra: &str) -> Config {
        let text = format!(
            "[publication]\nname = \"Notes\"\nfrom = \"Notes <notes@example.org>\"\n\
             base_url = \"https://news.example.org\"\nlists = {lists}\n\
             [[source]]\nfolder = \"articles\"\n{extra}"
        );
        Config::parse(&text, Path::new("/srv/notes/gazette.toml"), &Environment::default()).expect("config")
    }

    fn names(lists: &[&str]) -> Vec<ListName> {
        lists.iter().map(|l| l.parse().expect("list")).collect()
    }

    #[test]
    fn a_list_a_file_keeps_is_joined_only_through_its_file() {
        let c = config(
            "[\"weekly\", \"readers\"]",
            "[[list]]\nname = \"weekly\"\nfile = \"weekly.csv\"\n[[list]]\nname = \"readers\"\n",
        );
        assert_eq!(joinable(&c), names(&["readers"]));
        assert_eq!(refuse_file_kept(&c, &names(&["readers"])), Ok(()));
        let kept = refuse_file_kept(&c, &names(&["readers", "weekly"])).expect_err("weekly is kept");
        assert_eq!(kept.list.as_ref(), "weekly");
        assert_eq!(kept.file, Path::new("/srv/notes/weekly.csv"));
        assert!(kept.to_string().contains("add them to that file"), "{kept}");
        assert!(!all_lists_kept_by_files(&c));
    }

    #[test]
    fn with_every_list_kept_by_a_file_none_is_joinable() {
        let c = config("[\"weekly\"]", "[[list]]\nname = \"weekly\"\nfile = \"weekly.csv\"\n");
        assert!(joinable(&c).is_empty());
        assert!(all_lists_kept_by_files(&c));
        assert!(!all_lists_kept_by_files(&config("[]", "")));
    }

    #[test]
    fn a_list_files_rows_go_on_its_list_and_may_not_name_another_kept_one() {
        let c = config(
            "[\"a\", \"b\"]",
            "[[list]]\nname = \"a\"\nfile = \"a.csv\"\n[[list]]\nname = \"b\"\nfile = \"b.csv\"\n",
        );
        let rows = list_file_rows(&c, &names(&["a"])[0]);
        assert_eq!(rows.every_row, names(&["a"]));
        assert_eq!(rows.kept.len(), 2);
        let parsed = crate::csv_import::parse(b"email,lists\nx@example.org,\ny@example.org,b\n", &rows).expect("csv");
        assert_eq!(parsed.rows.len(), 1);
        assert_eq!(parsed.rejected.len(), 1);
        assert!(parsed.rejected[0].reason.contains("b.csv"), "{:?}", parsed.rejected);
    }
}
