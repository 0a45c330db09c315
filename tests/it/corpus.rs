//! SPEC §7: veille reads every item a lenient reader reads. Real-world
//! documents from public parser test suites (`tests/corpus/`, with their
//! licences) are parsed the way a poll parses them, and each must yield at
//! least the entries Python's feedparser reads from it
//! (`tests/corpus/expected.tsv`, written by `regenerate.py`), unless veille
//! refuses it on purpose (`refused.tsv`, with the reason): then the parse
//! must fail with an error, or count the items it could not read — never
//! yield fewer items in silence.

use std::collections::BTreeMap;
use std::path::Path;

use veille::domain::parse::{Document, parse};
use veille::domain::zone::Zone;

fn table(name: &str) -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (path, value) = l.split_once('\t').expect("path<TAB>value");
            (path.to_owned(), value.to_owned())
        })
        .collect()
}

#[test]
fn every_document_yields_what_feedparser_reads_or_a_stated_refusal() {
    let expected = table("expected.tsv");
    let refused = table("refused.tsv");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut problems = Vec::new();
    let (mut read, mut as_many) = (0, 0);
    for (path, entries) in &expected {
        let entries: usize = entries.parse().expect("a count");
        let bytes = std::fs::read(root.join(path)).unwrap();
        let doc = Document {
            bytes: &bytes,
            charset: None,
            base_url: Some("https://example.org/feed"),
        };
        let parsed = parse(&doc, Zone::Named(chrono_tz::Europe::Paris));
        if entries == 0 {
            continue;
        }
        read += 1;
        let told = |unread: usize, items: usize| unread + items >= entries;
        match (parsed, refused.get(path)) {
            (Ok(feed), None) if feed.items.len() >= entries => as_many += 1,
            (Ok(feed), Some(_)) if feed.items.len() >= entries => problems.push(format!(
                "{path}: reads {} items now: take it off refused.tsv",
                feed.items.len()
            )),
            // Fewer items, said: the poll logs it and `status` shows it.
            (Ok(feed), Some(_)) if told(feed.unread_items, feed.items.len()) => {}
            (Err(_), Some(_)) => {}
            (Ok(feed), None) => problems.push(format!(
                "{path}: {} items ({} said unread), feedparser reads {entries}",
                feed.items.len(),
                feed.unread_items
            )),
            (Err(e), None) => {
                problems.push(format!("{path}: refused ({e}), feedparser reads {entries}"))
            }
            (Ok(feed), Some(reason)) => problems.push(format!(
                "{path}: listed as refused ({reason}) but reads {} of {entries} items in silence",
                feed.items.len()
            )),
        }
    }
    assert!(read >= 200, "the corpus is there: {read} documents");
    assert!(
        problems.is_empty(),
        "{as_many} of {read} documents read in full; {}:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
