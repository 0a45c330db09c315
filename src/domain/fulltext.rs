//! Full text (SPEC §7): which items have their page fetched, and what the
//! page says. Pure: the fetching, robots.txt and politeness are the shell's
//! (`crate::pages`).
//!
//! The article's text comes from the page's JSON-LD `articleBody` when it
//! has one (most French publishers carry it, and it says whether the text is
//! behind a paywall), else from its main content as reader modes find it.

use serde_json::Value;

use super::model::Item;

/// `full_text` of a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The feed's text only (the default).
    #[default]
    Never,
    /// The page of an item whose feed text looks cut.
    Auto,
    /// Every new item's page.
    Always,
}

/// Under this many characters, a feed's text is taken to be a teaser.
pub const SHORT: usize = 500;

/// Whether an item's page is wanted under `mode` (it must have a link).
pub fn wanted(mode: Mode, item: &Item) -> bool {
    let has_link = item
        .link
        .as_deref()
        .is_some_and(|l| l.starts_with("http://") || l.starts_with("https://"));
    has_link
        && match mode {
            Mode::Never => false,
            Mode::Always => true,
            Mode::Auto => looks_cut(feed_text(item)),
        }
}

/// The feed's own text of an item: its content, else its summary.
pub fn feed_text(item: &Item) -> &str {
    if item.content.trim().is_empty() {
        &item.summary
    } else {
        &item.content
    }
}

/// SPEC §7 "auto": under `SHORT` characters, or ending on what says
/// there is more (`text::ends_with_more`: an ellipsis, "Lire la suite",
/// "Read more"). A long text that merely stops mid-sentence is taken as
/// whole: many feeds end their summaries without a full stop.
pub fn looks_cut(text: &str) -> bool {
    let text = text.trim();
    text.chars().count() < SHORT || super::text::ends_with_more(text)
}

/// What a page gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Article {
    /// The article's text, and where it was found.
    Text { text: String, from: Source },
    /// No text to use, and why.
    None(Missing),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// JSON-LD `articleBody`.
    JsonLd,
    /// The page's main content.
    MainContent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// JSON-LD says the article is not free to read.
    Paywall,
    /// Nothing on the page looks like an article.
    NoArticle,
    /// Elements nested deeper than any article page's (`MAX_NESTING`).
    TooDeep,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Missing::Paywall => "paywalled (JSON-LD isAccessibleForFree is false)",
            Missing::NoArticle => "no article found on the page",
            Missing::TooDeep => "elements nested too deep to be an article page",
        })
    }
}

/// Shorter than this, an extracted text is no article (a cookie banner, a
/// "page not found" body).
const MIN_ARTICLE: usize = 200;

/// The article of an HTML page (`url`: where it was found, for relative
/// links).
pub fn extract(html: &str, url: &str) -> Article {
    if nesting(html) > MAX_NESTING {
        return Article::None(Missing::TooDeep);
    }
    let doc = dom_query::Document::from(html);
    let scripts = doc.select(r#"script[type="application/ld+json"]"#);
    let bodies = scripts.iter().map(|s| s.text().to_string());
    let ld = match json_ld(bodies) {
        Some(LdArticle { free: false, .. }) => return Article::None(Missing::Paywall),
        Some(LdArticle { body, .. }) => body.filter(|b| b.chars().count() >= MIN_ARTICLE),
        None => None,
    };
    match ld {
        Some(text) if !looks_cut(&text) => Article::Text {
            text,
            from: Source::JsonLd,
        },
        // Some sites put only the article's opening in their JSON-LD: a
        // body that looks cut, as a feed's summary would, gives way to the
        // page's main content when that is longer.
        ld => match (
            ld,
            main_content(doc, url).filter(|t| t.chars().count() >= MIN_ARTICLE),
        ) {
            (Some(ld), Some(main)) if ld.len() >= main.len() => Article::Text {
                text: ld,
                from: Source::JsonLd,
            },
            (_, Some(main)) => Article::Text {
                text: main,
                from: Source::MainContent,
            },
            (Some(ld), None) => Article::Text {
                text: ld,
                from: Source::JsonLd,
            },
            (None, None) => Article::None(Missing::NoArticle),
        },
    }
}

/// Elements nested deeper than this are no article page. Real pages nest
/// a few dozen deep (at most 51 among 1,171 pages of two public extraction
/// benchmarks, 26 among Mozilla Readability's news pages); a hostile one nested tens of thousands deep
/// makes the HTML tree builder quadratic and the reader mode's recursion
/// overflow its thread's stack, which would end the process.
const MAX_NESTING: usize = 400;

/// How deep the page's elements nest, read from its tags in one pass
/// (html5gum's tokenizer) before any tree is built. Close to what a
/// browser builds: void and self-closed elements do not nest, a `<p>` or
/// `<li>` opened while its like is open closes it, an end tag closes up to its start
/// (a stray one is ignored). Unclosed inline tags can only make it more.
fn nesting(html: &str) -> usize {
    use html5gum::{DefaultEmitter, Token, Tokenizer};
    const VOID: &[&[u8]] = &[
        b"area", b"base", b"br", b"col", b"embed", b"hr", b"img", b"input", b"link", b"meta",
        b"param", b"source", b"track", b"wbr", b"keygen",
    ];
    const SELF_CLOSING_KIN: &[&[u8]] = &[
        b"p",
        b"li",
        b"dt",
        b"dd",
        b"option",
        b"tr",
        b"td",
        b"th",
        b"rt",
        b"rp",
        b"optgroup",
    ];
    // What a `<li>`, `<td>` or `<p>` does not close beyond.
    const SCOPES: &[&[u8]] = &[
        b"ul",
        b"ol",
        b"dl",
        b"table",
        b"tbody",
        b"thead",
        b"tfoot",
        b"select",
        b"div",
        b"section",
        b"article",
        b"blockquote",
        b"body",
    ];
    let mut open: Vec<Vec<u8>> = Vec::new();
    let mut deepest = 0;
    // `<script>` and `<style>` hold raw text, not tags.
    let mut emitter = DefaultEmitter::default();
    emitter.naively_switch_states(true);
    for token in Tokenizer::new_with_emitter(html, emitter).flatten() {
        match token {
            Token::StartTag(tag) => {
                let name: &[u8] = tag.name.as_slice();
                if tag.self_closing || VOID.contains(&name) {
                    continue;
                }
                // `<li>` closes the `<li>` still open in its list (and the
                // `<p>` inside it), `<td>` the cell of its row…
                if SELF_CLOSING_KIN.contains(&name)
                    && let Some(at) = open.iter().rposition(|t| t == name)
                    && !open[at + 1..]
                        .iter()
                        .any(|t| SCOPES.contains(&t.as_slice()))
                {
                    open.truncate(at);
                }
                open.push(name.to_vec());
                deepest = deepest.max(open.len());
            }
            Token::EndTag(tag) => {
                let name: &[u8] = tag.name.as_slice();
                if let Some(at) = open.iter().rposition(|t| t == name) {
                    open.truncate(at);
                }
            }
            _ => {}
        }
    }
    deepest
}

/// The main content as a reader mode finds it (`dom_smoothie`, a port of
/// Mozilla's Readability), as plain text in paragraphs.
fn main_content(doc: dom_query::Document, url: &str) -> Option<String> {
    let cfg = dom_smoothie::Config {
        // Paragraphs apart, so that words of two paragraphs never run
        // together; the JSON-LD is read before, by `json_ld`.
        text_mode: dom_smoothie::TextMode::Formatted,
        disable_json_ld: true,
        ..Default::default()
    };
    let mut reader = dom_smoothie::Readability::with_document(doc, Some(url), Some(cfg)).ok()?;
    let article = reader.parse().ok()?;
    let text = super::text::plain_text(&article.text_content);
    (!text.trim().is_empty()).then_some(text)
}

/// The article a page's JSON-LD describes.
#[derive(Debug, Default, PartialEq)]
struct LdArticle {
    body: Option<String>,
    /// `isAccessibleForFree`, true when absent.
    free: bool,
}

/// Types whose `articleBody` is the story's text (schema.org `Article`
/// and the kinds news sites use).
const ARTICLE_TYPES: &[&str] = &[
    "Article",
    "NewsArticle",
    "ReportageNewsArticle",
    "AnalysisNewsArticle",
    "OpinionNewsArticle",
    "BackgroundNewsArticle",
    "ReviewNewsArticle",
    "LiveBlogPosting",
    "BlogPosting",
    "Report",
];

/// The article of the page's JSON-LD blocks: the first that has a body,
/// else the first there is. A block may be one object, a list, or a
/// `@graph`; a block that is not JSON is skipped.
fn json_ld(blocks: impl Iterator<Item = String>) -> Option<LdArticle> {
    let mut found = Vec::new();
    for block in blocks {
        if let Ok(v) = serde_json::from_str::<Value>(block.trim()) {
            articles(&v, &mut found);
        }
    }
    let first_with_body = found.iter().position(|a| a.body.is_some());
    let at = first_with_body.unwrap_or(0);
    (at < found.len()).then(|| found.swap_remove(at))
}

/// The articles `v` describes, in order, into `out`.
fn articles(v: &Value, out: &mut Vec<LdArticle>) {
    match v {
        Value::Array(list) => list.iter().for_each(|v| articles(v, out)),
        Value::Object(map) => {
            if let Some(graph) = map.get("@graph") {
                return articles(graph, out);
            }
            let typed = match map.get("@type") {
                Some(Value::String(t)) => is_article(t),
                Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).any(is_article),
                _ => false,
            };
            if !typed {
                // A page's article may be its `mainEntity`.
                if let Some(main) = map.get("mainEntity") {
                    articles(main, out);
                }
                return;
            }
            let free = match map.get("isAccessibleForFree") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => !s.trim().eq_ignore_ascii_case("false"),
                _ => true,
            };
            let body = map
                .get("articleBody")
                .and_then(Value::as_str)
                .map(super::text::plain_text)
                .filter(|b| !b.trim().is_empty());
            out.push(LdArticle { body, free });
        }
        _ => {}
    }
}

fn is_article(t: &str) -> bool {
    let t = t
        .trim_start_matches("http://schema.org/")
        .trim_start_matches("https://schema.org/");
    ARTICLE_TYPES.contains(&t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_texts_are_recognised() {
        let long = "Une phrase de remplissage assez longue pour passer le seuil. ".repeat(10);
        let cases = [
            ("Deux lignes seulement.", true),
            (long.as_str(), false),
            (&format!("{long} et la suite…"), true),
            (&format!("{long} et la suite […]"), true),
            (&format!("{long} et la suite (...)"), true),
            (&format!("{long} Lire la suite"), true),
            (&format!("{long} Lire la suite »"), true),
            (&format!("{long} Read more →"), true),
            (&format!("{long} Continuer la lecture"), true),
            (&format!("{long} Continue reading"), true),
            (&format!("{long} La fin est là."), false),
            (&format!("{long} Sans point final"), false),
        ];
        for (text, cut) in cases {
            assert_eq!(looks_cut(text), cut, "{text:?}");
        }
    }

    #[test]
    fn the_mode_decides() {
        let item = Item {
            link: Some("https://exemple.fr/a".into()),
            summary: "Court.".into(),
            ..Item::default()
        };
        assert!(!wanted(Mode::Never, &item));
        assert!(wanted(Mode::Auto, &item));
        let long = Item {
            summary: "Texte complet, sans coupure. ".repeat(30),
            ..item.clone()
        };
        assert!(!wanted(Mode::Auto, &long));
        assert!(wanted(Mode::Always, &long));
        let no_link = Item { link: None, ..item };
        assert!(!wanted(Mode::Always, &no_link));
    }

    #[test]
    fn json_ld_in_its_shapes() {
        let body = "Le texte de l'article. ".repeat(20);
        let one = format!(r#"{{"@type":"NewsArticle","articleBody":"{body}"}}"#);
        let graph = format!(
            r#"{{"@context":"https://schema.org","@graph":[{{"@type":"WebPage"}},{{"@type":["Article"],"articleBody":"{body}"}}]}}"#
        );
        let paid =
            r#"[{"@type":"NewsArticle","isAccessibleForFree":"False","articleBody":"Début"}]"#;
        assert_eq!(
            json_ld([one].into_iter()).unwrap().body.unwrap().trim(),
            body.trim()
        );
        assert!(
            json_ld(["not json".into(), graph].into_iter())
                .unwrap()
                .free
        );
        assert!(!json_ld([paid.to_owned()].into_iter()).unwrap().free);
        assert_eq!(
            json_ld([r#"{"@type":"Organization"}"#.to_owned()].into_iter()),
            None
        );
        // A related article without a body, paywalled, says nothing of the
        // page's own; a WebPage's mainEntity is read.
        let related = format!(
            r#"[{{"@type":"NewsArticle","isAccessibleForFree":false}},{{"@type":"WebPage","mainEntity":{{"@type":"NewsArticle","articleBody":"{body}"}}}}]"#
        );
        let found = json_ld([related].into_iter()).unwrap();
        assert!(found.free && found.body.is_some());
    }

    #[test]
    fn a_cut_json_ld_body_gives_way_to_a_longer_page() {
        let opening = "Le début de l'article, seul dans le JSON-LD, ".repeat(6);
        let ld = format!(r#"{{"@type":"NewsArticle","articleBody":"{opening}…"}}"#);
        let paragraphs: String = (0..8)
            .map(|i| format!("<p>{opening} et le paragraphe {i} qui suit, complet, avec tout ce qu'il faut de mots pour être lu.</p>"))
            .collect();
        let page = format!(
            r#"<html><head><script type="application/ld+json">{ld}</script></head><body><article>{paragraphs}</article></body></html>"#
        );
        match extract(&page, "https://exemple.fr/a") {
            Article::Text { text, from } => {
                assert_eq!(from, Source::MainContent);
                assert!(text.contains("paragraphe 7"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        // Whole, the JSON-LD body is taken as it is.
        let whole = page.replace("…", ".").replace(&opening, &opening.repeat(3));
        assert!(matches!(
            extract(&whole, "https://exemple.fr/a"),
            Article::Text {
                from: Source::JsonLd,
                ..
            }
        ));
    }

    #[test]
    fn a_page_nested_without_end_is_refused_before_any_tree_is_built() {
        // Tens of thousands deep made the tree builder quadratic and the
        // reader mode overflow its stack (the process aborted).
        let text = "Un paragraphe de l'article, assez long pour en être un. ".repeat(10);
        let nested = |depth: usize| {
            format!(
                "<html><body>{}<p>{text}</p>{}</body></html>",
                "<div>".repeat(depth),
                "</div>".repeat(depth)
            )
        };
        assert_eq!(nesting(&nested(50)), 53);
        assert_eq!(
            extract(&nested(100_000), "https://exemple.fr/a"),
            Article::None(Missing::TooDeep)
        );
        // At the limit, on a thread with the blocking pool's 2 MiB stack:
        // read, not crashed.
        let page = nested(MAX_NESTING - 5);
        let read = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || extract(&page, "https://exemple.fr/a"))
            .unwrap()
            .join()
            .unwrap();
        assert!(matches!(read, Article::Text { .. }), "{read:?}");
        // Paragraphs and list items left open, as old pages leave them, do
        // not count as nesting.
        let sloppy = format!("<ul>{}</ul>", "<li><p>un point".repeat(1_000));
        assert!(nesting(&sloppy) <= 3, "{}", nesting(&sloppy));
    }
}
