//! Wire copies on a corpus, without the daemon: each copy placed in
//! publication order through the same index and the same choice the store
//! makes (`domain::wire_index`, `domain::wire::choose`), then the figures
//! the end-to-end tests assert (`tests/it/wire_heldout.rs`): stories a
//! dispatch, copy pairs merged, wrong merges. A development tool: it reads
//! corpora in the held-out format and, with `-v`, prints each miss and
//! each wrong merge with the comparison behind it; with `--pairs FILE`, it
//! appends every pair of copies compared directly to FILE as CSV. With
//! `WIRE_EVAL_ORDER=outlet` in the environment, copies are placed one
//! outlet after another instead, as polls written in the order their feeds
//! answered would be: what publication order is worth. With
//! `WIRE_EVAL_MERGE` set, stories placed are then merged as `merge_within`
//! says (an experiment: veille never merges stories).
//!
//! ```sh
//! cargo run --release --example wire_eval -- tests/fixtures/wire/heldout_a.toml
//! cargo run --release --example wire_eval -- -v tests/fixtures/wire/heldout_d.toml
//! cargo run --release --example wire_eval -- --pairs /tmp/pairs.csv tests/fixtures/wire/heldout_*.toml
//! ```

use std::collections::HashMap;

use serde::Deserialize;
use veille::domain::ids::{ItemId, StoryId};
use veille::domain::model::Item;
use veille::domain::text::plain_text;
use veille::domain::wire::{Evidence, Fingerprint, StoryCopies, choose};
use veille::domain::wire_index::{Entry, WireIndex};

#[derive(Deserialize)]
struct Corpus {
    event: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    id: String,
    group: Option<String>,
    copy: Vec<Copy>,
}

#[derive(Deserialize)]
struct Copy {
    outlet: String,
    at: String,
    title: String,
    summary: String,
    content: Option<String>,
}

const WINDOW: i64 = 48 * 3600;

struct Placed {
    at: i64,
    event: usize,
    outlet: String,
    story: i64,
    print: Fingerprint,
}

fn main() {
    let mut verbose = false;
    let mut pairs_to = None;
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-v" => verbose = true,
            "--pairs" => pairs_to = args.next(),
            _ => paths.push(a),
        }
    }
    if paths.is_empty() {
        paths = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]
            .iter()
            .map(|c| format!("tests/fixtures/wire/heldout_{c}.toml"))
            .collect();
    }
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("corpus");
        let corpus: Corpus = toml::from_str(&text).expect("corpus parses");
        let placed = evaluate(&path, &corpus.event, verbose);
        if let Some(to) = &pairs_to {
            write_pairs(to, &path, &corpus.event, &placed);
        }
    }
}

/// Every pair of copies compared directly, one CSV line each (appended to
/// `to`): the corpus, whether the two are one event, one group, and the
/// comparison's fields, for studying where copies and look-alikes part.
fn write_pairs(to: &str, path: &str, events: &[Event], placed: &[Placed]) {
    use std::io::Write;
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(to)
        .expect("pairs file");
    let name = std::path::Path::new(path)
        .file_stem()
        .unwrap()
        .to_string_lossy();
    for (i, a) in placed.iter().enumerate() {
        for b in &placed[i + 1..] {
            let g = |k: usize| events[k].group.as_deref();
            let same = a.event == b.event;
            let group = same || (g(a.event).is_some() && g(a.event) == g(b.event));
            let s = a.print.compare(&b.print);
            writeln!(
                out,
                "{name},{},{},{},{},{},{},{:?},{},{:.4},{},{},{},{},{},{},{},{:.4},{},{},{:.4},{},{:.4},{}",
                events[a.event].id,
                events[b.event].id,
                a.outlet,
                b.outlet,
                u8::from(same),
                u8::from(group),
                s.evidence(),
                u8::from(a.story == b.story),
                s.containment,
                s.shared,
                s.sentences,
                u8::from(s.lead),
                u8::from(s.leads_agree),
                s.body_sentences,
                u8::from(s.lead_only),
                u8::from(s.rest_agrees),
                s.lead_facts,
                u8::from(s.start),
                u8::from(s.shorter_cut),
                s.lead_share,
                s.body_missing,
                s.numbers_missing,
                u8::from(s.lead_numbers_agree),
            )
            .unwrap();
        }
    }
}

fn evaluate(path: &str, events: &[Event], verbose: bool) -> Vec<Placed> {
    let mut copies: Vec<(i64, usize, &Copy)> = events
        .iter()
        .enumerate()
        .flat_map(|(k, e)| {
            e.copy.iter().map(move |c| {
                let at = chrono::DateTime::parse_from_rfc3339(&c.at)
                    .expect("RFC 3339")
                    .timestamp();
                (at, k, c)
            })
        })
        .collect();
    copies.sort_by_key(|(at, _, _)| *at);
    // `WIRE_EVAL_ORDER=outlet`: placed one outlet after another, each in
    // publication order, as feeds answering one by one would write them.
    if std::env::var("WIRE_EVAL_ORDER").as_deref() == Ok("outlet") {
        copies.sort_by(|a, b| a.2.outlet.cmp(&b.2.outlet).then(a.0.cmp(&b.0)));
    }
    let mut index = WireIndex::new(i64::MIN + 1);
    let mut placed: Vec<Placed> = Vec::new();
    let mut next_story = 0;
    for (n, &(at, k, c)) in copies.iter().enumerate() {
        let item = Item {
            title: plain_text(&html_escape::decode_html_entities(&c.title)),
            summary: plain_text(&c.summary),
            content: c.content.as_deref().map(plain_text).unwrap_or_default(),
            ..Item::default()
        };
        let print = Fingerprint::of(&item);
        let mut story = None;
        if print.is_usable() {
            let found = index.candidates(print.keys(), at, WINDOW);
            let views: Vec<StoryCopies<i64>> = found
                .iter()
                .map(|f| StoryCopies {
                    story: f.story_id.0,
                    same_feed: placed
                        .iter()
                        .any(|p| p.story == f.story_id.0 && p.outlet == c.outlet),
                    has_full: f.has_full,
                    gap: f.gap,
                    copies: f
                        .copies
                        .iter()
                        .map(|e| &placed[e.item_id.0 as usize].print)
                        .collect(),
                })
                .collect();
            if let Some(choice) = choose(&print, &views) {
                story = Some(choice.story);
                let theirs = placed.iter().find(|p| p.story == choice.story).unwrap();
                if verbose && theirs.event != k {
                    println!(
                        "WRONG {} ({}) joined {} : {:?} {:?}",
                        events[k].id,
                        c.outlet,
                        events[theirs.event].id,
                        choice.evidence,
                        choice.similarity
                    );
                }
            } else if verbose {
                // A copy of an event already placed that opened a story.
                if let Some(p) = placed.iter().find(|p| p.event == k) {
                    let best = placed
                        .iter()
                        .filter(|q| q.event == k)
                        .map(|q| (q, print.compare(&q.print)))
                        .max_by(|a, b| a.1.containment.total_cmp(&b.1.containment))
                        .unwrap();
                    let found: Vec<(i64, usize)> = index
                        .candidates(print.keys(), at, WINDOW)
                        .iter()
                        .map(|f| (f.story_id.0, f.copies.len()))
                        .collect();
                    println!(
                        "  candidates {found:?}, story {}, keys {}, theirs {}",
                        p.story,
                        print.keys().len(),
                        best.0.print.keys().len()
                    );
                    println!(
                        "MISS {} ({}, cut {}) vs story of {} ({}): {:?}",
                        events[k].id,
                        c.outlet,
                        print.is_cut(),
                        p.outlet,
                        best.0.outlet,
                        best.1
                    );
                }
            }
            let story_id = story.unwrap_or(next_story);
            index.insert(
                print.keys(),
                Entry {
                    story_id: StoryId(story_id),
                    item_id: ItemId(n as i64),
                    at,
                    cut: print.is_cut(),
                },
                true,
            );
        }
        let story_id = story.unwrap_or_else(|| {
            next_story += 1;
            next_story - 1
        });
        placed.push(Placed {
            at,
            event: k,
            outlet: c.outlet.clone(),
            story: story_id,
            print,
        });
    }
    if std::env::var("WIRE_EVAL_MERGE").is_ok() {
        merge_within(&mut placed);
    }
    let (mut pairs, mut merged, mut wrong, mut look_alikes) = (0, 0, 0, 0);
    for (i, a) in placed.iter().enumerate() {
        for b in &placed[i + 1..] {
            if a.event == b.event {
                pairs += 1;
                merged += usize::from(a.story == b.story);
            } else if a.story == b.story {
                wrong += 1;
                let g = |k: usize| events[k].group.as_deref();
                look_alikes += usize::from(g(a.event).is_some() && g(a.event) == g(b.event));
            }
        }
    }
    // Every pair of look-alikes (two events of one group) compared
    // directly, whatever the order: how many give evidence at all.
    let (mut looks, mut copy_ev, mut start_ev) = (0, 0, 0);
    for (i, a) in placed.iter().enumerate() {
        for b in &placed[i + 1..] {
            let g = |k: usize| events[k].group.as_deref();
            if a.event == b.event || g(a.event).is_none() || g(a.event) != g(b.event) {
                continue;
            }
            looks += 1;
            let sim = a.print.compare(&b.print);
            match sim.evidence() {
                Evidence::Copy => copy_ev += 1,
                Evidence::Start => start_ev += 1,
                Evidence::None => continue,
            }
            if verbose {
                println!(
                    "LOOK-ALIKE {} ({}) / {} ({}): {:?} {sim:?}",
                    events[a.event].id,
                    a.outlet,
                    events[b.event].id,
                    b.outlet,
                    sim.evidence()
                );
            }
        }
    }
    println!(
        "  look-alike pairs compared directly: {looks}, read as copies {copy_ev}, as the start of one another {start_ev}"
    );
    let mut stories: HashMap<i64, ()> = HashMap::new();
    for p in &placed {
        stories.insert(p.story, ());
    }
    println!(
        "{path}: {} events, {} copies, {} stories ({:.2} a dispatch), copy pairs merged {merged}/{pairs} ({:.1} %), wrong merges {wrong} ({look_alikes} of look-alikes)",
        events.len(),
        placed.len(),
        stories.len(),
        stories.len() as f64 / events.len() as f64,
        100.0 * merged as f64 / pairs.max(1) as f64,
    );
    placed
}

/// `WIRE_EVAL_MERGE`: an experiment, not what veille does. After placing,
/// two stories merge when no outlet carries both and a copy of one is a
/// copy (`Evidence::Copy`) of the other story's copies within the window,
/// until nothing changes: what clustering that may merge the stories of
/// one write would give.
fn merge_within(placed: &mut [Placed]) {
    loop {
        let mut ids: Vec<i64> = placed.iter().map(|p| p.story).collect();
        ids.sort();
        ids.dedup();
        let mut merge = None;
        'found: for &a in &ids {
            for &b in &ids {
                if a == b {
                    continue;
                }
                let outlets = |s: i64| -> Vec<&str> {
                    placed
                        .iter()
                        .filter(|p| p.story == s)
                        .map(|p| p.outlet.as_str())
                        .collect()
                };
                let (oa, ob) = (outlets(a), outlets(b));
                if oa.iter().any(|o| ob.contains(o)) {
                    continue;
                }
                for x in placed.iter().filter(|p| p.story == b) {
                    let copies: Vec<&Fingerprint> = placed
                        .iter()
                        .filter(|p| p.story == a && (p.at - x.at).abs() <= WINDOW)
                        .map(|p| &p.print)
                        .collect();
                    if copies.is_empty() {
                        continue;
                    }
                    let view = StoryCopies {
                        story: a,
                        same_feed: false,
                        has_full: copies.iter().any(|c| !c.is_cut()),
                        gap: 0,
                        copies,
                    };
                    if let Some(c) = choose(&x.print, &[view])
                        && c.evidence == Evidence::Copy
                    {
                        merge = Some((a, b));
                        break 'found;
                    }
                }
            }
        }
        match merge {
            Some((a, b)) => placed
                .iter_mut()
                .filter(|p| p.story == b)
                .for_each(|p| p.story = a),
            None => return,
        }
    }
}
