//! SPEC §7: hostile bytes are that feed's problem only. The corpus
//! documents (`tests/corpus/`), mutated at random — bytes flipped, cut
//! short, slices repeated, fragments inserted (entity bombs, encoding
//! declarations mid-document, NULs, huge attributes, stray CDATA) — go
//! through parse → normalise → match as a poll does: never a panic, and
//! every document is read or refused with a reason.
//!
//! `VEILLE_FUZZ_RUNS` sets the number of mutated documents (1,000 by
//! default, a few seconds); `VEILLE_FUZZ_SEED` the first seed. A longer
//! run: `VEILLE_FUZZ_RUNS=100000 cargo test --release --test it hostile`.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use veille::domain::parse::{Document, ParseError, parse};
use veille::domain::zone::Zone;

const FRAGMENTS: [&[u8]; 12] = [
    b"<!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>",
    b"&b;&b;&b;",
    b"<?xml version=\"1.0\" encoding=\"utf-16\"?>",
    b"<?xml version=\"1.0\" encoding=\"shift_jis\"?>",
    b"\0\0\0",
    b"&#xFFFFFFFF;&#0;",
    b"<![CDATA[",
    b"\xff\xfe",
    b"</channel></rss>",
    b"<item><title>",
    b"<entry xmlns=\"http://purl.org/atom/ns#\"><content mode=\"base64\">",
    b"<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">",
];

fn corpus() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut docs = Vec::new();
    let mut folders = vec![root];
    while let Some(dir) = folders.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "xml") {
                docs.push(std::fs::read(path).unwrap());
            }
        }
    }
    docs.sort();
    docs
}

fn mutate(rng: &mut StdRng, mut d: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.random_range(1..=4) {
        let at = rng.random_range(0..=d.len());
        match rng.random_range(0..4) {
            0 if !d.is_empty() => {
                let i = rng.random_range(0..d.len());
                d[i] = rng.random();
            }
            1 => d.truncate(at),
            2 => {
                let end = (at + rng.random_range(1..200)).min(d.len());
                let slice = d[at..end].repeat(rng.random_range(1..6));
                d.splice(at..at, slice);
            }
            _ => {
                let fragment = FRAGMENTS[rng.random_range(0..FRAGMENTS.len())];
                let huge;
                let fragment = if rng.random_bool(0.1) {
                    huge = format!("<a b=\"{}\">", "x".repeat(100_000)).into_bytes();
                    &huge[..]
                } else {
                    fragment
                };
                d.splice(at..at, fragment.iter().copied());
            }
        }
    }
    d
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn mutated_corpus_documents_never_crash_the_parser() {
    let docs = corpus();
    assert!(docs.len() >= 200, "the corpus is there");
    let config = tempfile::tempdir().unwrap();
    let path = config.path().join("config.toml");
    std::fs::write(
        &path,
        "[[feed]]\nname = \"f\"\nurl = \"https://example.org/\"\n\n\
         [[rule]]\nname = \"r\"\nany = [\"test\", \"puces\", \"IA\", \"droits de douane\", \"/ex[a-z]+ple/\"]\nnotify = [\"m\"]\n\n\
         [channel.m]\nkind = \"maildir\"\npath = \"mail\"\n",
    )
    .unwrap();
    let config = veille::config::load(&path, &veille::config::Env::default()).unwrap();
    let runs = env_number("VEILLE_FUZZ_RUNS", 1000);
    let seed = env_number("VEILLE_FUZZ_SEED", 1);
    let (mut read, mut refused) = (0, 0);
    for run in 0..runs {
        let mut rng = StdRng::seed_from_u64(seed + run);
        let original = docs[rng.random_range(0..docs.len())].clone();
        let bytes = mutate(&mut rng, original);
        let doc = Document {
            bytes: &bytes,
            charset: None,
            base_url: Some("https://example.org/feed"),
        };
        match parse(&doc, Zone::Named(chrono_tz::Europe::Paris)) {
            Ok(feed) => {
                read += 1;
                for item in &feed.items {
                    let _ = config.rules.evaluate(item, |_| true);
                }
            }
            Err(ParseError::Panicked) => {
                // Kept for a regression fixture.
                let kept = std::env::temp_dir().join(format!("veille-fuzz-{}.xml", seed + run));
                std::fs::write(&kept, &bytes).unwrap();
                panic!(
                    "the parser panicked on mutated document of seed {} (written to {}): VEILLE_FUZZ_SEED={} VEILLE_FUZZ_RUNS=1",
                    seed + run,
                    kept.display(),
                    seed + run
                )
            }
            Err(_) => refused += 1,
        }
    }
    assert_eq!(read + refused, runs);
    assert!(read > 0 && refused > 0, "{read} read, {refused} refused");
}

/// Two documents pasted together leave an XML declaration mid-document,
/// here with a `>` in a value and another charset: quick-xml panicked on it
/// (found by the mutations above, seed 1017189). It reads, and nothing
/// reaches stderr from a panic.
#[test]
fn a_declaration_mid_document_reads_without_a_panic_on_stderr() {
    let env = crate::harness::TestEnv::new();
    env.write_config(
        "[[feed]]\nname = \"f\"\nurl = \"f.xml\"\n\n[[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"m\"]\n\n\
         [channel.m]\nkind = \"maildir\"\npath = \"mail\"\n",
    );
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/feeds/late_declaration.xml"
    );
    let out = env.veille(&["test", "--feed", fixture]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("Les puces chinoises gagnent du terrain"),
        "{stdout}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
