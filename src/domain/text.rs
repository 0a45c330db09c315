//! Feed text → plain text, and plain text → the normalised form terms are
//! matched in, with a map back to the plain text.
//!
//! SPEC §3: matching runs on text, never markup. Entities are decoded, block
//! elements and `<br>` become white space, inline tags vanish without a space
//! (`semi-<em>conducteurs</em>` reads `semi-conducteurs`), and text is in NFC.
//! Normalisation (`Normal`) then unifies spaces, hyphens and apostrophes,
//! folds accents unless a rule says `exact`, and lower-cases.

use std::sync::LazyLock;
use unicode_normalization::char::{decompose_canonical, is_combining_mark};

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Longest plain text kept for one field, in bytes. A hostile feed cannot make
/// one item cost more than a few of these.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;

/// Markup or entity-laden feed text → plain NFC text, white space collapsed,
/// cut to `MAX_FIELD_BYTES` at a character boundary.
pub fn plain_text(raw: &str) -> String {
    let raw = cut(raw, 4 * MAX_FIELD_BYTES);
    if !raw.contains('<') {
        return untagged_text(raw);
    }
    finish(&html_to_text(raw))
}

/// Elements after whose start and end words are separated: blocks, line
/// breaks, list items and table cells. Anything else is inline and vanishes
/// without a space.
fn separates_words(tag: &[u8]) -> bool {
    #[rustfmt::skip]
    const BLOCKS: [&[u8]; 40] = [
        b"p", b"div", b"br", b"hr", b"li", b"ul", b"ol", b"dl", b"dt", b"dd",
        b"h1", b"h2", b"h3", b"h4", b"h5", b"h6", b"blockquote", b"pre",
        b"table", b"thead", b"tbody", b"tfoot", b"tr", b"td", b"th", b"caption",
        b"section", b"article", b"header", b"footer", b"aside", b"nav", b"main",
        b"figure", b"figcaption", b"address", b"details", b"summary", b"form", b"fieldset",
    ];
    BLOCKS.contains(&tag)
}

/// Elements whose content is not text a reader sees.
fn is_hidden(tag: &[u8]) -> bool {
    matches!(
        tag,
        b"script"
            | b"style"
            | b"template"
            | b"head"
            | b"title"
            | b"iframe"
            | b"object"
            | b"svg"
            | b"math"
    )
}

/// HTML → text with a streaming, spec-compliant tokenizer (html5gum): it
/// decodes entities and survives malformed markup like a browser, without
/// building a tree. (html2text, which builds one and lays text out, was the
/// largest cost of a poll cycle when measured.)
fn html_to_text(html: &str) -> String {
    use html5gum::emitters::callback::{CallbackEmitter, CallbackEvent};
    let mut out: Vec<u8> = Vec::with_capacity(html.len());
    // The hidden element being skipped, and whether its start tag is the one
    // still open (a self-closing `<svg/>` hides nothing).
    let mut hidden: Option<Vec<u8>> = None;
    let mut hidden_just_opened = false;
    let mut emitter = CallbackEmitter::new(
        |event: CallbackEvent<'_>, _span: html5gum::Span<()>| -> Option<std::convert::Infallible> {
            match event {
                CallbackEvent::OpenStartTag { name } => {
                    if hidden.is_none() && is_hidden(name) {
                        hidden = Some(name.to_vec());
                        hidden_just_opened = true;
                    } else if separates_words(name) {
                        out.push(b' ');
                    }
                }
                CallbackEvent::CloseStartTag { self_closing } => {
                    if hidden_just_opened && self_closing {
                        hidden = None;
                    }
                    hidden_just_opened = false;
                }
                CallbackEvent::EndTag { name } => {
                    if hidden.as_deref() == Some(name) {
                        hidden = None;
                    } else if separates_words(name) {
                        out.push(b' ');
                    }
                }
                CallbackEvent::String { value } if hidden.is_none() => out.extend_from_slice(value),
                _ => {}
            }
            None
        },
    );
    // <script> and <style> content is raw text, not markup.
    emitter.naively_switch_states(true);
    for _ in html5gum::Tokenizer::new_with_emitter(html, emitter) {}
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Text that is not markup: entities decoded (feeds leave `&eacute;` and
/// `&nbsp;` undecoded), white space collapsed, NFC, cut.
pub fn untagged_text(raw: &str) -> String {
    let raw = cut(raw, 4 * MAX_FIELD_BYTES);
    finish(&html_escape::decode_html_entities(raw))
}

fn finish(text: &str) -> String {
    let mut collapsed = collapse_space(text);
    // Feeds are nearly always NFC already; the quick check costs far less
    // than recomposing.
    if is_nfc_quick(collapsed.chars()) != IsNormalized::Yes {
        collapsed = collapsed.nfc().collect();
    }
    cut(&collapsed, MAX_FIELD_BYTES).to_owned()
}

/// Runs of ASCII white space (what markup leaves) become one space; the
/// no-break spaces of French typography are kept, they are text.
fn collapse_space(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_ascii_whitespace() {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// `s` on one line: control characters (line breaks among them) and runs of
/// white space become single spaces. For headers and one-line messages.
pub fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `s` in at most `max` characters, an ellipsis ending what was cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().nth(max).is_none() {
        return s.to_owned();
    }
    let keep = s
        .char_indices()
        .nth(max.saturating_sub(1))
        .map_or(s.len(), |(at, _)| at);
    format!("{}…", &s[..keep])
}

/// Byte ranges of the sentences of `text`, white space around them left
/// out. A sentence ends at `.`, `!`, `?` or `…` (with the closing quotes
/// and brackets after it) before white space or the end, once it holds
/// four words, so that `M. Macron` or `J.-C.` does not end one. Written
/// here rather than with UAX #29 sentence breaks (`unicode-segmentation`),
/// which end a sentence at every `M.` before a capital.
pub fn sentences(text: &str) -> Vec<std::ops::Range<usize>> {
    const ENDS: &[char] = &['.', '!', '?', '…'];
    const CLOSERS: &[char] = &['»', '"', '”', '’', ')', ']', '\''];
    let mut out = Vec::new();
    let mut start = None;
    let mut words = 0;
    let mut in_word = false;
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        let i = at;
        at += c.len_utf8();
        if c.is_whitespace() {
            in_word = false;
            continue;
        }
        let from = *start.get_or_insert(i);
        if !in_word {
            words += 1;
            in_word = true;
        }
        if !ENDS.contains(&c) {
            continue;
        }
        // Further stops and closers, and a French closing guillemet after
        // its space (`vite ! »`), belong to this sentence.
        let rest = &text[at..];
        let closing = rest.trim_start_matches(|d: char| ENDS.contains(&d) || CLOSERS.contains(&d));
        at += rest.len() - closing.len();
        let spaced = closing.trim_start_matches([' ', '\u{a0}', '\u{202f}']);
        if spaced.starts_with('»') {
            at += closing.len() - spaced.len() + '»'.len_utf8();
        }
        let at_break = text[at..].chars().next().is_none_or(char::is_whitespace);
        if at_break && words >= 4 {
            out.push(from..at);
            start = None;
            words = 0;
            in_word = false;
        }
    }
    if let Some(from) = start {
        out.push(from..text.trim_end().len());
    }
    out
}

/// The longest prefix of `s` no longer than `max` bytes, on a char boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// How text is normalised for matching (SPEC §3). Both text and terms go
/// through the same function, so that a term is a plain literal afterwards:
/// - runs of white space (including no-break spaces) become one space, and
///   a single hyphen becomes a space too: a space or hyphen in a term then
///   matches either, while `--` or ` - ` stay apart;
/// - the apostrophes `’` and `ʼ` read as `'`;
/// - with `fold`, combining marks are dropped after canonical decomposition
///   and `œ`/`æ` read as `oe`/`ae`;
/// - with `lower`, text is lower-cased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Normal {
    pub fold: bool,
    pub lower: bool,
}

/// Normalises `text` into `out`; with `origin`, also records for every byte
/// of `out` the byte offset in `text` of the character it came from, plus a
/// last entry holding `text.len()`.
pub fn normalize_into(
    text: &str,
    how: Normal,
    out: &mut String,
    mut origin: Option<&mut Vec<u32>>,
) {
    out.clear();
    if let Some(o) = origin.as_deref_mut() {
        o.clear();
    }
    let bytes = text.as_bytes();
    let mut in_space = false;
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        // ASCII, nearly all of French text, skips the Unicode tables.
        if b < 0x80 {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                    if !in_space {
                        out.push(' ');
                        if let Some(o) = origin.as_deref_mut() {
                            o.push(at as u32);
                        }
                    }
                    in_space = true;
                    at += 1;
                }
                b'-' => {
                    out.push(' ');
                    if let Some(o) = origin.as_deref_mut() {
                        o.push(at as u32);
                    }
                    in_space = false;
                    at += 1;
                }
                _ => {
                    // A run of other ASCII bytes is copied whole, single
                    // spaces between words included (they are kept as
                    // they are), so a run is a phrase rather than a word.
                    let run = bytes[at..]
                        .iter()
                        .enumerate()
                        .position(|(i, b)| {
                            !b.is_ascii()
                                || *b == b'-'
                                || (b.is_ascii_whitespace() || *b == 0x0b)
                                    && (*b != b' ' || bytes[at + i - 1] == b' ')
                        })
                        .unwrap_or(bytes.len() - at);
                    let from = out.len();
                    out.push_str(&text[at..at + run]);
                    if how.lower {
                        out[from..].make_ascii_lowercase();
                    }
                    if let Some(o) = origin.as_deref_mut() {
                        o.extend(at as u32..(at + run) as u32);
                    }
                    in_space = bytes[at + run - 1] == b' ';
                    at += run;
                }
            }
            continue;
        }
        let c = text[at..].chars().next().expect("at a char boundary");
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            push_normal(c, how, out);
            in_space = false;
        }
        if let Some(o) = origin.as_deref_mut() {
            o.resize(out.len(), at as u32);
        }
        at += c.len_utf8();
    }
    if let Some(o) = origin {
        o.push(text.len() as u32);
    }
}

fn push_normal(c: char, how: Normal, out: &mut String) {
    let mut push = |d: char| {
        if how.lower {
            out.extend(d.to_lowercase());
        } else {
            out.push(d);
        }
    };
    match c {
        '\u{2010}' | '\u{2011}' => push(' '),
        '\u{2019}' | '\u{2bc}' => push('\''),
        'œ' if how.fold => "oe".chars().for_each(push),
        'Œ' if how.fold => "OE".chars().for_each(push),
        'æ' if how.fold => "ae".chars().for_each(push),
        'Æ' if how.fold => "AE".chars().for_each(push),
        _ if how.fold => match latin_fold(c) {
            Some(base) => push(base),
            None => decompose_canonical(c, |d| {
                if !is_combining_mark(d) {
                    push(d);
                }
            }),
        },
        _ => push(c),
    }
}

/// Accented Latin letters (U+00C0–U+024F) folded once, since they are most
/// of what French text holds beyond ASCII: the first character left after
/// decomposing and dropping marks, when that is a single character.
fn latin_fold(c: char) -> Option<char> {
    const FIRST: u32 = 0xC0;
    const LAST: u32 = 0x24F;
    static TABLE: LazyLock<Vec<Option<char>>> = LazyLock::new(|| {
        (FIRST..=LAST)
            .map(|u| {
                let mut kept = Vec::new();
                decompose_canonical(char::from_u32(u).unwrap_or('\0'), |d| {
                    if !is_combining_mark(d) {
                        kept.push(d);
                    }
                });
                (kept.len() == 1).then(|| kept[0])
            })
            .collect()
    });
    let u = c as u32;
    if (FIRST..=LAST).contains(&u) {
        TABLE[(u - FIRST) as usize]
    } else {
        None
    }
}

/// Normalised text with the way back to the original.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    pub text: String,
    origin: Vec<u32>,
}

impl Mapped {
    pub fn new(original: &str, how: Normal) -> Mapped {
        let mut m = Mapped::default();
        m.renormalize(original, how);
        m
    }

    /// Reuses this buffer for another text.
    pub fn renormalize(&mut self, original: &str, how: Normal) {
        normalize_into(original, how, &mut self.text, Some(&mut self.origin));
    }

    /// The original byte range of normalised range `start..end`.
    pub fn original_span(&self, start: usize, end: usize) -> std::ops::Range<usize> {
        let last = self.origin.len() - 1;
        let s = self.origin[start.min(last)] as usize;
        let e = self.origin[end.min(last)] as usize;
        s..e.max(s)
    }
}

/// A term, normalised as text is.
pub fn normalize(s: &str, how: Normal) -> String {
    let nfc: String = s.nfc().collect();
    let mut out = String::new();
    normalize_into(&nfc, how, &mut out, None);
    out
}

/// Letters of any script, with their marks, and digits make words; all else
/// separates them (SPEC §3.1), including the modifier-letter apostrophe `ʼ`,
/// which Unicode counts as a letter.
pub fn is_word_char(c: char) -> bool {
    c != '\u{2bc}' && (c.is_alphanumeric() || is_combining_mark(c))
}

/// Whether a feed's text for an item stops before the article does, the
/// way cut summaries end: on a marker (`ends_with_more`), or in the middle
/// of a sentence (its last character a letter, a digit or a comma). A text
/// ending on a full stop, a question or a quote is whole.
pub fn ends_cut(text: &str) -> bool {
    ends_with_more(text)
        || trim_marks(text)
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == ',')
}

/// Whether a text ends on what says "there is more": an ellipsis (`…`,
/// `...`, `[…]`, `(...)`) or a "read more" link (`Lire la suite`,
/// `Continuer la lecture`, `Read more`), trailing `»`, `→` aside.
pub fn ends_with_more(text: &str) -> bool {
    let text = trim_marks(text).trim_end_matches([']', ')', '[', '(']);
    text.ends_with('…') || text.ends_with("...") || more_link_at(text).is_some()
}

/// The "read more" links an excerpt may end on.
const MORE: &[&str] = &[
    "lire la suite",
    "continuer la lecture",
    "lire plus",
    "en savoir plus",
    "read more",
    "continue reading",
];

/// Where the "read more" link `text` ends on begins (see `ends_with_more`).
fn more_link_at(text: &str) -> Option<usize> {
    let text = trim_marks(text)
        .trim_end_matches([']', ')', '[', '('])
        .trim_end_matches(['.', ' ', '…']);
    MORE.iter().find_map(|m| {
        let at = text.len().checked_sub(m.len())?;
        let whole_words = text.is_char_boundary(at)
            && !text[..at]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric);
        (whole_words && text[at..].eq_ignore_ascii_case(m)).then_some(at)
    })
}

/// The text without the "read more" link it ends on: what an excerpt
/// holds of the article (`… la chute de la demande Lire la suite`).
pub fn without_more(text: &str) -> &str {
    more_link_at(text).map_or(text, |at| &text[..at])
}

/// The text without the white space and arrows links end with.
fn trim_marks(text: &str) -> &str {
    text.trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '»' | '›' | '>' | '→'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_cut_short_is_told_from_a_whole_one() {
        let cut = [
            "La Première ministre a engagé lundi la responsabilité de son gouvernement, recourant pour la…",
            "Le texte prévoit de ramener le déficit à 16,3 milliards [...]",
            "Le texte prévoit de ramener le déficit à 16,3 milliards […]",
            "Le texte prévoit de ramener le déficit (...)",
            "Le ministre a annoncé mardi un plan. Lire la suite",
            "Le ministre a annoncé mardi un plan. Lire la suite »",
            "Le ministre a annoncé mardi un plan (Lire la suite →)",
            "Le ministre a annoncé mardi un plan. Continuer la lecture",
            "The minister announced a plan on Tuesday. Read more",
            "Le ministre a annoncé mardi un plan de 4,5 milliards pour les hôpit",
            "Le ministre a annoncé mardi un plan de 4,5 milliards,",
        ];
        for t in cut {
            assert!(ends_cut(t), "{t}");
        }
        let whole = [
            "Le ministre a annoncé mardi un plan.",
            "« Nous agirons vite », a-t-il dit.",
            "Faut-il s'en inquiéter ?",
            "Measures to stop the spread more.",
            "Il a conclu : « Nous agirons vite ! »",
            "",
        ];
        for t in whole {
            assert!(!ends_cut(t), "{t}");
        }
    }

    #[test]
    fn an_excerpt_is_read_without_its_read_more_link() {
        let cases = [
            (
                "la chute de la demande Lire la suite",
                "la chute de la demande ",
            ),
            ("un plan. Lire la suite »", "un plan. "),
            ("un plan [Lire la suite]", "un plan ["),
            ("a plan. READ MORE...", "a plan. "),
            ("un plan. Continuer la lecture →", "un plan. "),
            // Only the link at the end; an ellipsis is punctuation.
            ("Lire la suite de l'enquête.", "Lire la suite de l'enquête."),
            ("un plan de 4,5 milliards…", "un plan de 4,5 milliards…"),
            ("é Lire la suite", "é "),
            ("un plan. Lire la suite…", "un plan. "),
            // A phrase ending on the link's words is the text's own.
            ("to stop the spread more.", "to stop the spread more."),
            ("de quoi élire plus", "de quoi élire plus"),
            ("", ""),
        ];
        for (text, want) in cases {
            assert_eq!(without_more(text), want, "{text:?}");
        }
    }

    #[test]
    fn sentences_end_at_their_stop_not_at_an_abbreviation() {
        let text = "  M. Macron a parlé mardi. « Nous agirons vite ! » Les prix ont baissé de 5,5 %… Puis rien";
        let got: Vec<&str> = sentences(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(
            got,
            [
                "M. Macron a parlé mardi.",
                "« Nous agirons vite ! »",
                "Les prix ont baissé de 5,5 %…",
                "Puis rien"
            ]
        );
        assert!(sentences("   ").is_empty());
        let short = "Oui. Non. Peut-être, dit-il en partant.";
        assert_eq!(sentences(short), vec![0..short.len()]);
    }

    #[test]
    fn markup_becomes_text_as_spec_says() {
        let cases = [
            ("semi-<em>conducteurs</em>", "semi-conducteurs"),
            ("<b>droits</b> de douane", "droits de douane"),
            (
                "<p>un</p><p>deux</p>trois<br>quatre",
                "un deux trois quatre",
            ),
            ("g&eacute;n&eacute;rative&nbsp;IA", "générative\u{a0}IA"),
            ("Les <em>puces</em> &amp; l&#8217;IA", "Les puces & l’IA"),
            ("<script>alert(1)</script>texte", "texte"),
            ("<style>p { x: 1 }</style><p>a<br>b</p>", "a b"),
            ("<ul><li>un</li><li>deux</li></ul>", "un deux"),
            ("<table><tr><td>a</td><td>b</td></tr></table>", "a b"),
            ("a <!-- commentaire --> b", "a b"),
            (
                "l&rsquo;<i>IA</i> &laquo;&#160;g&eacute;n&eacute;rative&#xA0;&raquo;",
                "l’IA «\u{a0}générative\u{a0}»",
            ),
            ("<p>unclosed <b>bold", "unclosed bold"),
            ("<a href=\"x\">lien</a>s", "liens"),
            ("x <img src=a.png alt=\"image\"> y", "x y"),
            ("a<svg/>b <p>c</p>", "ab c"),
            (
                "<svg viewBox=\"0 0 1 1\"><path d=\"M0\"/><text>x</text></svg>texte",
                "texte",
            ),
            ("  a \n\t b  ", "a b"),
            ("5 < 6 & 7 > 3", "5 < 6 & 7 > 3"),
            ("e\u{301}te\u{301}", "été"),
        ];
        for (raw, want) in cases {
            assert_eq!(plain_text(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn truncation_counts_characters_and_the_ellipsis() {
        assert_eq!(truncate_chars("Pékin", 5), "Pékin");
        assert_eq!(truncate_chars("Pékin", 4), "Pék…");
        assert_eq!(truncate_chars("Pékin", 1), "…");
        assert_eq!(truncate_chars("", 3), "");
    }

    #[test]
    fn long_fields_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_FIELD_BYTES);
        let text = plain_text(&long);
        assert!(text.len() <= MAX_FIELD_BYTES);
        assert!(text.chars().all(|c| c == 'é'));
    }

    #[test]
    fn normalising_folds_accents_spaces_and_apostrophes_and_maps_back() {
        let fold = Normal {
            fold: true,
            lower: false,
        };
        let fold_lower = Normal {
            fold: true,
            lower: true,
        };
        let exact = Normal {
            fold: false,
            lower: false,
        };
        let cases = [
            ("Pékin", fold, "Pekin"),
            ("États-Unis", fold, "Etats Unis"),
            ("États-Unis", fold_lower, "etats unis"),
            ("États-Unis", exact, "États Unis"),
            ("cœur", fold, "coeur"),
            ("Æsop", fold_lower, "aesop"),
            ("d’IA dʼIA", fold, "d'IA d'IA"),
            ("droits \u{a0}de\n\tdouane", fold, "droits de douane"),
            ("a--b a - b", fold, "a  b a   b"),
            ("北京", fold_lower, "北京"),
            ("Pe\u{301}kin", fold, "Pekin"),
            (
                "Les  Puces \t de  Nvidia ",
                fold_lower,
                "les puces de nvidia ",
            ),
            ("  a b\n\n c", fold_lower, " a b c"),
            ("a \u{a0}b", exact, "a b"),
        ];
        for (original, how, want) in cases {
            let m = Mapped::new(original, how);
            assert_eq!(m.text, want, "{original:?} {how:?}");
            assert_eq!(m.original_span(0, m.text.len()), 0..original.len());
        }
        let text = "À Pékin, l’IA";
        let m = Mapped::new(text, fold_lower);
        let at = m.text.find("pekin").unwrap();
        assert_eq!(&text[m.original_span(at, at + 5)], "Pékin");
        let at = m.text.find("ia").unwrap();
        assert_eq!(&text[m.original_span(at, at + 2)], "IA");
        // After collapsed spaces, spans still land on the right words.
        let text = "Les  puces \t de   Nvidia";
        let m = Mapped::new(text, fold_lower);
        for word in ["puces", "de", "nvidia"] {
            let at = m.text.find(word).unwrap();
            assert_eq!(
                text[m.original_span(at, at + word.len())].to_lowercase(),
                word
            );
        }
    }
}
