//! Wire copies end to end (SPEC §4): the corpus in
//! `tests/fixtures/wire/corpus.toml` republished by ten outlets in their
//! house styles, served over loopback, polled by the real binary into a real
//! SQLite file and Maildir. Stories that are different events on the same
//! topic and day (`group`) must never merge; copies must.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;
use wiremock::MockServer;

use crate::harness::{FeedDoc, TestEnv, serve};

#[derive(Debug, Deserialize)]
struct Corpus {
    story: Vec<Story>,
}

#[derive(Debug, Deserialize)]
struct Story {
    id: String,
    group: Option<String>,
    city: String,
    copies: usize,
    hours_ago: Option<i64>,
    title: String,
    titles: Vec<String>,
    paragraphs: Vec<String>,
}

fn corpus() -> Vec<Story> {
    let text = include_str!("../fixtures/wire/corpus.toml");
    toml::from_str::<Corpus>(text).expect("corpus").story
}

/// Twelve outlets, each with a house style (see `republish`).
const OUTLETS: [&str; 12] = [
    "fil-info",
    "le-quotidien",
    "ouest-matin",
    "portail-web",
    "hebdo-region",
    "radio-info",
    "tele-matin",
    "eco-journal",
    "net-actu",
    "gratuit-soir",
    "depeche-courte",
    "region-soir",
];

/// One outlet's item: title, description (HTML), content:encoded (HTML).
struct Copy {
    title: String,
    description: String,
    content: Option<String>,
}

fn p(text: &str) -> String {
    format!("<p>{text}</p>")
}

fn paragraphs(ps: &[&String]) -> String {
    ps.iter().map(|t| p(t)).collect()
}

/// The first sentence of a paragraph.
fn first_sentence(text: &str) -> &str {
    match text.find(". ") {
        Some(at) => &text[..=at],
        None => text,
    }
}

/// How outlet `o` republishes story `s`, as real republications vary: a
/// reworded title, a byline, a dateline, a trimmed lead, paragraphs dropped
/// or reordered, "Lire aussi" and "Publié le" boilerplate, a few words
/// changed, the lead only. `other` is another story's title (for "Lire
/// aussi").
fn republish(o: usize, s: &Story, other: &str) -> Copy {
    let all: Vec<&String> = s.paragraphs.iter().collect();
    let n = all.len();
    let but_last = &all[..n.saturating_sub(1).max(2)];
    let simple = |title: &str, body: String| Copy {
        title: title.to_owned(),
        description: body,
        content: None,
    };
    match o {
        0 => simple(
            &s.title,
            format!(
                "<p>{} (AFP) - {}</p>{}",
                s.city,
                all[0],
                paragraphs(&all[1..])
            ),
        ),
        1 => simple(
            &s.titles[0],
            format!(
                "<p>Par Le Quotidien avec AFP</p>{}{}<p>Lire aussi : {other}</p>{}",
                p(all[0]),
                p(all[1]),
                paragraphs(&all[2..])
            ),
        ),
        2 => simple(
            &format!("{} (AFP)", s.title),
            format!(
                "{}<p>Publié le 24/11/2026 à 09h12, mis à jour à 10h05</p>",
                paragraphs(&all[..2])
            ),
        ),
        3 => {
            let mut order = all.clone();
            order.swap(1, n - 1);
            simple(&s.titles[1], format!("{}<p>© AFP</p>", paragraphs(&order)))
        }
        4 => simple(
            &s.title,
            format!(
                "{}{}",
                p(first_sentence(all[0])),
                paragraphs(&but_last[1..])
            ),
        ),
        5 => Copy {
            title: s.titles[0].clone(),
            description: all[0].clone(),
            content: Some(paragraphs(&all)),
        },
        6 => {
            let mut body = paragraphs(&all);
            for (from, to) in [
                ("a annoncé", "a fait savoir"),
                ("a indiqué", "a précisé"),
                ("a déclaré", "a affirmé"),
                ("selon", "d'après"),
                ("également", "aussi"),
                ("toutefois", "cependant"),
            ] {
                body = body.replace(from, to);
            }
            simple(&s.title, body)
        }
        7 => simple(
            &s.titles[1],
            format!("{}<p>Avec AFP</p>", paragraphs(&all[..2])),
        ),
        8 => simple(
            &s.title,
            format!(
                "{}<p>Retrouvez toute l'actualité en continu sur notre site.</p>",
                paragraphs(but_last)
            ),
        ),
        9 => simple(&s.titles[0], p(all[0])),
        // A summary-only feed: the lead cut short, in another typography,
        // accents written as entities.
        10 => simple(
            &s.titles[1],
            entities(&house_style(&format!("{}…", cut_at(all[0], 200)))),
        ),
        // The lead rewritten (its clauses turned round, other verbs), the
        // rest kept, numbers in another typography.
        _ => simple(
            &s.titles[0],
            format!("{}{}", p(&rewrite_lead(all[0])), paragraphs(&all[1..]))
                .replace("000", "\u{202f}000"),
        ),
    }
}

/// `text` cut at a word boundary before `max` bytes.
fn cut_at(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].rsplit_once(' ').map_or(text, |(head, _)| head)
}

/// Another house's typography of the same facts.
fn house_style(text: &str) -> String {
    let mut out = text
        .replace(" %", "%")
        .replace("« ", "\"")
        .replace(" »", "\"")
        .replace('\'', "’");
    // Decimal commas become points: "2,5" → "2.5".
    let chars: Vec<char> = out.chars().collect();
    out = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let digit = |j: Option<&char>| j.is_some_and(char::is_ascii_digit);
            if c == ','
                && digit(i.checked_sub(1).and_then(|j| chars.get(j)))
                && digit(chars.get(i + 1))
            {
                '.'
            } else {
                c
            }
        })
        .collect();
    out
}

/// Accented letters as HTML entities, as some outlets' feeds have them.
fn entities(html: &str) -> String {
    html.replace('é', "&eacute;")
        .replace('è', "&#232;")
        .replace('à', "&agrave;")
}

/// A lead told another way: the clause after the first comma first, and
/// other verbs.
fn rewrite_lead(lead: &str) -> String {
    let lead = lead.trim_end_matches('.');
    let turned = match lead.split_once(", ") {
        Some((head, tail)) if tail.len() > 20 => {
            let mut t = tail.to_owned();
            if let Some(first) = t.get(..1) {
                t.replace_range(..1, &first.to_uppercase());
            }
            let mut h = head.to_owned();
            if let Some(first) = h.get(..1) {
                h.replace_range(..1, &first.to_lowercase());
            }
            format!("{t} : {h}.")
        }
        _ => format!("{lead}."),
    };
    turned
        .replace("a annoncé", "a fait savoir")
        .replace("a déclaré", "a affirmé")
        .replace("vendredi", "ce vendredi")
}

/// Outlets carrying story `k`: `copies` of them, starting at `k`.
fn outlets_of(k: usize, s: &Story) -> Vec<usize> {
    (0..s.copies).map(|j| (k + j) % OUTLETS.len()).collect()
}

fn link(o: usize, s: &Story) -> String {
    format!(
        "https://{}.example.fr/{}/{}.html",
        OUTLETS[o],
        o * 7 + 3,
        s.id
    )
}

enum Carry {
    /// Each outlet's copy as its house style makes it.
    Paragraphs,
    /// Title and the lead's first sentence only, as many French feeds do.
    TitleAndOneSentence,
}

fn feed_head(o: usize) -> String {
    let name = OUTLETS[o];
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel><title>{name}</title><link>https://{name}.example.fr/</link><description>d</description>\n"
    )
}

const FEED_TAIL: &str = "</channel></rss>\n";

fn item_xml(o: usize, s: &Story, copy: Copy, minutes_ago: i64) -> String {
    let date = (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)).to_rfc2822();
    let content = copy
        .content
        .map(|c| format!("<content:encoded><![CDATA[{c}]]></content:encoded>"))
        .unwrap_or_default();
    format!(
        "<item><title>{}</title><link>{}</link><guid>{}</guid><pubDate>{date}</pubDate><description><![CDATA[{}]]></description>{content}</item>\n",
        html_escape::encode_text(&copy.title),
        link(o, s),
        link(o, s),
        copy.description
    )
}

/// Each outlet's RSS document.
fn feeds(stories: &[Story], carry: &Carry) -> Vec<String> {
    let mut docs: Vec<String> = (0..OUTLETS.len()).map(feed_head).collect();
    for (k, s) in stories.iter().enumerate() {
        let other = &stories[(k + 1) % stories.len()].title;
        for (j, o) in outlets_of(k, s).into_iter().enumerate() {
            let copy = match carry {
                Carry::Paragraphs => republish(o, s, other),
                Carry::TitleAndOneSentence => Copy {
                    title: s.titles[j % 2].clone(),
                    description: first_sentence(&s.paragraphs[0]).to_owned(),
                    content: None,
                },
            };
            let minutes = s.hours_ago.unwrap_or(2) * 60 - 7 * j as i64;
            docs[o].push_str(&item_xml(o, s, copy, minutes));
        }
    }
    for d in &mut docs {
        d.push_str(FEED_TAIL);
    }
    docs
}

/// Serves the outlets' feeds, runs `run --once` and returns the env.
async fn poll_all(stories: &[Story], carry: Carry, wire: bool) -> (TestEnv, MockServer) {
    poll_all_into(stories, carry, wire, "").await
}

/// `poll_all` with more keys for the channel (a digest schedule).
async fn poll_all_into(
    stories: &[Story],
    carry: Carry,
    wire: bool,
    channel: &str,
) -> (TestEnv, MockServer) {
    let server = MockServer::start().await;
    let mut config = format!(
        "[daemon]\ndatabase = \"veille.db\"\nfirst_poll_window = \"3d\"\nwire_copies = {wire}\n\n[channel.boite]\nkind = \"maildir\"\npath = \"mail\"\n{channel}\n[[rule]]\nname = \"tout\"\nany = [\"/\\\\w/\"]\nnotify = [\"boite\"]\n"
    );
    for (o, doc) in feeds(stories, &carry).into_iter().enumerate() {
        let at = format!("/{}.xml", OUTLETS[o]);
        config.push_str(&format!(
            "\n[[feed]]\nname = \"{}\"\nurl = \"{}{at}\"\n",
            OUTLETS[o],
            server.uri()
        ));
        serve(&server, at, FeedDoc::rss(&doc)).await;
    }
    let env = TestEnv::new();
    env.write_config(&config);
    env.ok(&["run", "--once", "--flush-digests"]);
    (env, server)
}

/// A story as a message presents it: its link, the outlets named for it
/// and, when there are several, each one's own link.
struct Presented {
    link: String,
    named: BTreeSet<String>,
    links: BTreeSet<(String, String)>,
}

/// The stories a message presents (one for a per-story message, many for a
/// digest).
fn presented(text: &str) -> Vec<Presented> {
    let mut out: Vec<Presented> = Vec::new();
    let mut named = BTreeSet::new();
    for line in text.lines().map(str::trim_end) {
        if let Some(list) = line
            .strip_prefix("Sources : ")
            .or(line.strip_prefix("Source : "))
        {
            named = list.split(", ").map(str::to_owned).collect();
        } else if let Some(link) = line.strip_prefix("Lien : ") {
            out.push(Presented {
                link: link.to_owned(),
                named: std::mem::take(&mut named),
                links: BTreeSet::new(),
            });
        } else if let (Some(pair), Some(last)) = (line.strip_prefix("- "), out.last_mut())
            && let Some((feed, link)) = pair.split_once(" : ")
            && link.starts_with("https://")
        {
            last.links.insert((feed.to_owned(), link.to_owned()));
        }
    }
    out
}

/// Stories of this corpus presented in two messages, at most. Outlet 10
/// (the lead cut at 200 characters) publishes first where a story starts
/// with it, and outlet 11 (the lead rewritten in other words) next: a text
/// cut short is compared on what it holds (`domain::wire::CUT_MISSING`),
/// and against a lead told in other words it cannot be told from a twin
/// event written on one template (two flood alerts; a held-out corpus had
/// them merged), so some of those copies open a story of their own. The
/// price of no wrong merge, measured here.
const SPLIT_AT_MOST: usize = 3;

/// Asserts that across `messages` every story is presented, at most
/// `SPLIT_AT_MOST` of them twice, each message naming only outlets that
/// carried it and all of them named across its messages.
fn assert_each_story_once_with_its_outlets(stories: &[Story], messages: &[String]) {
    let by_link: HashMap<String, usize> = stories
        .iter()
        .enumerate()
        .flat_map(|(k, s)| outlets_of(k, s).into_iter().map(move |o| (link(o, s), k)))
        .collect();
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    let mut named: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for text in messages {
        for p in presented(text) {
            let k = by_link[&p.link];
            let s = &stories[k];
            let carried: BTreeSet<String> = outlets_of(k, s)
                .into_iter()
                .map(|o| OUTLETS[o].to_owned())
                .collect();
            assert!(p.named.is_subset(&carried), "story {}", s.id);
            named.entry(k).or_default().extend(p.named.iter().cloned());
            if p.named.len() > 1 {
                let own: BTreeSet<(String, String)> = outlets_of(k, s)
                    .into_iter()
                    .filter(|o| p.named.contains(OUTLETS[*o]))
                    .map(|o| (OUTLETS[o].to_owned(), link(o, s)))
                    .collect();
                assert_eq!(p.links, own, "story {}: each outlet's own link", s.id);
            }
            *seen.entry(k).or_default() += 1;
        }
    }
    let mut twice = 0;
    for (k, s) in stories.iter().enumerate() {
        let times = seen.get(&k).copied().unwrap_or(0);
        assert!(
            (1..=2).contains(&times),
            "story {}: presented {times} times",
            s.id
        );
        twice += usize::from(times == 2);
        let carried: BTreeSet<String> = outlets_of(k, s)
            .into_iter()
            .map(|o| OUTLETS[o].to_owned())
            .collect();
        assert_eq!(named[&k], carried, "story {}: every outlet named", s.id);
    }
    assert!(twice <= SPLIT_AT_MOST, "{twice} stories presented twice");
}

/// Which story each stored item landed in, by (outlet, true story).
fn placements(env: &TestEnv, stories: &[Story]) -> HashMap<(usize, usize), i64> {
    let by_link: HashMap<String, (usize, usize)> = stories
        .iter()
        .enumerate()
        .flat_map(|(k, s)| {
            outlets_of(k, s)
                .into_iter()
                .map(move |o| (link(o, s), (o, k)))
        })
        .collect();
    env.rows("SELECT link, story_id FROM items")
        .into_iter()
        .map(|r| {
            let link = r[0].clone().unwrap();
            (by_link[&link], r[1].as_deref().unwrap().parse().unwrap())
        })
        .collect()
}

/// Pairwise figures over items of distinct outlets: (pairs the truth
/// merges, of those merged, wrong merges).
fn pairwise(placed: &HashMap<(usize, usize), i64>) -> (usize, usize, usize) {
    let items: Vec<(&(usize, usize), &i64)> = placed.iter().collect();
    let (mut truth, mut found, mut wrong) = (0, 0, 0);
    for (i, ((o1, k1), s1)) in items.iter().enumerate() {
        for ((o2, k2), s2) in &items[i + 1..] {
            if o1 == o2 {
                continue;
            }
            match (k1 == k2, s1 == s2) {
                (true, true) => {
                    truth += 1;
                    found += 1
                }
                (true, false) => truth += 1,
                (false, true) => wrong += 1,
                (false, false) => {}
            }
        }
    }
    (truth, found, wrong)
}

#[tokio::test]
async fn each_dispatch_is_one_alert_naming_every_outlet_and_no_two_events_merge() {
    let stories = corpus();
    assert!(stories.len() >= 30);
    let groups: BTreeSet<&str> = stories.iter().filter_map(|s| s.group.as_deref()).collect();
    assert!(groups.len() >= 10, "{groups:?}");
    let (env, _server) = poll_all(&stories, Carry::Paragraphs, true).await;

    // Every message is about one story and names exactly its outlets.
    let mails = env.mails("mail");
    assert!(mails.len() >= stories.len() && mails.len() <= stories.len() + SPLIT_AT_MOST);
    let sent = mails.len();
    let texts: Vec<String> = mails.into_iter().map(|m| m.text).collect();
    assert_each_story_once_with_its_outlets(&stories, &texts);

    let (truth, found, wrong) = pairwise(&placements(&env, &stories));
    eprintln!(
        "wire copies, paragraphs: {} stories, {truth} copy pairs, recall {:.1} %, wrong merges {wrong}",
        stories.len(),
        100.0 * found as f64 / truth as f64
    );
    assert_eq!(wrong, 0);
    assert!(
        found * 100 >= truth * 96,
        "{found} of {truth} copy pairs merged"
    );

    // A second run adds nothing.
    env.run_once();
    assert_eq!(env.mails("mail").len(), sent);
}

#[tokio::test]
async fn a_digest_lists_each_dispatch_once_with_all_its_outlets() {
    let stories = corpus();
    let (env, _server) = poll_all_into(
        &stories,
        Carry::Paragraphs,
        true,
        "digest = \"0 8 * * *\"\n",
    )
    .await;
    let mails = env.mails("mail");
    assert_eq!(mails.len(), 1, "one digest");
    assert_each_story_once_with_its_outlets(&stories, &[mails[0].text.clone()]);
}

#[tokio::test]
async fn title_and_one_sentence_merge_only_when_sure() {
    let stories = corpus();
    let (env, _server) = poll_all(&stories, Carry::TitleAndOneSentence, true).await;
    let (truth, found, wrong) = pairwise(&placements(&env, &stories));
    eprintln!(
        "wire copies, title and one sentence: {truth} copy pairs, recall {:.1} %, wrong merges {wrong}",
        100.0 * found as f64 / truth as f64
    );
    assert_eq!(wrong, 0);
    assert!(
        found * 100 >= truth * 95,
        "title and one sentence: {found} of {truth} copy pairs merged"
    );
}

#[tokio::test]
async fn with_wire_copies_off_each_outlet_is_its_own_story() {
    let stories = corpus();
    let (env, _server) = poll_all(&stories, Carry::Paragraphs, false).await;
    let copies: usize = stories.iter().map(|s| s.copies).sum();
    assert_eq!(env.mails("mail").len(), copies);
    let joined = env.number(
        "SELECT (SELECT COUNT(*) FROM items WHERE joined IS NOT NULL) + (SELECT COUNT(*) FROM wire_prints)",
    );
    assert_eq!(joined, 0);
}

fn item_of(copy: &Copy) -> veille::domain::model::Item {
    use veille::domain::text::plain_text;
    veille::domain::model::Item {
        title: plain_text(&copy.title),
        summary: plain_text(&copy.description),
        content: copy.content.as_deref().map(plain_text).unwrap_or_default(),
        ..Default::default()
    }
}

/// The measurements behind `domain::wire`'s choices, on every pair of
/// copies (same story, distinct outlets) and every pair of look-alikes
/// (distinct stories of one group): containment against Jaccard, and each
/// condition of the verdict. Asserts the verdict's figures on this corpus.
#[test]
fn similarity_of_copies_and_look_alikes() {
    use veille::domain::wire::{Evidence, Fingerprint};
    let stories = corpus();
    let prints: Vec<Vec<(usize, Fingerprint)>> = stories
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let other = &stories[(k + 1) % stories.len()].title;
            (0..OUTLETS.len())
                .map(|o| (o, Fingerprint::of(&item_of(&republish(o, s, other)))))
                .collect()
        })
        .collect();
    let jaccard = |a: &Fingerprint, b: &Fingerprint| {
        let (a, b) = (a.shingles(), b.shingles());
        let inter = a.iter().filter(|h| b.binary_search(h).is_ok()).count();
        inter as f64 / (a.len() + b.len() - inter) as f64
    };
    let (mut copies, mut low_jaccard, mut missed) = (0, 0, Vec::new());
    let (mut min_copy_containment, mut below) = (1.0f64, 0);
    for (k, ps) in prints.iter().enumerate() {
        for (i, (o1, a)) in ps.iter().enumerate() {
            for (o2, b) in &ps[i + 1..] {
                copies += 1;
                if jaccard(a, b) < 0.5 {
                    low_jaccard += 1;
                }
                let sim = a.compare(b);
                min_copy_containment = min_copy_containment.min(sim.containment);
                if sim.containment < veille::domain::wire::MIN_CONTAINMENT {
                    below += 1;
                }
                // The start of a dispatch counts too: a story takes it
                // when a full copy corroborates it (`wire::judge`).
                if sim.evidence() == Evidence::None {
                    missed.push(format!(
                        "{} {}/{}: {sim:?}",
                        stories[k].id, OUTLETS[*o1], OUTLETS[*o2]
                    ));
                }
            }
        }
    }
    let (mut looks, mut max_containment, mut wrong, mut above) = (0, 0.0f64, Vec::new(), 0);
    let mut starts = 0;
    for (k1, s1) in stories.iter().enumerate() {
        for (k2, s2) in stories.iter().enumerate().skip(k1 + 1) {
            if s1.group.is_none() || s1.group != s2.group {
                continue;
            }
            for (o1, a) in &prints[k1] {
                for (o2, b) in &prints[k2] {
                    looks += 1;
                    let sim = a.compare(b);
                    max_containment = max_containment.max(sim.containment);
                    if sim.containment >= veille::domain::wire::MIN_CONTAINMENT {
                        above += 1;
                    }
                    // A copy is a verdict on its own; the start of a
                    // dispatch (an analysis quoting a cut copy's lead) is
                    // weighed with the story's other copies by
                    // `wire::judge`, which the end-to-end tests here check.
                    if sim.evidence() == Evidence::Start {
                        starts += 1;
                    }
                    if sim.evidence() == Evidence::Copy {
                        wrong.push(format!(
                            "{}/{} {}/{}: {sim:?}",
                            s1.id, OUTLETS[*o1], s2.id, OUTLETS[*o2]
                        ));
                    }
                }
            }
        }
    }
    eprintln!(
        "copy pairs {copies}: Jaccard < 0.5 for {low_jaccard}, lowest containment {min_copy_containment:.2}, {below} under MIN_CONTAINMENT, not recognised {}\nlook-alike pairs {looks}: highest containment {max_containment:.2}, taken for copies {}",
        missed.len(),
        wrong.len()
    );
    eprintln!(
        "look-alike pairs at or above MIN_CONTAINMENT, kept apart by the other conditions: {above}; read as the start of one another: {starts}"
    );
    for m in missed.iter().chain(&wrong) {
        eprintln!("  {m}");
    }
    assert!(wrong.is_empty());
    assert!(
        missed.len() * 20 <= copies,
        "fewer than 95 % of copy pairs recognised"
    );
}

/// Outlet `o`'s feed carrying its copy of `s` alone, or nothing.
fn one_copy(o: usize, s: &Story, carried: bool) -> FeedDoc {
    let item = match carried {
        true => item_xml(o, s, republish(o, s, "Autre titre"), 30),
        false => String::new(),
    };
    FeedDoc::rss(&format!("{}{item}{FEED_TAIL}", feed_head(o)))
}

fn two_outlets_config(server: &MockServer, hold: &str) -> String {
    format!(
        "[daemon]\ndatabase = \"veille.db\"\n\n[channel.boite]\nkind = \"maildir\"\npath = \"mail\"\nhold = \"{hold}\"\n\n[[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"boite\"]\n\n[[feed]]\nname = \"{}\"\nurl = \"{}/a.xml\"\n\n[[feed]]\nname = \"{}\"\nurl = \"{}/b.xml\"\n",
        OUTLETS[0],
        server.uri(),
        OUTLETS[1],
        server.uri()
    )
}

#[tokio::test]
async fn a_copy_after_the_alert_is_recorded_and_shown_never_alerted() {
    let stories = corpus();
    let s = &stories[0];
    let server = MockServer::start().await;
    serve(&server, "/a.xml", one_copy(0, s, true)).await;
    serve(&server, "/b.xml", one_copy(1, s, false)).await;
    let env = TestEnv::new();
    env.write_config(&two_outlets_config(&server, "0s"));
    env.run_once();
    assert_eq!(env.mails("mail").len(), 1);

    server.reset().await;
    serve(&server, "/a.xml", one_copy(0, s, true)).await;
    serve(&server, "/b.xml", one_copy(1, s, true)).await;
    // `veille test --feed --wire` tells beforehand, with the figures;
    // without `--wire` the report is about matching only.
    let b = format!("{}/b.xml", server.uri());
    let report = String::from_utf8(env.ok(&["test", "--feed", &b]).stdout).unwrap();
    assert!(!report.contains("Wire copies"), "{report}");
    let report = String::from_utf8(env.ok(&["test", "--feed", &b, "--wire"]).stdout).unwrap();
    assert!(
        report.contains(&format!("joins story 1 \"{}\": ", s.title))
            && report.contains("leads agree"),
        "{report}"
    );
    env.run_once();
    assert_eq!(env.mails("mail").len(), 1, "the late copy is not alerted");
    let report = String::from_utf8(env.ok(&["test", "--feed", &b, "--wire"]).stdout).unwrap();
    assert!(
        report.contains("its link is already story 1: link identity decides"),
        "{report}"
    );
    let late = &env.status_json()["late_copies"];
    assert_eq!(late.as_array().map(Vec::len), Some(1), "{late}");
    assert_eq!(
        (late[0]["feeds"].as_i64(), late[0]["after_alert"].as_i64()),
        (Some(2), Some(1))
    );
    let text = String::from_utf8(env.ok(&["status"]).stdout).unwrap();
    assert!(text.contains("2 outlets, 1 after the alert"), "{text}");
}

/// The daemon polls the first outlet; the second, added to the config 2 s
/// later (a reload, whose first poll of the new feed brings the copy),
/// carries the story too. (The copies of one pass are written together,
/// so a copy must come in a later pass to test `hold`.)
async fn run_until_a_message(hold: &str) -> crate::harness::Mail {
    let stories = corpus();
    let s = &stories[0];
    let server = MockServer::start().await;
    serve(&server, "/a.xml", one_copy(0, s, true)).await;
    serve(&server, "/b.xml", one_copy(1, s, true)).await;
    let env = TestEnv::new();
    let both = two_outlets_config(&server, hold);
    let first = &both[..both.rfind("[[feed]]").expect("two feeds")];
    env.write_config(first);
    let daemon =
        crate::harness::Running::spawn(env.command(&["run"]).stderr(std::process::Stdio::null()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while env.try_number("SELECT COUNT(*) FROM items") != Some(1) {
        assert!(
            std::time::Instant::now() < deadline,
            "the first copy stored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    env.write_config(&both);
    // SAFETY: a signal to a child this test started and still holds.
    unsafe { libc::kill(daemon.id() as libc::pid_t, libc::SIGHUP) };
    while env.mails("mail").is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Time for a wrong second message to show.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let mut mails = env.mails("mail");
    assert_eq!(mails.len(), 1, "one message for the story");
    mails.remove(0)
}

#[tokio::test]
async fn hold_waits_for_copies_so_the_one_message_names_them() {
    let held = run_until_a_message("8s").await;
    assert!(
        held.text
            .contains(&format!("Sources : {}, {}", OUTLETS[0], OUTLETS[1])),
        "{}",
        held.text
    );
    let at_once = run_until_a_message("0s").await;
    let sources = at_once
        .text
        .lines()
        .find(|l| l.starts_with("Source"))
        .unwrap_or_default();
    assert_eq!(
        sources.trim_end(),
        format!("Source : {}", OUTLETS[0]),
        "without hold, sent before the copy came"
    );
}

/// Half the outlets polled first, the other half back after an outage with
/// their backlog: every dispatch was published 60 hours ago, more than
/// `wire_window` before either poll, yet copies join by their publication
/// dates as they would have live.
#[tokio::test]
async fn a_backlog_fetched_after_an_outage_clusters_like_a_live_one() {
    let mut stories = corpus();
    for s in &mut stories {
        s.hours_ago = Some(s.hours_ago.unwrap_or(2) + 60);
    }
    let docs = feeds(&stories, &Carry::Paragraphs);
    let server = MockServer::start().await;
    let back_later = |o: usize| o % 2 == 1;
    let serve_all = |outage: bool| {
        let (server, docs) = (&server, &docs);
        async move {
            server.reset().await;
            for (o, doc) in docs.iter().enumerate() {
                let body = match outage && back_later(o) {
                    true => format!("{}{FEED_TAIL}", feed_head(o)),
                    false => doc.clone(),
                };
                serve(server, format!("/{}.xml", OUTLETS[o]), FeedDoc::rss(&body)).await;
            }
        }
    };
    let mut config = String::from(
        "[daemon]\ndatabase = \"veille.db\"\nfirst_poll_window = \"7d\"\n\n[channel.boite]\nkind = \"maildir\"\npath = \"mail\"\n\n[[rule]]\nname = \"tout\"\nany = [\"/\\\\w/\"]\nnotify = [\"boite\"]\n",
    );
    for name in OUTLETS {
        config.push_str(&format!(
            "\n[[feed]]\nname = \"{name}\"\nurl = \"{}/{name}.xml\"\n",
            server.uri()
        ));
    }
    let env = TestEnv::new();
    env.write_config(&config);
    serve_all(true).await;
    env.run_once();
    serve_all(false).await;
    env.run_once();
    let (truth, found, wrong) = pairwise(&placements(&env, &stories));
    assert_eq!(wrong, 0);
    assert_eq!(found, truth, "every copy in the backlog joined its story");
    assert_eq!(
        env.mails("mail").len(),
        stories.len(),
        "one message a dispatch"
    );
}

/// A daemon's first pass too large to hold (80 feeds of 500 items: more
/// than the 32,768 items it holds before it writes) is written in several
/// groups while the other feeds are fetched: every item is stored, and the
/// copies of one dispatch that every feed carries, which land in different
/// groups, are one story. `run --once` holds the whole pass and writes it
/// in one group, in publication order.
#[tokio::test]
async fn a_first_pass_too_large_to_hold_is_written_in_groups_and_loses_nothing() {
    const FEEDS: usize = 80;
    const ITEMS: usize = 500;
    let dispatch = "Le fabricant taïwanais de puces TSMC a annoncé mardi un investissement de 12 milliards de dollars dans une nouvelle usine en Arizona, où la production doit commencer en 2027. Le groupe, premier fondeur mondial de semi-conducteurs, répond ainsi aux demandes de Washington, qui veut rapatrier une partie de la fabrication des composants les plus avancés. L'usine emploiera quelque 1 900 personnes, a précisé la direction dans un communiqué. Les autorités de l'État ont salué une décision qui consolide la place de la région dans l'industrie électronique.";
    let server = MockServer::start().await;
    let date = crate::harness::recent(2);
    let mut config = String::from(
        "[daemon]\ndatabase = \"veille.db\"\nper_host = 16\nconcurrency = 16\n\n\
         [channel.boite]\nkind = \"maildir\"\npath = \"mail\"\n\n\
         [[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"boite\"]\n",
    );
    for f in 0..FEEDS {
        let items: Vec<(String, String, String, String)> = (0..ITEMS)
            .map(|i| match i {
                0 => (
                    format!("f{f}-dispatch"),
                    format!("TSMC investit en Arizona ({f})"),
                    format!("https://outlet{f}.example.org/tsmc"),
                    dispatch.to_owned(),
                ),
                _ => (
                    format!("f{f}-{i}"),
                    format!("Brève {i} du site {f}"),
                    format!("https://outlet{f}.example.org/b/{i}"),
                    format!("Texte court {i}."),
                ),
            })
            .collect();
        let rows: Vec<(&str, &str, &str, &str, &str)> = items
            .iter()
            .map(|(g, t, l, d)| {
                (
                    g.as_str(),
                    t.as_str(),
                    l.as_str(),
                    d.as_str(),
                    date.as_str(),
                )
            })
            .collect();
        let at = format!("/f{f}.xml");
        serve(
            &server,
            at.as_str(),
            FeedDoc::rss(&crate::harness::rss(&format!("Site {f}"), &rows)),
        )
        .await;
        config.push_str(&format!(
            "\n[[feed]]\nname = \"Site {f}\"\nurl = \"{}{at}\"\n",
            server.uri()
        ));
    }
    let groups = |log: &str| log.matches("polls written together").count();
    let all = (FEEDS * ITEMS) as i64;
    let dispatch = "SELECT COUNT(DISTINCT story_id) FROM items WHERE item_key LIKE '%dispatch%'";

    let env = TestEnv::new();
    env.write_config(&config);
    let log = std::fs::File::create(env.path("log")).unwrap();
    let _daemon =
        crate::harness::Running::spawn(env.command(&["--log-level", "debug", "run"]).stderr(log));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while env.try_number("SELECT COUNT(*) FROM items") != Some(all) || env.mails("mail").is_empty()
    {
        assert!(std::time::Instant::now() < deadline, "every item stored");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(env.path("log")).unwrap();
    assert!(groups(&log) >= 2, "written in {} group(s)", groups(&log));
    assert_eq!(
        env.number(dispatch),
        1,
        "the dispatch's copies are one story"
    );
    assert_eq!(env.mails("mail").len(), 1, "one message for the dispatch");

    let once = TestEnv::new();
    once.write_config(&config);
    let out = once.ok(&["--log-level", "debug", "run", "--once"]);
    assert_eq!(groups(&String::from_utf8_lossy(&out.stderr)), 1);
    assert_eq!(once.number("SELECT COUNT(*) FROM items"), all);
    assert_eq!(once.number(dispatch), 1);
}
