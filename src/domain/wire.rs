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
//! A candidate is confirmed (`Similarity::is_copy`) only when the shorter
//! text is mostly inside the longer one, by at least two sentences of its
//! own, one of the two leads (first sentence after the title) is in the
//! other, and their numbers agree. Each condition is there for a kind of
//! look-alike that is another event (see `is_copy`).

use xxhash_rust::xxh3::xxh3_64;

use super::model::Item;
use super::text::{Normal, is_word_char, normalize_into};

/// Words per shingle. Three keeps a reworded word from spoiling more than
/// three shingles while two common words rarely make a shingle alone.
const SHINGLE: usize = 3;
const _: () = assert!(SHINGLE == 3, "`combine` takes three words");

/// One shingle in `SAMPLE` is an index key (about 8 keys for a four-sentence
/// lead; a copy sharing 20 shingles shares at least one key with
/// probability 1 − (7/8)^20 = 93 %, 40 shingles 99.5 %).
pub const SAMPLE: u32 = 8;

/// Thresholds of `is_copy`, with the reasons beside them.
///
/// The shorter text must share this share of its shingles with the longer.
/// On the test corpus (`tests/it/wire.rs`), 1,709 of 1,710 copy pairs reach
/// it (a reworded title and a byline cost a few shingles; the lowest, 0.55,
/// is a live blog's lead-only copy); 44 of 1,600 look-alike pairs reach it
/// too (a brief quoted whole by an analysis: 0.90), and the
/// conditions below keep every one of them apart.
pub const MIN_CONTAINMENT: f64 = 0.6;
/// …and at least this many shingles: below it there is too little text to
/// be sure (a title and a short sentence).
pub const MIN_SHARED: usize = 15;
/// …in at least this many sentences found in the other text (half their
/// shingles there): one sentence of shared context is not a copy.
pub const MIN_SENTENCES: usize = 2;
/// A sentence is found in the other text when this share of its shingles is.
const SENTENCE_FOUND: f64 = 0.5;
/// Numbers of the shorter text missing from the longer, at most: a daily
/// market close and the next day's differ by their figures, copies do not.
pub const MAX_NUMBERS_MISSING: f64 = 0.2;

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
    /// Shingle hashes, sentence after sentence, each sentence's sorted;
    /// sentence 0 is the title (possibly empty).
    shingles: Vec<u16>,
    /// Where each sentence ends in `shingles`.
    ends: Vec<u16>,
    /// Hashes of the body's number tokens, sorted, distinct.
    numbers: Vec<u16>,
    /// The index keys: shingles whose 32-bit hash is 0 modulo `SAMPLE`,
    /// sorted, distinct.
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
    /// One text's lead is found in the other.
    pub lead: bool,
    /// The two leads are one sentence (half the shingles of one in the
    /// other).
    pub leads_agree: bool,
    /// Share of the shorter text's numbers missing from the longer.
    pub numbers_missing: f64,
}

impl Similarity {
    /// The verdict: a copy of the same dispatch.
    pub fn is_copy(&self) -> bool {
        self.shared >= MIN_SHARED
            && self.containment >= MIN_CONTAINMENT
            // A follow-up or a brief on the same event opens with a lead of
            // its own; a copy keeps the dispatch's (trimmed, maybe).
            && self.lead
            // One shared sentence may be context quoted by another story,
            // unless it is the lead of both (a copy of the lead alone).
            && (self.sentences >= MIN_SENTENCES || self.leads_agree)
            && self.numbers_missing <= MAX_NUMBERS_MISSING
    }
}

/// The fingerprint a new item is stored and compared with, if it can have
/// copies: dated within `window` of `now` (or undated) and with enough text.
pub fn fingerprint_new(item: &Item, now: i64, window: i64) -> Option<Fingerprint> {
    if item.date().is_some_and(|d| now - d.timestamp() > window) {
        return None;
    }
    Some(Fingerprint::of(item)).filter(Fingerprint::is_usable)
}

impl Fingerprint {
    /// The fingerprint of an item's title, summary and content. A sentence
    /// seen twice (summary repeated in content) counts once.
    pub fn of(item: &Item) -> Fingerprint {
        thread_local! {
            // Buffers reused from item to item on the same thread: most
            // of a fingerprint's allocations otherwise.
            static BUFFERS: std::cell::RefCell<Buffers> = Default::default();
        }
        BUFFERS.with(|b| match b.try_borrow_mut() {
            Ok(mut b) => Fingerprint::of_with(item, &mut b),
            Err(_) => Fingerprint::of_with(item, &mut Buffers::default()),
        })
    }

    fn of_with(item: &Item, b: &mut Buffers) -> Fingerprint {
        let mut fp = Fingerprint::default();
        let mut numbers = Vec::new();
        b.read(&item.title);
        // The title is one sentence, whatever its punctuation. Outlets
        // rewrite titles, figures included ("douze" becomes "12"): the
        // numbers compared are the body's.
        let mut title = Vec::new();
        b.each_sentence(|words| title.extend_from_slice(words));
        fp.push(&mut b.shingles, &title, None);
        for field in [&item.summary, &item.content] {
            b.read(field);
            let mut shingles = std::mem::take(&mut b.shingles);
            b.each_sentence(|words| {
                if fp.ends.len() < MAX_SENTENCES {
                    fp.push(&mut shingles, words, Some(&mut numbers));
                }
            });
            b.shingles = shingles;
        }
        numbers.sort_unstable();
        numbers.dedup();
        fp.numbers = numbers;
        fp.keys.sort_unstable();
        fp.keys.dedup();
        fp
    }

    /// Appends a sentence unless it is empty or already there; its number
    /// tokens go to `numbers` (when given).
    fn push(&mut self, scratch: &mut Vec<u32>, words: &[Word], numbers: Option<&mut Vec<u16>>) {
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
        self.shingles.extend(scratch.iter().map(|&h| h as u16));
        self.shingles[start..].sort_unstable();
        let mut kept = start;
        for at in start..self.shingles.len() {
            if kept == start || self.shingles[at] != self.shingles[kept - 1] {
                self.shingles[kept] = self.shingles[at];
                kept += 1;
            }
        }
        self.shingles.truncate(kept);
        let new = &self.shingles[start..];
        if start > 0 && (1..self.ends.len()).any(|i| self.sentence(i) == new) {
            self.shingles.truncate(start);
            return;
        }
        self.ends.push(self.shingles.len() as u16);
        self.keys
            .extend(scratch.iter().filter(|&&h| h % SAMPLE == 0));
        if let Some(numbers) = numbers {
            numbers.extend(words.iter().filter(|w| w.digit).map(|w| w.hash as u16));
        }
    }

    fn sentence(&self, i: usize) -> &[u16] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.shingles[start..self.ends[i] as usize]
    }

    /// The first sentence after the title.
    fn lead(&self) -> Option<&[u16]> {
        (self.sentence_count() > 1).then(|| self.sentence(1))
    }

    fn sentence_count(&self) -> usize {
        self.ends.len()
    }

    /// Every shingle, sorted and distinct.
    pub fn shingles(&self) -> Vec<u16> {
        let mut all = self.shingles.clone();
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
        self.shingles.len() >= MIN_SHARED
    }

    /// The two texts compared, the shorter against the longer.
    pub fn compare(&self, other: &Fingerprint) -> Similarity {
        let (a, b) = (self.shingles(), other.shingles());
        let (short, long, s_fp, l_fp) = if a.len() <= b.len() {
            (a, b, self, other)
        } else {
            (b, a, other, self)
        };
        let shared = short
            .iter()
            .filter(|h| long.binary_search(h).is_ok())
            .count();
        let found = |sentence: &[u16], text: &[u16]| {
            let n = sentence
                .iter()
                .filter(|h| text.binary_search(h).is_ok())
                .count();
            !sentence.is_empty() && n as f64 >= SENTENCE_FOUND * sentence.len() as f64
        };
        let sentences = (0..s_fp.sentence_count())
            .filter(|&i| found(s_fp.sentence(i), &long))
            .count();
        let lead = |fp: &Fingerprint, text: &[u16]| fp.lead().is_some_and(|s| found(s, text));
        let leads_agree = match (s_fp.lead(), l_fp.lead()) {
            (Some(a), Some(b)) => found(a, b) || found(b, a),
            _ => false,
        };
        let missing = s_fp
            .numbers
            .iter()
            .filter(|n| l_fp.numbers.binary_search(n).is_err())
            .count();
        Similarity {
            containment: ratio(shared, short.len()),
            shared,
            sentences,
            lead: lead(s_fp, &long) || lead(l_fp, &short),
            leads_agree,
            numbers_missing: ratio(missing, s_fp.numbers.len()),
        }
    }

    /// The stored form, little-endian: sentence, number and key counts
    /// (u16), each sentence's end (u16), the shingles (u16), the numbers
    /// (u16), the keys (u32).
    pub fn to_bytes(&self) -> Vec<u8> {
        let counts = [
            self.ends.len() as u16,
            self.numbers.len() as u16,
            self.keys.len() as u16,
        ];
        let halves = counts
            .iter()
            .chain(&self.ends)
            .chain(&self.shingles)
            .chain(&self.numbers);
        let mut out: Vec<u8> = halves.flat_map(|h| h.to_le_bytes()).collect();
        out.extend(self.keys.iter().flat_map(|k| k.to_le_bytes()));
        out
    }

    /// Reads `to_bytes`; `None` for bytes it did not write.
    pub fn from_bytes(bytes: &[u8]) -> Option<Fingerprint> {
        let half = |i: usize| {
            bytes
                .get(2 * i..2 * i + 2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
        };
        let (n_ends, n_numbers, n_keys) = (half(0)? as usize, half(1)? as usize, half(2)? as usize);
        let ends: Vec<u16> = (3..3 + n_ends).map(half).collect::<Option<_>>()?;
        let n_shingles = ends.last().map_or(0, |&e| e as usize);
        if ends.windows(2).any(|w| w[0] > w[1]) {
            return None;
        }
        let at = 3 + n_ends;
        let shingles: Vec<u16> = (at..at + n_shingles).map(half).collect::<Option<_>>()?;
        let at = at + n_shingles;
        let numbers: Vec<u16> = (at..at + n_numbers).map(half).collect::<Option<_>>()?;
        let keys_at = 2 * (at + n_numbers);
        if bytes.len() != keys_at + 4 * n_keys {
            return None;
        }
        let keys = bytes[keys_at..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Some(Fingerprint {
            shingles,
            ends,
            numbers,
            keys,
        })
    }
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
    /// Normalises `text` and cuts it into words.
    fn read(&mut self, text: &str) {
        let how = Normal {
            fold: true,
            lower: true,
        };
        normalize_into(text, how, &mut self.norm, None);
        self.words.clear();
        let norm = self.norm.as_str();
        let mut start = None;
        for (at, c) in norm.char_indices().chain([(norm.len(), ' ')]) {
            // Normalised French is nearly all ASCII: skip the Unicode tables.
            let word = if c.is_ascii() {
                c.is_ascii_alphanumeric()
            } else {
                is_word_char(c)
            };
            if word && at < norm.len() {
                start.get_or_insert(at);
                continue;
            }
            if let Some(s) = start.take() {
                let w = &norm[s..at];
                self.words.push(Word {
                    start: s as u32,
                    end: at as u32,
                    hash: hash(w),
                    ends: false,
                    stop: is_stopword(w),
                    digit: w.bytes().any(|b| b.is_ascii_digit()),
                    agency: is_agency(w),
                    marks: matches!(w, "lire" | "voir" | "a"),
                });
            }
            // "7.5" and "3.2.1" are not sentence ends.
            if matches!(c, '.' | '!' | '?' | '…')
                && !norm[at..].chars().nth(1).is_some_and(is_word_char)
                && let Some(last) = self.words.last_mut()
            {
                last.ends = true;
            }
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
        if words.is_empty() || BOILERPLATE.iter().any(|b| self.starts_with(words, b)) {
            return false;
        }
        // A byline alone: "Par Jeanne Martin".
        if self.text(&words[0]) == "par" && words.len() <= 4 {
            return false;
        }
        // A dateline or byline up to the agency: "PÉKIN (AFP) - …",
        // "Par Le Quotidien avec AFP …".
        let from = words.iter().take(7).position(|w| w.agency).unwrap_or(0);
        out.extend(words[from..].iter().filter(|w| !w.agency));
        !out.is_empty()
    }
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
                &["m macron a dit 7 5 fois non"],
            ),
            // An agency named early is cut like a dateline: a few words lost
            // on both sides alike.
            ("Selon l'AFP, rien.", &["rien"]),
        ];
        for (text, want) in cases {
            assert_eq!(words(text), *want, "{text}");
        }
    }

    #[test]
    fn a_fingerprint_survives_storage_and_counts_a_repeated_lead_once() {
        let lead = "Le président chinois Xi Jinping a appelé vendredi le pays à accélérer.";
        let mut it = item("Xi Jinping et les puces", lead);
        it.content = format!("{lead} Une deuxième phrase suit, avec 14 entreprises.");
        let fp = Fingerprint::of(&it);
        assert_eq!(fp.sentence_count(), 3, "title, lead once, second sentence");
        assert_eq!(fp.numbers.len(), 1);
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
    const CONTEXT: &str = "Depuis le lancement de ChatGPT fin 2022, l'intelligence artificielle générative s'est imposée dans les entreprises, et les législateurs peinent à suivre.";

    #[test]
    fn copies_are_told_from_look_alikes() {
        let dispatch = item(
            "Pékin riposte avec des droits de douane de 34 %",
            &format!("PÉKIN (AFP) - {LEAD} {SECOND} {THIRD}"),
        );
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
}
