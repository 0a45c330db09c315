//! Wire copies (SPEC §4): the same dispatch republished by several outlets,
//! told apart from different events on the same topic.
//!
//! An item's text (title, summary, content) is prepared once: normalised as
//! for matching (accents folded, lower case), cut into sentences and words,
//! with boilerplate dropped (bylines, "Lire aussi", "Publié le …", agency
//! tags and datelines). Each sentence becomes a set of word 3-shingles
//! (hashed); the numbers of the text are kept apart.
//!
//! Why shingles and containment rather than MinHash-Jaccard or SimHash: a
//! copy is often a *cut* of the dispatch (lead only, last paragraphs
//! dropped), so the two texts' Jaccard similarity is low (measured on the
//! test corpus, see `tests/it/wire.rs`) although every sentence of the short
//! one is in the long one. Jaccard-tuned LSH bands and SimHash, which
//! summarise the whole text, miss such pairs; containment of the shorter in
//! the longer does not. Candidates are found with the shingles whose hash is
//! 0 modulo `SAMPLE`: a choice that depends on the shingle only, so a shingle
//! both texts share is sampled in both, whatever else they hold.
//!
//! A candidate is confirmed (`Similarity::is_copy`) when the shorter text
//! is mostly inside the longer one, the numbers of the sentences they share
//! agree, and the two open the same way: one's lead (first sentence after
//! the title) is in the other, or, where an outlet rewrote the lead, what
//! follows it is nearly all in the other text, from its beginning. Each
//! condition is there for a kind of look-alike that is another event (see
//! `is_copy`).
//!
//! House style never reads as different facts: numbers are compared in one
//! form (`125 000`, `125.000`, `125'000` and `125000` are one number; `5,5`
//! and `5.5` another), and punctuation, quotes, dashes, apostrophes,
//! accents, ligatures and entities are gone before words are cut.

use xxhash_rust::xxh3::xxh3_64;

use super::ids::StoryId;
use super::model::Item;
use super::text::{Normal, ends_cut, is_word_char, normalize_into, without_more};

/// Words per shingle. Three keeps a reworded word from spoiling more than
/// three shingles while two common words rarely make a shingle alone.
const SHINGLE: usize = 3;
const _: () = assert!(SHINGLE == 3, "`combine` takes three words");

/// One shingle in `SAMPLE` is an index key (about 8 keys for a four-sentence
/// lead; a copy sharing 20 shingles shares at least one key with
/// probability 1 − (7/8)^20 = 93 %, 40 shingles 99.5 %).
pub const SAMPLE: u32 = 8;
/// In the opening (the first three sentences after the title, where a copy
/// mostly keeps the dispatch's lead), one shingle in `OPENING_SAMPLE`: a
/// summary cut after 200 characters holds some 25 shingles, and at one in
/// eight it had no key in common with its full copies one time in thirty
/// (held-out corpus E: copies that could not find their story). A multiple
/// of it divides `SAMPLE`, so a key of the rest is a key of the opening too.
/// The fourth sentence too (where `LEAD_AT` looks) was tried: no corpus
/// changed.
pub const OPENING_SAMPLE: u32 = 4;
const _: () = assert!(SAMPLE.is_multiple_of(OPENING_SAMPLE));

/// Thresholds of `is_copy`, with the reasons beside them.
///
/// The shorter text must share this share of its shingles with the longer
/// (its body's alone counts when higher: outlets rewrite titles). On the
/// tuning corpus (`tests/it/wire.rs`), every one of 2,508 copy pairs of
/// twelve house styles reaches it (the lowest, 0.62, a live blog's copy);
/// 103 of 2,304 look-alike pairs do too (a brief quoted whole by an
/// analysis; two polls on one template), and the other conditions keep
/// every one of them apart.
pub const MIN_CONTAINMENT: f64 = 0.6;
/// …and at least this many shingles: below it there is too little text to
/// be sure (a title and a short sentence).
pub const MIN_SHARED: usize = 15;
/// …in at least this many sentences found in the other text (half their
/// shingles there): one sentence of shared context is not a copy.
pub const MIN_SENTENCES: usize = 2;
/// Two texts opening on one sentence (whose leads agree) need only this
/// share of the shorter inside the longer: outlets add their own sentences
/// around a dispatch they keep the opening of.
pub const LEADS_AGREE_CONTAINMENT: f64 = 0.4;
/// …when the lead is kept: this share of one lead's shingles in the other.
/// Twin events told with one template (two flood alerts, two recalls) have
/// leads that agree by half, differing by names; a copy keeps its lead.
pub const LEAD_KEPT: f64 = 0.8;
/// Two texts whose leads were both rewritten need this many body sentences
/// in common.
pub const BODY_SENTENCES: usize = 3;
/// Where a copy keeps the dispatch's lead: among its first four sentences
/// after the title. Above the agency's lead, outlets put a chapô of their
/// own (one or two sentences), a byline, a photo caption, a "Publié le…
/// mis à jour le…" line. Found further down, it may be a sentence an
/// analysis quotes or a weekly's introduction (with "anywhere", a held-out
/// corpus merged two events through a lead quoted fourth; the other
/// conditions keep that pair apart now). Measured for texts cut short on
/// the development corpora A–E, H and I: 31 copy pairs had the lead fourth
/// and no look-alike did; at the fifth were 9 copy pairs and 7 look-alike
/// pairs. For two whole texts, three instead of four merged fewer copy
/// pairs on five corpora (I 64 → 60 %) and kept no look-alike more apart.
const LEAD_AT: usize = 4;
/// A sentence is found in the other text when this share of its shingles is.
const SENTENCE_FOUND: f64 = 0.5;
/// Numbers of the shared sentences of the shorter text missing from the
/// longer, at most: a daily market close and the next day's share their
/// sentences' wording and differ by their figures; copies do not. Only
/// shared sentences count, so that a sentence an outlet added ("mis à jour
/// le 25 à 10 h 05") does not make a copy differ.
pub const MAX_NUMBERS_MISSING: f64 = 0.2;
/// Where an outlet rewrote the lead: the shorter text's sentences after
/// its lead must be at least this much (by shingles) in the longer…
pub const REST_FOUND: f64 = 0.8;
/// …by at least this many of them…
const REST_SENTENCES: usize = 2;
/// …and the shared sentences must start within the first few of both
/// texts: a follow-up that repeats the dispatch's background opens with
/// paragraphs of its own, so what it shares comes late…
const OPENING: usize = 4;
/// …and the rewritten lead must tell the same facts: this share of one
/// lead's words (names, figures, nouns: stopwords aside) stands in the
/// other's first two sentences. A follow-up's lead tells new ones.
pub const LEAD_FACTS: f64 = 0.5;

/// A text cut short is the start of the other when this share of its
/// shingles (title aside) stands in the other's opening: its first
/// `LEAD_AT + 1` sentences after the title, where a copy keeps the
/// dispatch's lead under a chapô of its own, and the sentence after.
pub const CUT_FOUND: f64 = 0.8;
/// A text cut short is compared on what it holds, and an aggregator
/// carries the dispatch's words as they are: at most this many of its body
/// shingles may be missing from the other text (the word the cut split,
/// and one more). Twin events told with one template — two flood alerts,
/// two matches of one round — differ by a name or two, three shingles each.
pub const CUT_MISSING: usize = 2;

/// Agency names, dropped wherever they stand ("(AFP)", "avec AFP").
fn is_agency(w: &str) -> bool {
    matches!(
        w,
        "afp"
            | "reuters"
            | "belga"
            | "ats"
            | "dpa"
            | "ansa"
            | "efe"
            | "xinhua"
            | "apa"
            | "bloomberg"
    )
}

/// Sentences that start with these words are boilerplate.
const BOILERPLATE: &[&[&str]] = &[
    &["a", "voir"],
    &["publie", "le"],
    &["publie", "a"],
    &["mis", "a", "jour"],
    &["modifie", "le"],
    &["abonnez", "vous"],
    &["retrouvez"],
    &["suivez", "nous"],
    &["photo"],
    &["credit"],
    &["copyright"],
    &["cet", "article"],
    &["source"],
];

/// Words too common to make a shingle alone: a shingle of three of them is
/// dropped. (A `match` compiles to a few comparisons; this runs for every
/// word of every new item.)
fn is_stopword(w: &str) -> bool {
    matches!(
        w,
        "a" | "au"
            | "aux"
            | "ce"
            | "ces"
            | "d"
            | "dans"
            | "de"
            | "des"
            | "du"
            | "en"
            | "est"
            | "et"
            | "il"
            | "ils"
            | "l"
            | "la"
            | "le"
            | "les"
            | "n"
            | "ne"
            | "on"
            | "ont"
            | "par"
            | "pas"
            | "pour"
            | "qu"
            | "que"
            | "qui"
            | "s"
            | "sa"
            | "se"
            | "son"
            | "sont"
            | "sur"
            | "un"
            | "une"
            | "y"
    )
}

/// What is kept of an item's text to recognise its copies.
///
/// Shingles and numbers are kept as 16-bit hashes: they are only compared
/// between two texts of at most `MAX_SENTENCES` sentences (some hundreds of
/// shingles), where a chance collision moves a share by a fraction of a
/// percent, and it halves what is stored for every item. Index keys, looked
/// up among all the window's stories, keep 32 bits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// The parts of `Parts` but the keys, one after the other in the order
    /// they are stored (`to_bytes`): each sentence's end in the shingles,
    /// each sentence's end in the numbers, the shingles, the numbers, the
    /// opening words, the lead's figures. One allocation an item, not six:
    /// a `run --once` holds every new item's fingerprint until it writes
    /// them (20,000 on 1,000 feeds).
    halves: Box<[u16]>,
    /// The index keys: shingles whose 32-bit hash is 0 modulo `SAMPLE`,
    /// sorted, distinct.
    keys: Box<[u32]>,
    /// Sentences (the title's included).
    sentences: u16,
    /// Words of the opening (lead and the sentence after it).
    opening: u16,
    /// Where the lead's words end in the opening.
    lead_end: u16,
    /// Figures of the lead.
    figures: u16,
    /// The feed's text stops before the dispatch does (a summary cut short,
    /// no content): it is the start of the dispatch, compared on what it
    /// holds (see `Evidence::Start`).
    cut: bool,
}

/// A fingerprint as it is made, sentence after sentence.
#[derive(Default)]
struct Parts {
    /// Shingle hashes, sentence after sentence, each sentence's sorted;
    /// sentence 0 is the title (possibly empty).
    shingles: Vec<u16>,
    /// Where each sentence ends in `shingles`.
    ends: Vec<u16>,
    /// Hashes of each sentence's numbers (in their one form), sentence
    /// after sentence, each sentence's sorted and distinct; the title has
    /// none.
    numbers: Vec<u16>,
    /// Where each sentence's numbers end in `numbers`.
    number_ends: Vec<u16>,
    /// The words of the lead (sentence 1), then those of sentence 2, each
    /// part sorted and distinct, stopwords left out.
    opening: Vec<u16>,
    /// Where the lead's words end in `opening`.
    lead_end: u16,
    /// The figures of the lead (digits only), sorted and distinct.
    lead_figures: Vec<u16>,
    /// The index keys, sorted and distinct once made.
    keys: Vec<u32>,
}

/// Sentences fingerprinted at most (the title included): copies are judged
/// on their beginning, and a 64 KiB article costs no more than a long one.
const MAX_SENTENCES: usize = 40;

/// How two fingerprints compare, the shorter text against the longer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    /// Share of the shorter text's shingles found in the longer.
    pub containment: f64,
    /// Shingles in both.
    pub shared: usize,
    /// Sentences of the shorter text found in the longer.
    pub sentences: usize,
    /// One text's lead is found in the other's first `LEAD_AT` sentences.
    pub lead: bool,
    /// The two leads are one sentence (half the shingles of one in the
    /// other).
    pub leads_agree: bool,
    /// Share of the numbers of the shorter text's shared sentences missing
    /// from the longer.
    pub numbers_missing: f64,
    /// Sentences after the title of the shorter text found in the longer.
    pub body_sentences: usize,
    /// The shorter text is its lead alone.
    pub lead_only: bool,
    /// The lead differs but what follows agrees (see `REST_FOUND`).
    pub rest_agrees: bool,
    /// Share of one lead's words in the other's opening, the higher of
    /// the two ways.
    pub lead_facts: f64,
    /// The shorter text is cut short and nearly all of it stands in the
    /// longer's opening, its lead among the first sentences: the start of
    /// the same dispatch (see `CUT_FOUND`).
    pub start: bool,
    /// The shorter text is the one cut short.
    pub shorter_cut: bool,
    /// Share of one lead's shingles in the other lead, the higher way.
    pub lead_share: f64,
    /// Shingles of the shorter text's body (title aside) missing from the
    /// longer.
    pub body_missing: usize,
    /// Each lead's numbers stand in the other text (the longer's lead's
    /// only when the shorter is not cut short: it may stop before them).
    /// A next-day follow-up repeats the dispatch's lead and background
    /// with the new toll or score in its lead; copies keep the figures.
    pub lead_numbers_agree: bool,
}

/// What one stored copy says about a new item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Evidence {
    /// Nothing: another text.
    None,
    /// One of the two is a text cut short, and it is the start of the
    /// other. Alone, it cannot tell a copy whose outlet wrote its own chapô
    /// from an analysis quoting the lead; `choose` weighs it against the
    /// story's other copies.
    Start,
    /// A copy of the same dispatch.
    Copy,
}

impl Similarity {
    /// The verdict: a copy of the same dispatch.
    ///
    /// The less the two openings agree, the more of the body they must
    /// share: two texts opening on one sentence need little more; one
    /// whose lead stands somewhere in the other needs most of its text
    /// there and a second sentence (a brief quoted whole by an analysis
    /// shares one); two whose leads were both rewritten need several body
    /// sentences in common (a follow-up opens with its own lead and new
    /// paragraphs, so it shares less than `MIN_CONTAINMENT`). Numbers
    /// always have to agree.
    pub fn is_copy(&self) -> bool {
        // A lead found under a chapô of the outlet's own: the chapô may
        // round the dispatch's figures. Elsewhere a lead that tells other
        // figures is another event (the next day's toll).
        let figures = self.lead_numbers_agree;
        // A text cut short that holds the lead alone is at most the start
        // of a dispatch (an explainer opening on that lead holds it too),
        // judged with the story's other copies (`judge`).
        if self.shorter_cut && self.body_missing > CUT_MISSING {
            return false;
        }
        let opening = if self.leads_agree
            && self.lead_share >= LEAD_KEPT
            // A cut text that holds its lead alone is at most the start of
            // a dispatch (`Evidence::Start`), unless its title is found too:
            // then it shares two sentences. Taking it as the start even
            // then kept 9 of corpus I's 21 wrong pairs apart (an explainer
            // opening on the dispatch's lead) and merged fewer copy pairs
            // on four corpora (I 64 → 59 %, F 91 → 89 %).
            && (self.sentences >= MIN_SENTENCES || (self.lead_only && !self.shorter_cut))
        {
            figures && self.containment >= LEADS_AGREE_CONTAINMENT
        } else if self.lead {
            self.containment >= MIN_CONTAINMENT && self.sentences >= MIN_SENTENCES
        } else {
            figures && self.containment >= MIN_CONTAINMENT && self.body_sentences >= BODY_SENTENCES
        };
        self.shared >= MIN_SHARED
            && self.numbers_missing <= MAX_NUMBERS_MISSING
            && (opening || (figures && self.rest_agrees))
    }

    /// Short of a copy, what a full copy must share with a new text for the
    /// start of the dispatch (a cut copy of the story) to count: the lead
    /// where a copy keeps it, a second sentence, the numbers, and some of
    /// the text.
    fn corroborates(&self) -> bool {
        self.lead
            && self.sentences >= MIN_SENTENCES
            && self.shared >= MIN_SHARED
            && self.numbers_missing <= MAX_NUMBERS_MISSING
            && self.containment >= LEADS_AGREE_CONTAINMENT
    }

    /// What this comparison says (see `Evidence`).
    pub fn evidence(&self) -> Evidence {
        if self.is_copy() {
            Evidence::Copy
        } else if self.start
            && self.body_missing <= CUT_MISSING
            && self.shared >= MIN_SHARED
            && self.numbers_missing <= MAX_NUMBERS_MISSING
            && self.lead_numbers_agree
        {
            Evidence::Start
        } else {
            Evidence::None
        }
    }
}

/// A stored story as a new item is compared with it: its copies published
/// within `wire_window` of the item, those sharing the most index keys with
/// it first (at most `wire_index::MAX_COPIES`).
#[derive(Debug, Clone)]
pub struct StoryCopies<'a, S> {
    pub story: S,
    /// The item's feed already carries the story.
    pub same_feed: bool,
    /// The story has, within the window, a copy that is not cut short.
    pub has_full: bool,
    /// Seconds between the item and the story's nearest copy.
    pub gap: i64,
    pub copies: Vec<&'a Fingerprint>,
}

/// The story a new item joins as a wire copy, and the comparison that
/// decided it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice<S> {
    pub story: S,
    /// Which of the story's copies (`StoryCopies::copies`) decided.
    pub copy: usize,
    pub similarity: Similarity,
    pub evidence: Evidence,
}

/// How a new item stands against one story, judged on all the story's
/// copies (SPEC §4: a story is all its copies): the best evidence any copy
/// gives, and its comparison. The start of a dispatch (`Evidence::Start`)
/// counts when the new item is the text cut short, when the story has no
/// full copy yet, or when one of its full copies corroborates it (the lead
/// and a second sentence in common): a new full text that shares only a
/// cut copy's lead and nothing of the full copies is an analysis quoting
/// the dispatch, not a republication of it.
pub fn judge<S: Copy>(new: &Fingerprint, story: &StoryCopies<S>) -> Option<Choice<S>> {
    let mut best: Option<Choice<S>> = None;
    let compared: Vec<Similarity> = story.copies.iter().map(|c| new.compare(c)).collect();
    // A full copy that keeps the lead where the new text has it and shares
    // another sentence with it, without being enough for a copy alone.
    let corroborated = story
        .copies
        .iter()
        .zip(&compared)
        .any(|(c, s)| !c.cut && s.corroborates());
    for (i, similarity) in compared.into_iter().enumerate() {
        let evidence = match similarity.evidence() {
            Evidence::Start if new.cut || !story.has_full || corroborated => Evidence::Start,
            Evidence::Start => Evidence::None,
            e => e,
        };
        let better = best.is_none_or(|b| {
            (evidence, similarity.containment) > (b.evidence, b.similarity.containment)
        });
        if evidence > Evidence::None && better {
            best = Some(Choice {
                story: story.story,
                copy: i,
                similarity,
                evidence,
            });
        }
    }
    best.filter(|_| !story.same_feed)
}

/// The story a new item joins, among those it was compared with: the one
/// whose copies it resembles most (SPEC §4, see `preferred`); `None` for a
/// story of its own.
pub fn choose<S: Copy>(new: &Fingerprint, stories: &[StoryCopies<S>]) -> Option<Choice<S>> {
    let rank = |(c, gap): &(Choice<S>, i64)| (c.evidence, c.similarity.containment, *gap);
    stories
        .iter()
        .filter_map(|s| judge(new, s).map(|c| (c, s.gap)))
        // On a tie, the first found, as the store's stable sort keeps it.
        .reduce(|a, b| match preferred(rank(&b), rank(&a)) {
            std::cmp::Ordering::Greater => b,
            _ => a,
        })
        .map(|(c, _)| c)
}

/// How two stories an item may join rank, each as (evidence, share of the
/// item found, seconds to the story's nearest copy): a copy before the
/// start of a dispatch, then the larger share, then the story with a copy
/// published nearest the item. Copies of one dispatch come out within
/// hours; an explainer that opens on yesterday's dispatch's lead, which an
/// aggregator's cut excerpt cannot tell apart from it, comes a day later,
/// minutes after its own copies. `Greater`: `a` is preferred.
pub fn preferred(a: (Evidence, f64, i64), b: (Evidence, f64, i64)) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(b.2.cmp(&a.2))
}

/// The fingerprint a new item is stored and compared with, if it can have
/// copies: dated at most `keep` before `now` (or undated) and with enough
/// text. Copies are joined by their publication dates, whenever they are
/// fetched, so `keep` reaches as far back as a poll may bring items that
/// alert (see `keep_prints`).
pub fn fingerprint_new(
    item: &Item,
    now: i64,
    keep: i64,
    scratch: &mut Scratch,
) -> Option<Fingerprint> {
    if item.date().is_some_and(|d| now - d.timestamp() > keep) {
        return None;
    }
    Some(Fingerprint::of_in(item, scratch)).filter(Fingerprint::is_usable)
}

/// Buffers a fingerprint is read with, kept by the caller between items.
#[derive(Default)]
pub struct Scratch(Buffers);

/// Which story a new item goes to (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Its normalised link is already this story's: link identity wins.
    ByLink(StoryId),
    /// It joins this story as a wire copy.
    Copy(StoryId),
    /// A story of its own.
    New,
}

/// The precedence SPEC §4 sets: a known link decides; else the story the
/// item joins as a copy (looked up only when no link decided, and only by
/// the caller, which owns the index: see `choose`); else a new story.
pub fn place<E>(
    by_link: Option<StoryId>,
    copy_of: impl FnOnce() -> Result<Option<StoryId>, E>,
) -> Result<Placement, E> {
    if let Some(story) = by_link {
        return Ok(Placement::ByLink(story));
    }
    Ok(match copy_of()? {
        Some(story) => Placement::Copy(story),
        None => Placement::New,
    })
}

/// The date an item counts from, for a story's wire window and for the
/// publication order polls recorded together are placed in: the item's,
/// else `now`; never in the future.
pub fn wire_date(item: &Item, now: i64) -> i64 {
    item.date().map_or(now, |d| d.timestamp()).min(now)
}

/// How long a story's fingerprint is kept, in seconds: a first poll may
/// bring items up to `first_poll_window` old, a later one (after an outage)
/// up to `max_age`, and a copy may come `window` after its story's first
/// item; never longer than `retention`, which prunes the items themselves.
pub fn keep_prints(window: i64, first_poll_window: i64, max_age: i64, retention: i64) -> i64 {
    (first_poll_window.max(max_age).saturating_add(window)).min(retention)
}

impl Fingerprint {
    /// The fingerprint of an item's title, summary and content. A sentence
    /// seen twice (summary repeated in content) counts once.
    pub fn of(item: &Item) -> Fingerprint {
        Fingerprint::of_in(item, &mut Scratch::default())
    }

    /// The same, with buffers reused from item to item (most of a
    /// fingerprint's allocations otherwise): one `Scratch` for a poll's
    /// items.
    pub fn of_in(item: &Item, scratch: &mut Scratch) -> Fingerprint {
        let b = &mut scratch.0;
        let mut fp = Parts::default();
        b.read(&item.title);
        // The title is one sentence, whatever its punctuation. Outlets
        // rewrite titles, figures included ("douze" becomes "12"): the
        // numbers compared are the body's.
        let mut title = Vec::new();
        b.each_sentence(|words| title.extend_from_slice(words));
        fp.push(&mut b.shingles, &title, false);
        // A summary-only item's "read more" link is not the dispatch's
        // text: its words would be shingles no copy has.
        let summary = match item.content.trim().is_empty() {
            true => without_more(&item.summary),
            false => &item.summary,
        };
        for field in [summary, &item.content] {
            b.read(field);
            let mut shingles = std::mem::take(&mut b.shingles);
            b.each_sentence(|words| {
                if fp.ends.len() < MAX_SENTENCES {
                    fp.push(&mut shingles, words, true);
                }
            });
            b.shingles = shingles;
        }
        fp.keys.sort_unstable();
        fp.keys.dedup();
        fp.pack(item.content.trim().is_empty() && ends_cut(&item.summary))
    }

    /// The feed's text of this item stops before the dispatch does.
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// Each sentence's end in `shingle_runs`.
    fn ends(&self) -> &[u16] {
        &self.halves[..self.sentences as usize]
    }

    /// Each sentence's end in `number_runs`.
    fn number_ends(&self) -> &[u16] {
        let n = self.sentences as usize;
        &self.halves[n..2 * n]
    }

    /// Shingle hashes, sentence after sentence, each sentence's sorted;
    /// sentence 0 is the title (possibly empty).
    fn shingle_runs(&self) -> &[u16] {
        let at = 2 * self.sentences as usize;
        &self.halves[at..at + self.ends().last().map_or(0, |&e| e as usize)]
    }

    /// Hashes of each sentence's numbers, sentence after sentence, each
    /// sentence's sorted and distinct; the title has none.
    fn number_runs(&self) -> &[u16] {
        let at = 2 * self.sentences as usize + self.shingle_runs().len();
        &self.halves[at..at + self.number_ends().last().map_or(0, |&e| e as usize)]
    }

    /// The words of the lead, then those of sentence 2, each part sorted
    /// and distinct, stopwords left out.
    fn opening(&self) -> &[u16] {
        let end = self.halves.len() - self.figures as usize;
        &self.halves[end - self.opening as usize..end]
    }

    /// The figures of the lead (digits only), sorted and distinct.
    fn lead_figures(&self) -> &[u16] {
        &self.halves[self.halves.len() - self.figures as usize..]
    }

    fn sentence(&self, i: usize) -> &[u16] {
        span(self.shingle_runs(), self.ends(), i)
    }

    fn sentence_numbers(&self, i: usize) -> &[u16] {
        span(self.number_runs(), self.number_ends(), i)
    }

    /// The first sentence after the title.
    fn lead(&self) -> Option<&[u16]> {
        (self.sentence_count() > 1).then(|| self.sentence(1))
    }

    fn sentence_count(&self) -> usize {
        self.sentences as usize
    }

    /// Every shingle, sorted and distinct.
    pub fn shingles(&self) -> Vec<u16> {
        let mut all = self.shingle_runs().to_vec();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The index keys, sorted and distinct.
    pub fn keys(&self) -> &[u32] {
        &self.keys
    }

    /// Whether there is enough text to recognise a copy by.
    pub fn is_usable(&self) -> bool {
        self.shingle_runs().len() >= MIN_SHARED
    }

    /// The two texts compared, the shorter against the longer.
    pub fn compare(&self, other: &Fingerprint) -> Similarity {
        let (a, b) = (self.shingles(), other.shingles());
        let (short, long, s_fp, l_fp) = if a.len() <= b.len() {
            (a, b, self, other)
        } else {
            (b, a, other, self)
        };
        let inside =
            |hs: &[u16], text: &[u16]| hs.iter().filter(|h| text.binary_search(h).is_ok()).count();
        let found = |sentence: &[u16], text: &[u16]| {
            !sentence.is_empty()
                && inside(sentence, text) as f64 >= SENTENCE_FOUND * sentence.len() as f64
        };
        let shared = inside(&short, &long);
        // Outlets rewrite titles: what the body shares counts on its own.
        let body = s_fp.shingles_from(1);
        let body_inside = inside(&body, &long);
        let containment = ratio(shared, short.len()).max(ratio(body_inside, body.len()));
        let s_found: Vec<bool> = (0..s_fp.sentence_count())
            .map(|i| found(s_fp.sentence(i), &long))
            .collect();
        // A lead counts as found where a copy keeps it: as the other's lead,
        // or right after a chapô the outlet wrote. Found further down, it
        // may be a sentence an analysis quotes.
        let lead = |fp: &Fingerprint, other: &Fingerprint| {
            let opening = other.shingles_between(1, LEAD_AT + 1);
            fp.lead().is_some_and(|s| found(s, &opening))
        };
        let leads_agree = match (s_fp.lead(), l_fp.lead()) {
            (Some(a), Some(b)) => found(a, b) || found(b, a),
            _ => false,
        };
        let share = |hs: &[u16], text: &[u16]| ratio(inside(hs, text), hs.len());
        let lead_share = match (s_fp.lead(), l_fp.lead()) {
            (Some(a), Some(b)) => share(a, b).max(share(b, a)),
            _ => 0.0,
        };
        let mut numbers: Vec<u16> = (0..s_fp.sentence_count())
            .filter(|&i| s_found[i])
            .flat_map(|i| s_fp.sentence_numbers(i).iter().copied())
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        let l_numbers = l_fp.all_numbers();
        // At most a third of a lead's figures may be missing from the
        // other text (one of three: a date an outlet dropped).
        let lead_numbers_in = |fp: &Fingerprint, numbers: &[u16]| {
            let figures = fp.lead_figures();
            let missing = figures
                .iter()
                .filter(|n| numbers.binary_search(n).is_err())
                .count();
            3 * missing <= figures.len()
        };
        let lead_numbers_agree = lead_numbers_in(s_fp, &l_numbers)
            && (s_fp.cut || lead_numbers_in(l_fp, &s_fp.all_numbers()));
        let missing = numbers
            .iter()
            .filter(|n| l_numbers.binary_search(n).is_err())
            .count();
        // A rewritten lead: the sentences after the shorter text's lead are
        // nearly all in the longer, and both texts share from their opening.
        let rest = s_fp.shingles_from(2);
        let rest_sentences = (2..s_fp.sentence_count()).filter(|&i| s_found[i]).count();
        let opens = |fp: &Fingerprint, text: &[u16]| {
            (1..fp.sentence_count().min(OPENING + 1)).any(|i| found(fp.sentence(i), text))
        };
        let lead_facts = s_fp.lead_facts_in(l_fp).max(l_fp.lead_facts_in(s_fp));
        // A text cut short, compared on what it holds: nearly all of it in
        // the other's opening, its lead among the first sentences there.
        let short_lead_in_long = lead(s_fp, l_fp);
        let start = s_fp.cut && short_lead_in_long && {
            let body = s_fp.shingles_from(1);
            let opening = l_fp.shingles_between(1, LEAD_AT + 2);
            inside(&body, &opening) as f64 >= CUT_FOUND * body.len() as f64
        };
        let rest_agrees = rest_sentences >= REST_SENTENCES
            && lead_facts >= LEAD_FACTS
            && inside(&rest, &long) as f64 >= REST_FOUND * rest.len() as f64
            && opens(s_fp, &long)
            && opens(l_fp, &short);
        Similarity {
            containment,
            shared,
            sentences: s_found.iter().filter(|&&f| f).count(),
            body_sentences: s_found.iter().skip(1).filter(|&&f| f).count(),
            lead_only: s_fp.sentence_count() == 2,
            lead: short_lead_in_long || lead(l_fp, s_fp),
            leads_agree,
            numbers_missing: ratio(missing, numbers.len()),
            rest_agrees,
            lead_facts,
            start,
            shorter_cut: s_fp.cut,
            lead_share,
            body_missing: body.len() - body_inside,
            lead_numbers_agree,
        }
    }

    /// Share of this text's lead words found in `other`'s opening.
    fn lead_facts_in(&self, other: &Fingerprint) -> f64 {
        let lead = &self.opening()[..self.lead_end as usize];
        let (a, b) = other.opening().split_at(other.lead_end as usize);
        let n = lead
            .iter()
            .filter(|w| a.binary_search(w).is_ok() || b.binary_search(w).is_ok())
            .count();
        ratio(n, lead.len())
    }

    /// The shingles of sentences `from..`, sorted and distinct.
    fn shingles_from(&self, from: usize) -> Vec<u16> {
        self.shingles_between(from, usize::MAX)
    }

    /// The shingles of sentences `from..to`, sorted and distinct.
    fn shingles_between(&self, from: usize, to: usize) -> Vec<u16> {
        let shingles = self.shingle_runs();
        let at = |i: usize| match i {
            0 => 0,
            _ => self
                .ends()
                .get(i - 1)
                .map_or(shingles.len(), |&e| e as usize),
        };
        let mut out = shingles[at(from)..at(to).max(at(from))].to_vec();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Every number, sorted and distinct.
    fn all_numbers(&self) -> Vec<u16> {
        let mut all = self.number_runs().to_vec();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The stored form, little-endian u16s unless said: `VERSION`, the
    /// sentence, key and opening-word counts, `lead_end`, the flags (1: cut
    /// short; not in version `0xF002`), the count of the lead's figures
    /// (not in `0xF002`), each sentence's
    /// end in the shingles, each sentence's end in the numbers, the
    /// shingles, the numbers, the opening words, the lead's figures, then
    /// the keys (u32). Stored fingerprints of another version are not read
    /// (`from_bytes` says `None`): they only let copies join stories first
    /// seen before an upgrade, for one `wire_window`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let head = [
            VERSION,
            self.sentences,
            self.keys.len() as u16,
            self.opening,
            self.lead_end,
            u16::from(self.cut),
            self.figures,
        ];
        let mut out: Vec<u8> = head
            .iter()
            .chain(self.halves.iter())
            .flat_map(|h| h.to_le_bytes())
            .collect();
        out.extend(self.keys.iter().flat_map(|k| k.to_le_bytes()));
        out
    }

    /// From stored bytes, only what the index needs: the keys, into `out`
    /// (cleared first), and whether the text was cut short; `None` for
    /// bytes `to_bytes` did not write. Reading the whole of every stored
    /// fingerprint was most of the cost of a `run --once` that found a
    /// database full of them.
    pub fn index_keys(bytes: &[u8], out: &mut Vec<u32>) -> Option<bool> {
        let half = |i: usize| {
            bytes
                .get(2 * i..2 * i + 2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
        };
        let (head, cut, n_figures) = match half(0)? as u16 {
            VERSION => (7, half(5)? & 1 == 1, half(6)?),
            VERSION_F002 => (5, false, 0),
            _ => return None,
        };
        let (n_ends, n_keys, n_opening) = (half(1)?, half(2)?, half(3)?);
        let n_shingles = if n_ends == 0 {
            0
        } else {
            half(head + n_ends - 1)?
        };
        let n_numbers = if n_ends == 0 {
            0
        } else {
            half(head + 2 * n_ends - 1)?
        };
        let keys_at = 2 * (head + 2 * n_ends + n_shingles + n_numbers + n_opening + n_figures);
        if bytes.len() != keys_at + 4 * n_keys {
            return None;
        }
        out.clear();
        out.extend(
            bytes[keys_at..]
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        Some(cut)
    }

    /// Reads `to_bytes`; `None` for bytes it did not write.
    pub fn from_bytes(bytes: &[u8]) -> Option<Fingerprint> {
        let half = |i: usize| {
            bytes
                .get(2 * i..2 * i + 2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
        };
        let (head, cut, n_figures) = match half(0)? {
            VERSION => (7, half(5)? & 1 == 1, half(6)? as usize),
            VERSION_F002 => (5, false, 0),
            _ => return None,
        };
        let (n_ends, n_keys) = (half(1)? as usize, half(2)? as usize);
        let (n_opening, lead_end) = (half(3)? as usize, half(4)?);
        if lead_end as usize > n_opening {
            return None;
        }
        // Where each run of sentences ends: the last of each list of ends.
        let last_end = |list: usize| match n_ends {
            0 => Some(0),
            n => half(head + list * n + n - 1).map(usize::from),
        };
        let (n_shingles, n_numbers) = (last_end(0)?, last_end(1)?);
        let n_halves = 2 * n_ends + n_shingles + n_numbers + n_opening + n_figures;
        let keys_at = 2 * (head + n_halves);
        if bytes.len() != keys_at + 4 * n_keys {
            return None;
        }
        // The parts lie in the bytes as they lie in `halves`.
        let halves: Box<[u16]> = bytes[2 * head..keys_at]
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        let sorted = |v: &[u16]| v.windows(2).all(|w| w[0] <= w[1]);
        if !sorted(&halves[..n_ends]) || !sorted(&halves[n_ends..2 * n_ends]) {
            return None;
        }
        let keys = bytes[keys_at..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Some(Fingerprint {
            halves,
            keys,
            sentences: n_ends as u16,
            opening: n_opening as u16,
            lead_end,
            figures: n_figures as u16,
            cut,
        })
    }
}

impl Parts {
    /// Appends a sentence unless it is empty or already there, with its
    /// number tokens when `numbers`.
    fn push(&mut self, scratch: &mut Vec<u32>, words: &[Word], numbers: bool) {
        scratch.clear();
        scratch.extend(
            words
                .windows(SHINGLE)
                .filter(|w| !w.iter().all(|x| x.stop))
                .map(|w| combine(w[0].hash, w[1].hash, w[2].hash)),
        );
        if scratch.is_empty() && !self.ends.is_empty() {
            return;
        }
        let start = self.shingles.len();
        append_set(&mut self.shingles, scratch.iter().map(|&h| h as u16));
        let new = &self.shingles[start..];
        if start > 0 && (1..self.ends.len()).any(|i| self.sentence(i) == new) {
            self.shingles.truncate(start);
            return;
        }
        self.ends.push(self.shingles.len() as u16);
        // Sentences 1 to 3 after the title (the title's end comes first).
        let sample = match self.ends.len() {
            2..=4 => OPENING_SAMPLE,
            _ => SAMPLE,
        };
        self.keys
            .extend(scratch.iter().filter(|&&h| h % sample == 0));
        if numbers {
            let digits = words.iter().filter(|w| w.digit);
            append_set(&mut self.numbers, digits.map(|w| w.hash as u16));
        }
        self.number_ends.push(self.numbers.len() as u16);
        if numbers && self.ends.len() == 2 {
            let figures = words.iter().filter(|w| w.figure);
            append_set(&mut self.lead_figures, figures.map(|w| w.hash as u16));
        }
        if matches!(self.ends.len(), 2 | 3) {
            let content = words.iter().filter(|w| !w.stop);
            append_set(&mut self.opening, content.map(|w| w.hash as u16));
            if self.ends.len() == 2 {
                self.lead_end = self.opening.len() as u16;
            }
        }
    }

    fn sentence(&self, i: usize) -> &[u16] {
        span(&self.shingles, &self.ends, i)
    }

    /// The fingerprint made, each part in one allocation of its exact size.
    fn pack(self, cut: bool) -> Fingerprint {
        let halves: Vec<u16> = [
            &self.ends[..],
            &self.number_ends,
            &self.shingles,
            &self.numbers,
            &self.opening,
            &self.lead_figures,
        ]
        .concat();
        Fingerprint {
            halves: halves.into_boxed_slice(),
            keys: self.keys.into_boxed_slice(),
            sentences: self.ends.len() as u16,
            opening: self.opening.len() as u16,
            lead_end: self.lead_end,
            figures: self.lead_figures.len() as u16,
            cut,
        }
    }
}

/// The stored form's version, first in its bytes. 1 had no number ends and
/// read `125 000` as two numbers; it began with the sentence count, which
/// is never this. `0xF002` had no flags (nothing was known cut short); it
/// is still read.
const VERSION: u16 = 0xF003;
const VERSION_F002: u16 = 0xF002;

/// Appends `items` to `list` as one more part, sorted and distinct.
fn append_set(list: &mut Vec<u16>, items: impl Iterator<Item = u16>) {
    let start = list.len();
    list.extend(items);
    list[start..].sort_unstable();
    let mut kept = start;
    for at in start..list.len() {
        if kept == start || list[at] != list[kept - 1] {
            list[kept] = list[at];
            kept += 1;
        }
    }
    list.truncate(kept);
}

/// Item `i` of a list cut at `ends`.
fn span<'a>(all: &'a [u16], ends: &[u16], i: usize) -> &'a [u16] {
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    &all[start..ends[i] as usize]
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// A word of normalised text, hashed once.
#[derive(Debug, Clone, Copy)]
struct Word {
    start: u32,
    end: u32,
    hash: u64,
    /// A sentence may end after it.
    ends: bool,
    stop: bool,
    digit: bool,
    /// Digits only: a figure (`125 000`, `5,5`), not `1er` or `20h00`,
    /// which house styles write otherwise.
    figure: bool,
    agency: bool,
    /// It may start a `LINKS` marker.
    marks: bool,
}

/// Text preparation's working space, reused from field to field: one
/// normalisation buffer and a few word lists rather than a vector per
/// sentence.
#[derive(Default)]
struct Buffers {
    norm: String,
    words: Vec<Word>,
    sentence: Vec<Word>,
    clean: Vec<Word>,
    shingles: Vec<u32>,
}

impl Buffers {
    /// Normalises `text` and cuts it into words, each number as one word
    /// in its one form (see `number`). Entities a feed left encoded twice
    /// (`&amp;eacute;`) are decoded first.
    fn read(&mut self, text: &str) {
        let how = Normal {
            fold: true,
            lower: true,
        };
        let text = match text.contains('&') {
            true => html_escape::decode_html_entities(text),
            false => text.into(),
        };
        normalize_into(&text, how, &mut self.norm, None);
        self.words.clear();
        let norm = self.norm.as_str();
        let mut at = 0;
        while let Some(c) = norm[at..].chars().next() {
            if !word_char(c) {
                // "7.5" and "3.2.1" are not sentence ends.
                if matches!(c, '.' | '!' | '?' | '…')
                    && !norm[at + c.len_utf8()..]
                        .chars()
                        .next()
                        .is_some_and(word_char)
                    && let Some(last) = self.words.last_mut()
                {
                    last.ends = true;
                }
                at += c.len_utf8();
                continue;
            }
            let end = norm[at..]
                .char_indices()
                .find(|&(_, c)| !word_char(c))
                .map_or(norm.len(), |(i, _)| at + i);
            let w = &norm[at..end];
            let (end, hash) = if let Some((end, one_form)) = time(norm, at, end) {
                (end, self::hash(&one_form))
            } else if w.bytes().all(|b| b.is_ascii_digit()) {
                let (end, one_form) = number(norm, at, end);
                (end, self::hash(&one_form))
            } else {
                (end, self::hash(w))
            };
            self.words.push(Word {
                start: at as u32,
                end: end as u32,
                hash,
                ends: false,
                stop: is_stopword(w),
                digit: w.bytes().any(|b| b.is_ascii_digit()),
                figure: w.bytes().all(|b| b.is_ascii_digit()),
                agency: is_agency(w),
                marks: matches!(w, "lire" | "voir" | "a"),
            });
            at = end;
        }
    }

    fn text(&self, w: &Word) -> &str {
        &self.norm[w.start as usize..w.end as usize]
    }

    fn starts_with(&self, words: &[Word], marker: &[&str]) -> bool {
        words.len() >= marker.len() && words.iter().zip(marker).all(|(w, m)| self.text(w) == *m)
    }

    /// Calls `f` with each sentence of the text read, boilerplate dropped.
    /// A sentence ends at `.`, `!`, `?` or `…` once it has four words, so
    /// that `M. Macron` does not cut one.
    fn each_sentence(&mut self, mut f: impl FnMut(&[Word])) {
        let mut sentence = std::mem::take(&mut self.sentence);
        let mut clean = std::mem::take(&mut self.clean);
        sentence.clear();
        let mut i = 0;
        while i < self.words.len() {
            // Markup is gone, so "Lire aussi : <a headline>" runs into the
            // next paragraph: it ends the sentence before it, and drops at
            // most a headline's length of words after it.
            if self.words[i].marks && LINKS.iter().any(|m| self.starts_with(&self.words[i..], m)) {
                if self.clean(&sentence, &mut clean) {
                    f(&clean);
                }
                sentence.clear();
                i += self.words[i..]
                    .iter()
                    .take(HEADLINE_WORDS)
                    .position(|w| w.ends)
                    .map_or(HEADLINE_WORDS, |p| p + 1);
                continue;
            }
            let w = self.words[i];
            sentence.push(w);
            if w.ends && sentence.len() >= 4 {
                if self.clean(&sentence, &mut clean) {
                    f(&clean);
                }
                sentence.clear();
            }
            i += 1;
        }
        if self.clean(&sentence, &mut clean) {
            f(&clean);
        }
        self.sentence = sentence;
        self.clean = clean;
    }

    /// `words` without agency tags, byline and dateline, into `out`; false
    /// when nothing is left or the sentence is boilerplate.
    fn clean(&self, words: &[Word], out: &mut Vec<Word>) -> bool {
        out.clear();
        // A dateline or byline up to the agency: "PÉKIN (AFP) - …",
        // "Par Le Quotidien avec AFP …".
        let from = words
            .iter()
            .take(7)
            .position(|w| w.agency)
            .map_or(0, |p| p + 1);
        // Markup is gone, so a paragraph holding only a byline or a
        // timestamp ("Publié le 27/11/2026 09:06") runs into the lead after
        // it: the timestamp goes, the lead stays.
        let rest = &words[from..];
        let rest = match STAMPS.iter().find(|m| self.starts_with(rest, m)) {
            Some(m) => {
                let dated = |w: &Word| w.digit || STAMP_WORDS.contains(&self.text(w));
                let after = &rest[m.len()..];
                // "le" only before a date: the lead may start with one.
                let stamp = (0..after.len())
                    .take_while(|&i| {
                        dated(&after[i])
                            || (self.text(&after[i]) == "le" && after.get(i + 1).is_some_and(dated))
                    })
                    .count();
                match &rest[m.len() + stamp..] {
                    lead if lead.len() >= 4 => lead,
                    _ => return false,
                }
            }
            None => words,
        };
        if rest.is_empty() || BOILERPLATE.iter().any(|b| self.starts_with(rest, b)) {
            return false;
        }
        // A byline alone: "Par Jeanne Martin".
        if self.text(&rest[0]) == "par" && rest.len() <= 4 {
            return false;
        }
        let from = rest.iter().take(7).position(|w| w.agency).unwrap_or(0);
        out.extend(rest[from..].iter().filter(|w| !w.agency));
        !out.is_empty()
    }
}

/// Timestamps an outlet puts before its text, and the words they are
/// written with besides numbers.
const STAMPS: &[&[&str]] = &[
    &["publie", "le"],
    &["publie", "a"],
    &["mis", "a", "jour", "le"],
    &["mis", "a", "jour", "a"],
    &["modifie", "le"],
];
const STAMP_WORDS: &[&str] = &[
    "a",
    "h",
    "et",
    "lundi",
    "mardi",
    "mercredi",
    "jeudi",
    "vendredi",
    "samedi",
    "dimanche",
    "janvier",
    "fevrier",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "aout",
    "septembre",
    "octobre",
    "novembre",
    "decembre",
    "mis",
    "jour",
];

/// A word character of normalised text (nearly all ASCII: the Unicode
/// tables only for the rest).
fn word_char(c: char) -> bool {
    match c.is_ascii() {
        true => c.is_ascii_alphanumeric(),
        false => is_word_char(c),
    }
}

/// The time of day whose first word is `norm[start..end]`, as house styles
/// write it, in one form: `20h00`, `20h`, `20 h`, `20 heures` are `20:00`;
/// `10h45` and `10 h 45` are `10:45`. The end of all of it in `norm`, and
/// the form; `None` when it is no time.
fn time(norm: &str, start: usize, end: usize) -> Option<(usize, String)> {
    let w = &norm[start..end];
    let digits = |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    let form = |h: &str, m: &str| format!("{}:{m:0>2}", h.trim_start_matches('0'));
    if let Some((h, m)) = w.split_once('h') {
        return (digits(h) && (m.is_empty() || (m.len() == 2 && digits(m))))
            .then(|| (end, form(h, if m.is_empty() { "00" } else { m })));
    }
    if !digits(w) {
        return None;
    }
    let rest = &norm[end..];
    let word_end = |s: &str| !s.chars().next().is_some_and(word_char);
    for unit in [" heures", " heure", " h"] {
        let Some(after) = rest.strip_prefix(unit).filter(|a| word_end(a)) else {
            continue;
        };
        let mut at = end + unit.len();
        let mut minutes = "00";
        if unit == " h"
            && let Some(m) = after.strip_prefix(' ').and_then(|a| a.get(..2))
            && digits(m)
            && word_end(&after[3..])
        {
            minutes = m;
            at += 3;
        }
        return Some((at, form(w, minutes)));
    }
    None
}

/// The number whose first digits are `norm[start..end]`, as house styles
/// write it, in one form: the end of all of it in `norm`, and the form.
/// A group of exactly three digits after a space (what no-break and narrow
/// spaces became), a point or an apostrophe continues it (thousands:
/// `125 000`, `125.000`, `125'000` are `125000`); then a comma or a point
/// before digits is its decimal point (`5,5` and `5.5` are `5.5`).
fn number(norm: &str, start: usize, mut end: usize) -> (usize, String) {
    let b = norm.as_bytes();
    let digits = |from: usize| {
        b[from.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let ends_word = |at: usize| {
        !norm[at.min(norm.len())..]
            .chars()
            .next()
            .is_some_and(word_char)
    };
    let mut form = norm[start..end].to_owned();
    while end + 1 < b.len()
        && matches!(b[end], b' ' | b'.' | b'\'')
        && digits(end + 1) == 3
        && ends_word(end + 4)
    {
        form.push_str(&norm[end + 1..end + 4]);
        end += 4;
    }
    if end + 1 < b.len() && matches!(b[end], b',' | b'.') {
        let n = digits(end + 1);
        if n > 0 && ends_word(end + 1 + n) {
            form.push('.');
            form.push_str(&norm[end + 1..end + 1 + n]);
            end += 1 + n;
        }
    }
    (end, form)
}

/// Markers of a link to another article, wherever they stand.
const LINKS: &[&[&str]] = &[
    &["lire", "aussi"],
    &["lire", "egalement"],
    &["a", "lire", "aussi"],
    &["voir", "aussi"],
];

/// Words of a linked headline dropped after a `LINKS` marker, at most.
const HEADLINE_WORDS: usize = 16;

/// Three word hashes → one shingle hash, order-sensitive (a rotation per
/// position, then a 64-bit mix; the constants are splitmix64's).
fn combine(a: u64, b: u64, c: u64) -> u32 {
    let mut x = a ^ b.rotate_left(21) ^ c.rotate_left(42);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)) as u32
}

/// A stable hash: fingerprints are stored, so it must not change between
/// versions or runs (std's hasher does not promise that).
fn hash(s: &str) -> u64 {
    xxh3_64(s.as_bytes())
}

#[cfg(test)]
mod placement_tests {
    use super::*;

    #[test]
    fn a_known_link_wins_then_a_copy_then_a_story_of_its_own() {
        let mut asked = false;
        let by_link = place(Some(StoryId(7)), || {
            asked = true;
            Ok::<_, ()>(Some(StoryId(3)))
        });
        assert_eq!(by_link, Ok(Placement::ByLink(StoryId(7))));
        assert!(!asked, "no wire lookup once the link decided");
        assert_eq!(
            place(None, || Ok::<_, ()>(Some(StoryId(3)))),
            Ok(Placement::Copy(StoryId(3)))
        );
        assert_eq!(place(None, || Ok::<_, ()>(None)), Ok(Placement::New));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(title: &str, body: &str) -> Item {
        Item {
            title: title.into(),
            summary: body.into(),
            ..Item::default()
        }
    }

    fn words(text: &str) -> Vec<String> {
        let mut b = Buffers::default();
        b.read(text);
        let mut out = Vec::new();
        let mut sentences = Vec::new();
        b.each_sentence(|words| sentences.push(words.to_vec()));
        for words in sentences {
            let text: Vec<&str> = words.iter().map(|w| b.text(w)).collect();
            out.push(text.join(" "));
        }
        out
    }

    #[test]
    fn boilerplate_datelines_and_bylines_are_dropped() {
        let cases: &[(&str, &[&str])] = &[
            (
                "PÉKIN (AFP) - Le président chinois a parlé vendredi.",
                &["le president chinois a parle vendredi"],
            ),
            (
                "Par Le Quotidien avec AFP Le président chinois a parlé.",
                &["le president chinois a parle"],
            ),
            ("Par Jeanne Martin", &[]),
            (
                "Publié le 24/11/2026 à 09h12, mis à jour à 10h05. Le texte suit ici.",
                &["le texte suit ici"],
            ),
            (
                "Le début du texte est là. Lire aussi : Le Canada taxe les voitures. La suite du texte vient.",
                &["le debut du texte est la", "la suite du texte vient"],
            ),
            // Without markup a linked headline runs into the next paragraph:
            // at most a headline's length is dropped.
            (
                "Un lead de quatre mots. Lire aussi : un titre sans point final de huit mots Suite d'un paragraphe qui continue ensuite normalement.",
                &["un lead de quatre mots", "ensuite normalement"],
            ),
            (
                "M. Macron a dit 7.5 fois non.",
                &["m macron a dit 7.5 fois non"],
            ),
            // An agency named early is cut like a dateline: a few words lost
            // on both sides alike.
            ("Selon l'AFP, rien.", &["rien"]),
            // Byline and timestamp paragraphs run into the lead once markup
            // is gone: the lead is kept without them.
            (
                "franceinfo avec AFP Publié le 27/11/2026 09:06 Les prix ont augmenté de 1,1 % sur un an.",
                &["les prix ont augmente de 1,1 sur un an"],
            ),
            (
                "Publié le jeudi 26 novembre 2026 à 18h40 Mis à jour le 27 novembre Le Sénat a voté le texte.",
                &["le senat a vote le texte"],
            ),
            ("Publié le 27/11/2026 09:06", &[]),
            (
                "Publié le mois dernier, le rapport reste d'actualité.",
                &["mois dernier le rapport reste d actualite"],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(words(text), *want, "{text}");
        }
    }

    /// The number words of `text`, in their one form's hash.
    fn number_hashes(text: &str) -> Vec<u64> {
        let mut b = Buffers::default();
        b.read(text);
        b.words.iter().filter(|w| w.digit).map(|w| w.hash).collect()
    }

    #[test]
    fn numbers_read_alike_in_every_house_style_and_differ_when_they_differ() {
        let same: &[&[&str]] = &[
            &[
                "125 000",
                "125.000",
                "125'000",
                "125000",
                "125\u{202f}000",
                "125\u{a0}000",
            ],
            &["5,5 milliards", "5.5 milliards"],
            &["145%", "145 %", "145\u{202f}%", "145&nbsp;%"],
            &["1 234 567,8", "1.234.567,8", "1234567.8"],
            &["de 34 %.", "de 34 % ."],
        ];
        for forms in same {
            let first = number_hashes(forms[0]);
            assert_eq!(first.len(), 1, "{forms:?}");
            for f in &forms[1..] {
                assert_eq!(number_hashes(f), first, "{f} reads as {}", forms[0]);
            }
        }
        let different = [
            ("5,5", "5,6"),
            ("125 000", "125 500"),
            ("2.25", "2.5"),
            ("34", "43"),
        ];
        for (a, b) in different {
            assert_ne!(number_hashes(a), number_hashes(b), "{a} vs {b}");
        }
        let times: &[&[&str]] = &[
            &[
                "vers 20h00 ce soir",
                "vers 20h ce soir",
                "vers 20 h ce soir",
                "vers 20 heures ce soir",
            ],
            &["à 10h45.", "à 10 h 45.", "à 10h45 ."],
        ];
        for forms in times {
            let first = number_hashes(forms[0]);
            assert_eq!(first.len(), 1, "{forms:?}");
            for f in &forms[1..] {
                assert_eq!(number_hashes(f), first, "{f} reads as {}", forms[0]);
            }
        }
        assert_ne!(number_hashes("20h00"), number_hashes("20h30"));
        assert_ne!(number_hashes("20 h"), number_hashes("20"));
        assert_eq!(
            words("Elle a débuté vers 4 heures du matin."),
            ["elle a debute vers 4 heures du matin"],
            "the words stay as written"
        );
        // A number ending a sentence still ends it.
        assert_eq!(
            words("Ils étaient bien 125 000. La suite vient ensuite ici."),
            ["ils etaient bien 125 000", "la suite vient ensuite ici"]
        );
    }

    #[test]
    fn a_fingerprint_survives_storage_and_counts_a_repeated_lead_once() {
        let lead = "Le président chinois Xi Jinping a appelé vendredi le pays à accélérer.";
        let mut it = item("Xi Jinping et les puces", lead);
        it.content = format!("{lead} Une deuxième phrase suit, avec 14 entreprises.");
        let fp = Fingerprint::of(&it);
        assert_eq!(fp.sentence_count(), 3, "title, lead once, second sentence");
        assert_eq!(fp.number_runs().len(), 1);
        assert_eq!(Fingerprint::from_bytes(&fp.to_bytes()), Some(fp.clone()));
        let bytes = fp.to_bytes();
        for bad in [
            &b""[..],
            b"\x01\x00\x00",
            &[9, 0, 0, 0, 0, 0, 0, 0],
            &bytes[..bytes.len() - 1],
        ] {
            assert_eq!(Fingerprint::from_bytes(bad), None);
        }
        assert!(!Fingerprint::of(&item("Puces", "Deux mots.")).is_usable());
    }

    const LEAD: &str = "La Chine imposera à partir du 10 avril des droits de douane supplémentaires de 34 % sur l'ensemble des produits importés des États-Unis, a annoncé vendredi le ministère chinois des Finances.";
    const SECOND: &str = "Pékin a également ajouté onze entreprises américaines à sa liste des « entités non fiables » et restreint l'exportation de sept terres rares.";
    const THIRD: &str = "Les Bourses asiatiques ont reculé après l'annonce, Hong Kong perdant plus de 2 % en fin de séance.";
    const FOURTH: &str = "Le ministère du Commerce a dit rester « ouvert au dialogue » avec Washington, tout en promettant de « défendre fermement » les intérêts chinois.";
    const CONTEXT: &str = "Depuis le lancement de ChatGPT fin 2022, l'intelligence artificielle générative s'est imposée dans les entreprises, et les législateurs peinent à suivre.";

    #[test]
    fn copies_are_told_from_look_alikes() {
        let dispatch = item(
            "Pékin riposte avec des droits de douane de 34 %",
            &format!("PÉKIN (AFP) - {LEAD} {SECOND} {THIRD} {FOURTH}"),
        );
        let house = |t: &str| {
            t.replace(" %", "%")
                .replace("« ", "\"")
                .replace(" »", "\"")
                .replace('\'', "’")
                .replace('é', "&eacute;")
        };
        let cases: &[(&str, Item, bool)] = &[
            (
                "reworded title, byline, boilerplate",
                item(
                    "Guerre commerciale : la riposte chinoise",
                    &format!(
                        "Par La Rédaction avec AFP {LEAD} {SECOND} {THIRD} Retrouvez toute l'actualité."
                    ),
                ),
                true,
            ),
            (
                "paragraphs reordered, last one cut",
                item(
                    "Droits de douane : Pékin réplique",
                    &format!("{LEAD} {THIRD}"),
                ),
                true,
            ),
            (
                "the same facts in another house's typography",
                item(
                    "Pékin riposte avec des droits de douane de 34 %",
                    &house(&format!("{LEAD} {SECOND} {THIRD}")),
                ),
                true,
            ),
            (
                "the lead rewritten in the outlet's words, the rest kept",
                item(
                    "La Chine réplique à Washington",
                    &format!(
                        "Dès le 10 avril, Pékin taxera de 34 % supplémentaires tous les produits venus des États-Unis, a fait savoir le ministère chinois des Finances. {SECOND} {THIRD} {FOURTH}"
                    ),
                ),
                true,
            ),
            (
                "the lead alone, with another title: the leads are one sentence",
                item("La riposte chinoise tombe", LEAD),
                true,
            ),
            (
                "a follow-up repeating two background sentences under a lead of its own",
                item(
                    "Les marchés chutent après la riposte chinoise",
                    &format!(
                        "Les marchés mondiaux ont plongé lundi, au lendemain de l'annonce de mesures chinoises très attendues par les investisseurs. {SECOND} {THIRD}"
                    ),
                ),
                false,
            ),
            (
                "one shared sentence of context",
                item(
                    "Londres veut devenir une superpuissance de l'IA",
                    &format!(
                        "Le Premier ministre britannique a présenté lundi un plan d'investissements de quatorze milliards de livres dans les centres de données. {CONTEXT}"
                    ),
                ),
                false,
            ),
            (
                "the same template with other figures (a market close the next day)",
                item(
                    "Pékin riposte avec des droits de douane de 25 %",
                    &format!(
                        "{} {SECOND} {THIRD}",
                        LEAD.replace("10 avril", "12 avril").replace("34", "25")
                    ),
                ),
                false,
            ),
            (
                "too little text to be sure",
                item("Pékin riposte", "La Chine impose 34 % de droits de douane."),
                false,
            ),
        ];
        let fp = Fingerprint::of(&dispatch);
        for (what, copy, want) in cases {
            let sim = Fingerprint::of(copy).compare(&fp);
            assert_eq!(sim.is_copy(), *want, "{what}: {sim:?}");
            assert_eq!(sim, fp.compare(&Fingerprint::of(copy)), "{what}: symmetric");
        }
    }

    /// Two stories a cut excerpt matches equally (an explainer opening on
    /// a dispatch's lead, and that dispatch): it joins the one with a copy
    /// published nearest to it, whichever was found first.
    #[test]
    fn of_two_stories_alike_the_nearest_in_time_is_joined() {
        let excerpt = item("Pékin riposte", &format!("{} …", &LEAD[..LEAD.len() - 40]));
        let full = item(
            "Pékin riposte avec des droits de douane de 34 %",
            &format!("{LEAD} {SECOND} {THIRD}"),
        );
        let (cut, print) = (Fingerprint::of(&excerpt), Fingerprint::of(&full));
        assert!(cut.is_cut());
        let story = |story: i64, gap: i64| StoryCopies {
            story,
            same_feed: false,
            has_full: true,
            gap,
            copies: vec![&print],
        };
        for stories in [
            [story(1, 20 * 3600), story(2, 300)],
            [story(2, 300), story(1, 20 * 3600)],
        ] {
            let choice = choose(&cut, &stories).expect("joins one");
            assert_eq!(choice.story, 2);
        }
        // A better resemblance still wins over time.
        assert_eq!(
            preferred((Evidence::Copy, 0.7, 86_400), (Evidence::Start, 1.0, 60)),
            std::cmp::Ordering::Greater
        );
    }

    /// An aggregator's excerpt is compared on what it holds of the
    /// dispatch: its "read more" link is not part of it.
    #[test]
    fn an_excerpt_is_compared_without_its_read_more_link() {
        let full = Fingerprint::of(&item("Pékin riposte", &format!("{LEAD} {SECOND}")));
        let lead = LEAD.trim_end_matches('.');
        for excerpt in [
            format!("{lead} Lire la suite"),
            format!("{lead}… Lire la suite »"),
        ] {
            let cut = Fingerprint::of(&item("Pékin riposte", &excerpt));
            assert!(cut.is_cut(), "{excerpt}");
            let sim = cut.compare(&full);
            assert_eq!(sim.body_missing, 0, "{excerpt}: {sim:?}");
            assert_eq!(sim.evidence(), Evidence::Start, "{excerpt}");
        }
    }
}
