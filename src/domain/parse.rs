//! Bytes (with the charset HTTP declared) → `ParsedFeed`.
//!
//! feed-rs does the parsing; this module makes real-world documents palatable
//! to it first and keeps its failures to one feed:
//! - the document is decoded here (BOM, then HTTP charset, then XML prolog,
//!   then UTF-8, else windows-1252) and handed over as UTF-8 without its XML
//!   declaration: quick-xml panics on a non-UTF-8 declaration that is not at
//!   the very start, and on UTF-16 documents;
//! - `<rss>` without `version`, JSON Feed `"version": "1.1"` and Atom text
//!   types written as MIME types are repaired, not refused;
//! - at most `MAX_ITEMS` items are considered, cut before parsing, so that a
//!   document of a million tiny items costs what 500 cost;
//! - a panic inside the parser becomes an error for that document.
//!
//! feed-rs types stop here and in `normalize`.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use regex::Regex;
use std::sync::LazyLock;

use super::model::ParsedFeed;
use super::normalize;
use super::text::one_line;
use super::zone::Zone;

/// Items considered per document; news feeds carry 10 to 100.
pub const MAX_ITEMS: usize = 500;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    #[error("not a feed: {0}")]
    Invalid(String),
    #[error(
        "a web page (HTML), not a feed: give the feed's own address (`veille test --feed URL` lists the feeds a page announces)"
    )]
    WebPage,
    #[error("empty document")]
    Empty,
    #[error("the parser crashed on this document")]
    Panicked,
}

/// What a fetch hands to the parser.
pub struct Document<'a> {
    pub bytes: &'a [u8],
    /// `charset` of the HTTP `Content-Type`, if any.
    pub charset: Option<&'a str>,
    /// Where the document came from, to resolve relative links (http only).
    pub base_url: Option<&'a str>,
}

pub fn parse(doc: &Document, zone: Zone) -> Result<ParsedFeed, ParseError> {
    let text = decode(doc.bytes, doc.charset);
    let body = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    if body.is_empty() {
        return Err(ParseError::Empty);
    }
    // The repairs run on hostile text too: a panic in them is this
    // document's failure, like one in the parser.
    let prepared = catch_unwind(|| {
        if body.starts_with('{') {
            prepare_json(body)
        } else {
            Ok(prepare_xml(body))
        }
    });
    let Prepared {
        text: prepared,
        dropped,
        held,
    } = prepared.map_err(|_| ParseError::Panicked)??;
    let mut feed = match run_feed_rs(&prepared, doc.base_url, zone) {
        Err(ParseError::Invalid(msg)) if msg.contains("unsupported content type") => {
            run_feed_rs(&repair_atom_types(&prepared), doc.base_url, zone)
        }
        Err(ParseError::Invalid(_)) if super::discover::looks_like_html(None, body) => {
            Err(ParseError::WebPage)
        }
        other => other,
    }?;
    feed.dropped_items += dropped;
    feed.unread_items = held.saturating_sub(feed.items.len());
    Ok(feed)
}

fn run_feed_rs(text: &str, base: Option<&str>, zone: Zone) -> Result<ParsedFeed, ParseError> {
    let parser = feed_rs::parser::Builder::new()
        // An empty id tells `normalize` that the publisher gave none: feed-rs
        // would otherwise invent one, random for items without a link.
        .id_generator(|_, _, _| String::new())
        .timestamp_parser(move |s| super::dates::parse_date(s, zone))
        .base_uri(base)
        .build();
    let outcome = catch_unwind(AssertUnwindSafe(|| parser.parse(text.as_bytes())));
    match outcome {
        Ok(Ok(feed)) => Ok(normalize::feed(feed)),
        Ok(Err(e)) => Err(ParseError::Invalid(one_line(&e.to_string()))),
        Err(_) => Err(ParseError::Panicked),
    }
}

/// Bytes → text, choosing the encoding as browsers and feed readers do.
pub fn decode(bytes: &[u8], declared: Option<&str>) -> String {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        return enc
            .decode_without_bom_handling(&bytes[bom_len..])
            .0
            .into_owned();
    }
    if bytes.starts_with(b"\0<") {
        return encoding_rs::UTF_16BE
            .decode_without_bom_handling(bytes)
            .0
            .into_owned();
    }
    if bytes.starts_with(b"<\0") {
        return encoding_rs::UTF_16LE
            .decode_without_bom_handling(bytes)
            .0
            .into_owned();
    }
    let http = declared.and_then(|l| Encoding::for_label(l.trim().as_bytes()));
    let prolog = prolog_encoding(bytes);
    // UTF-16 labels on bytes that are not UTF-16 (checked above) are lies.
    let usable = |e: &&'static Encoding| e.output_encoding() == *e;
    let candidates = [http.filter(usable), prolog.filter(usable), Some(UTF_8)];
    for enc in candidates.into_iter().flatten() {
        let (text, had_errors) = enc.decode_without_bom_handling(bytes);
        if !had_errors {
            return text.into_owned();
        }
    }
    WINDOWS_1252
        .decode_without_bom_handling(bytes)
        .0
        .into_owned()
}

/// The `encoding` of an XML declaration near the start, read as ASCII.
fn prolog_encoding(bytes: &[u8]) -> Option<&'static Encoding> {
    static DECL: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
        regex::bytes::Regex::new(r#"^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']"#)
            .unwrap()
    });
    let head = &bytes[..bytes.len().min(1024)];
    let label = DECL.captures(head)?.get(1)?;
    Encoding::for_label(label.as_bytes())
}

/// Drops the XML declaration (the text is UTF-8 now), gives `<rss>` a version
/// when it has none, and cuts items past `MAX_ITEMS`; copies the document
/// only when it changes.
fn prepare_xml(body: &str) -> Prepared<'_> {
    // A declaration ends at the first `?>`, as quick-xml reads it, even when
    // a `>` comes before (inside a quoted value).
    static DECL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)^<\?xml(\s.*?)?\?>").unwrap());
    // A declaration later in the document (invalid XML, seen in real feeds
    // pasted together) made quick-xml panic when it named another charset.
    static LATE_DECL: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?s)<\?xml\s.*?\?>").unwrap());
    static RSS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<rss(\s[^>]*)?>").unwrap());
    let body = DECL.find(body).map_or(body, |m| &body[m.end()..]);
    let (text, dropped) = cap_items(body);
    let mut text = text;
    // Removing one can join the pieces around it into another
    // (`<?xml<?xml …?> version="1.0" encoding="utf-16"?>`): again until none
    // is left, a few times at most (a deeper nest fails as that feed's error).
    for _ in 0..8 {
        match LATE_DECL.replace_all(&text, "") {
            Cow::Borrowed(_) => break,
            Cow::Owned(fixed) => text = Cow::Owned(fixed),
        }
    }
    let text = base64_constructs(cdf_as_rss(translate_dialects(text)));
    let mut text = person_spaces(rdf_item_links(text));
    if let Some((range, tag)) = RSS.find(&text).map(|m| (m.range(), m.as_str().to_owned())) {
        let m_start = range.start;
        let known = [
            "\"2.0\"", "'2.0'", "\"0.91\"", "'0.91'", "\"0.92\"", "'0.92'",
        ];
        if !tag.contains("version") {
            let at = m_start + "<rss".len();
            text.to_mut().insert_str(at, r#" version="2.0""#);
        } else if !known.iter().any(|v| tag.contains(v)) {
            // 0.93, 0.94, 2.01…: read as 2.0, of which they are subsets.
            let fixed = VERSION.replace(&tag, r#"version="2.0""#).into_owned();
            text.to_mut().replace_range(range, &fixed);
        }
        // Items straight under <rss>, with no <channel> around them.
        if !text.contains("<channel")
            && let Some(close) = text.rfind("</rss>")
        {
            let open = text[m_start..].find('>').map(|i| m_start + i + 1);
            if let Some(open) = open.filter(|o| *o <= close) {
                let t = text.to_mut();
                t.insert_str(close, "</channel>");
                t.insert_str(open, "<channel>");
            }
        }
    }
    Prepared {
        held: item_starts(&text).len(),
        text,
        dropped,
    }
}

/// A document made ready for feed-rs: its text, the items cut past
/// `MAX_ITEMS`, and the items it holds (what feed-rs should yield).
struct Prepared<'a> {
    text: Cow<'a, str>,
    dropped: usize,
    held: usize,
}

static VERSION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"version\s*=\s*["'][^"']*["']"#).unwrap());

/// feed-rs 3.0 reads a person (RSS `author`, `managingEditor`, `webMaster`,
/// `dc:creator`, `itunes:author`, a JSON Feed author's `name`) by slicing one
/// byte before or after the e-mail address in it, which panics when the
/// character there is not ASCII — a no-break space, common in French text:
/// `redaction@lemonde.fr\u{a0}(La Rédaction)` made the whole document
/// unreadable. Such an address gets an ASCII space on that side.
fn space_emails(person: &str) -> Cow<'_, str> {
    static EMAIL: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}").unwrap());
    let wide = |c: Option<char>| c.is_some_and(|c| !c.is_ascii());
    let needed = EMAIL.find_iter(person).any(|m| {
        wide(person[..m.start()].chars().next_back()) || wide(person[m.end()..].chars().next())
    });
    if !needed {
        return Cow::Borrowed(person);
    }
    EMAIL.replace_all(person, |e: &regex::Captures| {
        let m = e.get(0).expect("the whole match");
        let space = |c| if wide(c) { " " } else { "" };
        let before = space(person[..m.start()].chars().next_back());
        let after = space(person[m.end()..].chars().next());
        format!("{before}{}{after}", m.as_str())
    })
}

/// `space_emails` on every element feed-rs reads as a person.
fn person_spaces(text: Cow<'_, str>) -> Cow<'_, str> {
    static PERSON: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"<(?:[\w-]+:)?(?:author|managingEditor|webMaster|creator|name)\b[^>]*>([^<]*)<")
            .unwrap()
    });
    // Most documents hold no address at all: no scan then.
    if !text.contains('@') {
        return text;
    }
    let needed = PERSON.captures_iter(&text).any(|c| {
        c.get(1)
            .is_some_and(|inner| matches!(space_emails(inner.as_str()), Cow::Owned(_)))
    });
    if !needed {
        return text;
    }
    let fixed = PERSON
        .replace_all(&text, |c: &regex::Captures| {
            let (whole, inner) = (
                c.get(0).expect("the whole match"),
                c.get(1).expect("group 1"),
            );
            let open = &whole.as_str()[..inner.start() - whole.start()];
            format!("{open}{}<", space_emails(inner.as_str()))
        })
        .into_owned();
    Cow::Owned(fixed)
}

/// Stands for "no link" in an RSS 1.0 item given one for feed-rs, which
/// drops RDF items without a `<link>`; `normalize` turns it back into none.
pub(super) const NO_LINK: &str = "urn:x-veille:no-link";

/// RSS 1.0 / 0.90 items without `<link>` get their `rdf:about` (the item's
/// own URI) as link, or `NO_LINK`: an item with a title alone is an item.
fn rdf_item_links(text: Cow<'_, str>) -> Cow<'_, str> {
    static ITEM: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?s)<item\b([^>]*)>(.*?)</item>").unwrap());
    static ABOUT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"about\s*=\s*["']([^"']+)["']"#).unwrap());
    static LINK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<(\w+:)?link\b").unwrap());
    let head = &text[..text.floor_char_boundary(2048)];
    if !head.contains(":RDF") && !head.contains("<RDF") {
        return text;
    }
    let fixed = ITEM.replace_all(&text, |c: &regex::Captures| {
        if LINK.is_match(&c[2]) {
            return c[0].to_owned();
        }
        let link = ABOUT
            .captures(&c[1])
            .map_or(NO_LINK, |a| a.get(1).unwrap().as_str());
        let link = html_escape::encode_text(link);
        format!("<item{}><link>{link}</link>{}</item>", &c[1], &c[2])
    });
    Cow::Owned(fixed.into_owned())
}

/// CDF (Microsoft's Channel Definition Format, 1997) written out as the
/// RSS 2.0 it maps to: `ITEM HREF` the link, `LASTMOD` the date, `TITLE`,
/// `ABSTRACT` the description.
fn cdf_as_rss(text: Cow<'_, str>) -> Cow<'_, str> {
    static ROOT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^\s*(?:<!--(?s:.*?)-->\s*)*<CHANNEL[\s>]").unwrap());
    static ITEM: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?s)<ITEM\b([^>]*?)(?:/>|>(.*?)</ITEM>)").unwrap());
    static TITLE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?s)<TITLE[^>]*>(.*?)</TITLE>").unwrap());
    static ABSTRACT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?s)<ABSTRACT[^>]*>(.*?)</ABSTRACT>").unwrap());
    static HREF: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"(?i)\bHREF\s*=\s*["']([^"']*)["']"#).unwrap());
    static LASTMOD: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"(?i)\bLASTMOD\s*=\s*["']([^"']*)["']"#).unwrap());
    if !ROOT.is_match(&text) {
        return text;
    }
    let inner = |re: &Regex, body: &str| re.captures(body).map(|c| c[1].to_owned());
    let head = text.find("<ITEM").map_or(&text[..], |at| &text[..at]);
    let mut rss = format!(
        "<rss version=\"2.0\"><channel><title>{}</title>",
        inner(&TITLE, head).unwrap_or_default()
    );
    for c in ITEM.captures_iter(&text) {
        let body = c.get(2).map_or("", |m| m.as_str());
        rss.push_str("<item>");
        if let Some(t) = inner(&TITLE, body) {
            rss.push_str(&format!("<title>{t}</title>"));
        }
        if let Some(href) = inner(&HREF, &c[1]) {
            rss.push_str(&format!("<link>{href}</link>"));
        }
        if let Some(a) = inner(&ABSTRACT, body) {
            rss.push_str(&format!("<description>{a}</description>"));
        }
        if let Some(date) = inner(&LASTMOD, &c[1]) {
            rss.push_str(&format!("<pubDate>{date}</pubDate>"));
        }
        rss.push_str("</item>");
    }
    rss.push_str("</channel></rss>");
    Cow::Owned(rss)
}

/// Atom text and content whose `type` is a media type that is neither text
/// nor XML carry base64 (RFC 4287 §4.1.3.3; Atom 0.3's `mode="base64"` has
/// been turned into such a type by `translate_dialects`):
/// decoded, and typed `html` or `text`. A body that is not base64 (a type
/// like `application/x-custom` on plain words) is kept, typed `text`.
fn base64_constructs(text: Cow<'_, str>) -> Cow<'_, str> {
    use base64::Engine;
    static CONSTRUCT: LazyLock<Regex> = LazyLock::new(|| {
        // Atom's own elements only (`atom:` or no prefix): `media:content`
        // has a `type` of its own.
        Regex::new(r#"(?s)<((?:atom:)?(?:title|subtitle|summary|content|rights))([^>]*?)\stype\s*=\s*"([^"]*)"([^>]*)>(.*?)</(?:atom:)?(?:title|subtitle|summary|content|rights)>"#).unwrap()
    });
    static TYPE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"type\s*=\s*"(?:application|image|audio|video|font|model)/[^"]*""#).unwrap()
    });
    let binary = |media: &str| {
        let m = media.to_ascii_lowercase();
        m.contains('/') && !m.starts_with("text/") && !m.ends_with("xml")
    };
    // The whole-document pass only for documents that have such a type: a
    // cheap scan first, as nearly every Atom feed has `type="html"`.
    let any = text.contains("2005/Atom")
        && TYPE
            .find_iter(&text)
            .any(|m| binary(m.as_str().trim_end_matches('"')));
    if !any {
        return text;
    }
    let fixed = CONSTRUCT.replace_all(&text, |c: &regex::Captures| {
        if !binary(&c[3]) {
            return c[0].to_owned();
        }
        let (name, before, after, body) = (&c[1], &c[2], &c[4], &c[5]);
        let compact: String = body
            .chars()
            .filter(|ch| !ch.is_ascii_whitespace())
            .collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        match decoded {
            Some(d) => {
                let kind = if d.contains('<') { "html" } else { "text" };
                let d = html_escape::encode_text(&d);
                format!(r#"<{name}{before} type="{kind}"{after}>{d}</{name}>"#)
            }
            None => format!(r#"<{name}{before} type="text"{after}>{body}</{name}>"#),
        }
    });
    Cow::Owned(fixed.into_owned())
}

/// Namespaces feed-rs does not know, as the ones it does: it reads
/// elements by namespace, so a document in one of these yielded no item.
const NAMESPACES: [(&str, &str); 5] = [
    // Atom 0.3: read as Atom 1.0 once its few renamed parts are renamed.
    ("http://purl.org/atom/ns#", "http://www.w3.org/2005/Atom"),
    // RSS 0.90 (Netscape's RDF): the elements RSS 1.0 kept.
    (
        "http://my.netscape.com/rdf/simple/0.9/",
        "http://purl.org/rss/1.0/",
    ),
    (
        "http://channel.netscape.com/rdf/simple/0.9/",
        "http://purl.org/rss/1.0/",
    ),
    // RSS 2.0 in the Userland namespace, with or without a prefix.
    (
        "http://backend.userland.com/rss2",
        "http://purl.org/rss/1.0/",
    ),
    (
        "http://backend.userland.com/rss",
        "http://purl.org/rss/1.0/",
    ),
];

/// Older dialects as the ones feed-rs reads (feed-rs is kept as the
/// parser; these are translations of the document, not a second parser):
/// their namespaces, and Atom 0.3's `issued`, `modified`, `tagline`,
/// `copyright` and `mode` (`escaped` content is HTML or text, as its `type`
/// says; `base64` is left, and refused by the parser with its reason).
fn translate_dialects(text: Cow<'_, str>) -> Cow<'_, str> {
    static ATOM03_TAGS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"<(/?)((?:[A-Za-z_][\w.-]*:)?)(issued|modified|tagline|copyright)\b").unwrap()
    });
    // A start tag with a `mode`, wherever its `type` stands among the
    // attributes.
    static MODE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"<([A-Za-z_][\w.:-]*)([^<>]*?)\smode\s*=\s*["'](escaped|xml|base64)["']([^<>]*?)(/?)>"#).unwrap()
    });
    static TYPE_ATTR: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"\stype\s*=\s*["']([^"']*)["']"#).unwrap());
    let head = &text[..text.floor_char_boundary(4096)];
    let found: Vec<&(&str, &str)> = NAMESPACES
        .iter()
        .filter(|(old, _)| head.contains(old))
        .collect();
    if found.is_empty() {
        return text;
    }
    let atom03 = head.contains(NAMESPACES[0].0);
    let mut out = text.into_owned();
    for (old, new) in found {
        out = out.replace(old, new);
    }
    if atom03 {
        out = ATOM03_TAGS
            .replace_all(&out, |c: &regex::Captures| {
                let new = match &c[3] {
                    "issued" => "published",
                    "modified" => "updated",
                    "tagline" => "subtitle",
                    _ => "rights",
                };
                format!("<{}{}{new}", &c[1], &c[2])
            })
            .into_owned();
        out = MODE
            .replace_all(&out, |c: &regex::Captures| {
                let attrs = format!("{}{}", &c[2], &c[4]);
                let declared = TYPE_ATTR
                    .captures(&attrs)
                    .map_or(String::new(), |t| t[1].to_ascii_lowercase());
                let html = declared.contains("html");
                let kind = match (&c[3], html) {
                    // Decoded by `base64_constructs`.
                    ("base64", _) => "application/octet-stream",
                    ("escaped", true) => "html",
                    ("escaped", false) => "text",
                    (_, true) => "xhtml",
                    _ => "text",
                };
                let attrs = TYPE_ATTR.replace_all(&attrs, "");
                format!(r#"<{}{attrs} type="{kind}"{}>"#, &c[1], &c[5])
            })
            .into_owned();
        out = repair_atom_types(&out);
    }
    Cow::Owned(out)
}

/// Removes every item after the first `MAX_ITEMS`, keeping what follows the
/// last one (closing tags), so that the document stays well-formed.
fn cap_items(body: &str) -> (Cow<'_, str>, usize) {
    let starts = item_starts(body);
    if starts.len() <= MAX_ITEMS {
        return (Cow::Borrowed(body), 0);
    }
    let cut_from = starts[MAX_ITEMS];
    let resume = ["</item>", "</entry>"]
        .iter()
        .filter_map(|t| body.rfind(t).map(|at| at + t.len()))
        .max()
        .filter(|end| *end > cut_from);
    match resume {
        Some(end) => (
            Cow::Owned(format!("{}{}", &body[..cut_from], &body[end..])),
            starts.len() - MAX_ITEMS,
        ),
        None => (Cow::Borrowed(body), 0),
    }
}

fn item_starts(body: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    for tag in ["<item", "<entry"] {
        let mut from = 0;
        while let Some(found) = body[from..].find(tag) {
            let at = from + found;
            let next = body.as_bytes().get(at + tag.len()).copied();
            if matches!(next, Some(b' ' | b'>' | b'/' | b'\t' | b'\r' | b'\n')) {
                starts.push(at);
            }
            from = at + tag.len();
        }
    }
    starts.sort_unstable();
    starts
}

/// JSON Feed: accept `"version": "1.1"` (and any non-URL version) and cap
/// items. feed-rs only knows the `https://jsonfeed.org/version/1.x` form.
fn prepare_json(body: &str) -> Result<Prepared<'_>, ParseError> {
    let mut value: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| ParseError::Invalid(format!("invalid JSON: {e}")))?;
    let Some(obj) = value.as_object_mut() else {
        return Err(ParseError::Invalid("JSON document is not an object".into()));
    };
    let version = obj.get("version").and_then(|v| v.as_str()).unwrap_or("");
    if !version.starts_with("https://jsonfeed.org/version/") {
        let fixed = match version {
            "1" | "1.0" => "https://jsonfeed.org/version/1",
            _ => "https://jsonfeed.org/version/1.1",
        };
        obj.insert("version".into(), fixed.into());
    }
    space_json_authors(obj);
    if let Some(items) = obj.get_mut("items").and_then(|i| i.as_array_mut()) {
        items
            .iter_mut()
            .filter_map(|i| i.as_object_mut())
            .for_each(space_json_authors);
    }
    let mut dropped = 0;
    if let Some(items) = obj.get_mut("items").and_then(|i| i.as_array_mut())
        && items.len() > MAX_ITEMS
    {
        dropped = items.len() - MAX_ITEMS;
        items.truncate(MAX_ITEMS);
    }
    let held = obj
        .get("items")
        .and_then(|i| i.as_array())
        .map_or(0, Vec::len);
    Ok(Prepared {
        text: Cow::Owned(value.to_string()),
        dropped,
        held,
    })
}

/// `space_emails` on the names of a JSON Feed object's `author` and `authors`.
fn space_json_authors(obj: &mut serde_json::Map<String, serde_json::Value>) {
    let mut people: Vec<&mut serde_json::Value> = Vec::new();
    for (key, value) in obj.iter_mut() {
        match (key.as_str(), value) {
            ("author", v) => people.push(v),
            ("authors", serde_json::Value::Array(list)) => people.extend(list.iter_mut()),
            _ => {}
        }
    }
    for person in people {
        if let Some(name) = person.get_mut("name")
            && let Some(text) = name.as_str()
            && let Cow::Owned(fixed) = space_emails(text)
        {
            *name = fixed.into();
        }
    }
}

/// Atom text constructs typed with MIME types (`text/plain`, `text/html`,
/// `application/xhtml+xml`) become the three words Atom defines.
fn repair_atom_types(text: &str) -> String {
    text.replace(r#"type="text/plain""#, r#"type="text""#)
        .replace(r#"type="text/html""#, r#"type="html""#)
        .replace(r#"type="application/xhtml+xml""#, r#"type="xhtml""#)
        .replace(r#"type="""#, r#"type="text""#)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_bytes(bytes: &[u8], charset: Option<&str>) -> Result<ParsedFeed, ParseError> {
        let doc = Document {
            bytes,
            charset,
            base_url: Some("https://example.org/feed"),
        };
        parse(&doc, Zone::Named(chrono_tz::Europe::Paris))
    }

    const RSS: &str = r#"<rss version="2.0"><channel><title>T</title><item><title>Caf\u{e9} et cr\u{e8}me</title><link>/a</link></item></channel></rss>"#;

    #[test]
    fn charsets_are_honoured() {
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss version=\"2.0\"><channel><title>Actualit\xe9s</title><item><title>\xc9t\xe9 \x80</title></item></channel></rss>";
        let feed = parse_bytes(latin1, None).unwrap();
        assert_eq!(feed.title, "Actualités");
        assert_eq!(feed.items[0].title, "Été €");
        // Blank lines before a non-UTF-8 declaration made quick-xml panic.
        let mut leading = b"\n\n  ".to_vec();
        leading.extend_from_slice(latin1);
        assert_eq!(parse_bytes(&leading, None).unwrap().items[0].title, "Été €");
        // Latin-1 without a declaration: the HTTP charset decides.
        let bare = b"<rss version=\"2.0\"><channel><title>t</title><item><title>\xe9t\xe9</title></item></channel></rss>";
        assert_eq!(
            parse_bytes(bare, Some("iso-8859-1")).unwrap().items[0].title,
            "été"
        );
        // Without any declaration, invalid UTF-8 reads as windows-1252.
        assert_eq!(parse_bytes(bare, None).unwrap().items[0].title, "été");
        // HTTP says UTF-8, the bytes and the prolog say Latin-1: the bytes win.
        assert_eq!(
            parse_bytes(latin1, Some("utf-8")).unwrap().items[0].title,
            "Été €"
        );
    }

    #[test]
    fn utf16_documents_parse() {
        let text = r#"<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel><title>t</title><item><title>Pékin</title></item></channel></rss>"#;
        let be: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        assert_eq!(parse_bytes(&be, None).unwrap().items[0].title, "Pékin");
        let mut le_bom = vec![0xff, 0xfe];
        le_bom.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
        assert_eq!(parse_bytes(&le_bom, None).unwrap().items[0].title, "Pékin");
    }

    #[test]
    fn documents_feed_rs_refuses_are_repaired() {
        let no_version =
            "<rss><channel><title>t</title><item><title>a</title></item></channel></rss>";
        assert_eq!(
            parse_bytes(no_version.as_bytes(), None)
                .unwrap()
                .items
                .len(),
            1
        );
        let json11 = r#"{"version":"1.1","title":"t","items":[{"id":"1","content_text":"x","url":"https://x.fr/1"}]}"#;
        let feed = parse_bytes(json11.as_bytes(), None).unwrap();
        assert_eq!(feed.items[0].source_id.as_deref(), Some("1"));
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title type="text/plain">t</title><id>f</id><entry><id>e</id><title type="text/html">&lt;b&gt;a&lt;/b&gt;</title></entry></feed>"#;
        assert_eq!(
            parse_bytes(atom.as_bytes(), None).unwrap().items[0].title,
            "a"
        );
    }

    #[test]
    fn a_declaration_later_in_the_document_is_dropped_not_a_crash() {
        for charset in ["shift_jis", "utf-16", "ISO-8859-1"] {
            let doc = format!(
                r#"<rss version="2.0"><channel><title>t</title><item><title>Pékin</title></item><?xml version="1.0" encoding="{charset}"?></channel></rss>"#
            );
            let feed = parse_bytes(doc.as_bytes(), None).unwrap();
            assert_eq!(feed.items[0].title, "Pékin", "{charset}");
            // Nor does one declaration inside another.
            let doc = format!(
                r#"<rss version="2.0"><channel><title>t</title><?xml<?xml version="1.0" encoding="utf-16"?> version="1.0" encoding="{charset}"?><item><title>Pékin</title></item></channel></rss>"#
            );
            let feed = parse_bytes(doc.as_bytes(), None).unwrap();
            assert_eq!(feed.items[0].title, "Pékin", "nested {charset}");
            // A `>` inside a value does not end it (found by the mutation
            // test: quick-xml panicked on this one too).
            let doc = format!(
                r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><?xml version="<b>1.0" encoding="{charset}"?><entry><title>Pékin</title></entry></feed>"#
            );
            let feed = parse_bytes(doc.as_bytes(), None).unwrap();
            assert_eq!(feed.items[0].title, "Pékin", "{charset}");
        }
    }

    #[test]
    fn an_address_beside_a_no_break_space_is_read_not_a_crash() {
        for author in [
            "redaction@lemonde.fr\u{a0}(La Rédaction)",
            "La Rédaction\u{a0}redaction@lemonde.fr",
            "«\u{a0}redaction@lemonde.fr\u{a0}»",
        ] {
            let doc = format!(
                r#"<rss version="2.0"><channel><title>t</title><managingEditor>{author}</managingEditor><item><title>Pékin</title><author>{author}</author></item></channel></rss>"#
            );
            let feed = parse_bytes(doc.as_bytes(), None).unwrap();
            assert_eq!(feed.items[0].title, "Pékin", "{author}");
            let doc = format!(
                r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel rdf:about="x"><title>t</title><link>https://x.fr/</link></channel><item rdf:about="https://x.fr/a"><title>Pékin</title><link>https://x.fr/a</link><dc:creator>{author}</dc:creator></item></rdf:RDF>"#
            );
            let feed = parse_bytes(doc.as_bytes(), None).unwrap();
            assert_eq!(feed.items[0].title, "Pékin", "dc:creator {author}");
            let json = serde_json::json!({
                "version": "https://jsonfeed.org/version/1.1",
                "title": "t",
                "authors": [{"name": author}],
                "items": [{"id": "1", "title": "Pékin", "authors": [{"name": author}]}],
            });
            let feed = parse_bytes(json.to_string().as_bytes(), None).unwrap();
            assert_eq!(feed.items[0].title, "Pékin", "JSON {author}");
        }
    }

    #[test]
    fn relative_links_resolve_against_the_feed() {
        let feed = parse_bytes(RSS.as_bytes(), None).unwrap();
        assert_eq!(feed.items[0].link.as_deref(), Some("https://example.org/a"));
    }

    #[test]
    fn items_past_the_cap_are_not_considered() {
        let mut doc = String::from(r#"<rss version="2.0"><channel><title>t</title>"#);
        for i in 0..MAX_ITEMS + 40 {
            doc.push_str(&format!("<item><guid>{i}</guid><title>n{i}</title></item>"));
        }
        doc.push_str("</channel></rss>");
        let feed = parse_bytes(doc.as_bytes(), None).unwrap();
        assert_eq!(feed.items.len(), MAX_ITEMS);
        assert_eq!(feed.dropped_items, 40);
        assert_eq!(
            feed.items.last().unwrap().title,
            format!("n{}", MAX_ITEMS - 1)
        );
    }

    #[test]
    fn broken_documents_are_errors_not_crashes() {
        for bad in [
            "",
            "   ",
            "<html><body>nope</body></html>",
            "<rss version=\"2.0\"><channel><item>",
            "{\"items\": 3",
            "plain words",
        ] {
            assert!(parse_bytes(bad.as_bytes(), None).is_err(), "{bad:?}");
        }
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><rss version="2.0"><channel><title>&lol2;</title><item><title>x</title></item></channel></rss>"#;
        // Entity expansion is inert: either refused or kept literal, never expanded.
        if let Ok(feed) = parse_bytes(laughs.as_bytes(), None) {
            assert!(!feed.title.contains("lollol"));
        }
    }

    #[test]
    fn items_without_ids_get_none_not_an_invented_one() {
        let doc = "<rss version=\"2.0\"><channel><title>t</title><item><title>a</title></item></channel></rss>";
        let feed = parse_bytes(doc.as_bytes(), None).unwrap();
        assert_eq!(feed.items[0].source_id, None);
    }
}

#[cfg(test)]
mod fixtures {
    //! Real-world shapes kept as files in `tests/fixtures/feeds`.
    use super::*;

    fn parse_fixture(bytes: &[u8]) -> Result<ParsedFeed, ParseError> {
        let doc = Document {
            bytes,
            charset: None,
            base_url: Some("https://example.org/feed"),
        };
        parse(&doc, Zone::Named(chrono_tz::Europe::Paris))
    }

    macro_rules! fixture {
        ($name:literal) => {
            parse_fixture(include_bytes!(concat!(
                "../../tests/fixtures/feeds/",
                $name
            )))
        };
    }

    #[test]
    fn every_fixture_parses_to_what_a_reader_sees() {
        let cases: [(Result<ParsedFeed, ParseError>, &str, &str); 10] = [
            (
                fixture!("leading_blank_latin1.xml"),
                "Les puces à Pékin",
                "https://example.org/lb-1",
            ),
            (
                fixture!("utf16be.xml"),
                "L’IA à Séoul",
                "https://example.org/u16-1",
            ),
            (
                fixture!("windows1252.xml"),
                "“Droits de douane” : l’État réagit €",
                "https://example.org/w-1",
            ),
            (
                fixture!("rss_no_version.xml"),
                "Sans version",
                "https://example.org/nv-1",
            ),
            (
                fixture!("rss091.xml"),
                "RSS 0.91",
                "https://example.org/091-1",
            ),
            (
                fixture!("rss10.xml"),
                "RSS 1.0",
                "https://example.org/rdf-1",
            ),
            (
                fixture!("atom.xml"),
                "Les puces & l’IA",
                "https://example.org/a-1",
            ),
            (
                fixture!("atom_mime_types.xml"),
                "Types MIME",
                "https://example.org/m-1",
            ),
            (
                fixture!("json_feed_11.json"),
                "JSON Feed 1.1",
                "https://example.org/j-1",
            ),
            (fixture!("no_guids.xml"), "Sans guid ni lien", ""),
        ];
        for (i, (parsed, title, link)) in cases.into_iter().enumerate() {
            let feed = parsed.unwrap_or_else(|e| panic!("fixture {i}: {e}"));
            let item = &feed.items[0];
            assert_eq!(item.title, title, "fixture {i}");
            assert_eq!(item.link.as_deref().unwrap_or(""), link, "fixture {i}");
        }
    }

    /// Every dialect of SPEC §7 that feed-rs does not read as it comes:
    /// (document, titles of its items in order, their links).
    #[test]
    fn older_dialects_read_every_item() {
        type Case = (
            Result<ParsedFeed, ParseError>,
            &'static [&'static str],
            &'static [&'static str],
        );
        let cases: [Case; 10] = [
            (
                fixture!("cdf.xml"),
                &["Les puces, en CDF", ""],
                &["https://example.org/cdf-1", "https://example.org/cdf-2"],
            ),
            (
                fixture!("atom_base64.xml"),
                &["Les droits de douane montent", "Un type inconnu"],
                &["https://example.org/b64-1", "https://example.org/b64-2"],
            ),
            (
                fixture!("atom03.xml"),
                &["Les puces & l’IA", "Sans mode"],
                &["https://example.org/a03-1", "https://example.org/a03-2"],
            ),
            (
                fixture!("rss090.xml"),
                &["RSS 0.90 : les puces", "Droits de douane sur l’acier"],
                &["https://example.org/090-1", "https://example.org/090-2"],
            ),
            (
                fixture!("rss090_channel_ns.xml"),
                &["Une autre adresse Netscape"],
                &["https://example.org/090c-1"],
            ),
            (
                fixture!("rdf_title_only.xml"),
                &["L’item n’a que son rdf:about", "L’item n’a qu’un titre"],
                &["https://example.org/rdf-about-1", ""],
            ),
            (
                fixture!("rss_userland.xml"),
                &["Les puces chez Userland"],
                &["https://example.org/ul-1"],
            ),
            (
                fixture!("rss_userland_prefixed.xml"),
                &["Les puces, préfixées"],
                &["https://example.org/ulp-1"],
            ),
            (
                fixture!("rss093.xml"),
                &["Une version oubliée"],
                &["https://example.org/093-1"],
            ),
            (
                fixture!("rss_no_channel.xml"),
                &["Des items sans channel"],
                &["https://example.org/nc-1"],
            ),
        ];
        for (i, (parsed, titles, links)) in cases.into_iter().enumerate() {
            let feed = parsed.unwrap_or_else(|e| panic!("dialect {i}: {e}"));
            let got: Vec<&str> = feed.items.iter().map(|it| it.title.as_str()).collect();
            assert_eq!(got, titles, "dialect {i}");
            let got: Vec<&str> = feed
                .items
                .iter()
                .map(|it| it.link.as_deref().unwrap_or(""))
                .collect();
            assert_eq!(got, links, "dialect {i}");
        }
    }

    #[test]
    fn atom03_dates_modes_and_content_are_read_as_atom10() {
        let feed = fixture!("atom03.xml").unwrap();
        let a = &feed.items[0];
        assert_eq!(
            a.published.map(|d| d.to_rfc3339()).as_deref(),
            Some("2025-04-26T09:20:00+00:00"),
            "issued is the publication date"
        );
        assert_eq!(
            a.updated.map(|d| d.to_rfc3339()).as_deref(),
            Some("2025-04-26T09:25:00+00:00"),
            "modified is the update"
        );
        assert_eq!(a.source_id.as_deref(), Some("tag:example.org,2025:a03-1"));
        assert_eq!(a.summary, "Pékin accélère sur les semi-conducteurs.");
        assert_eq!(a.content, "Les droits de douane montent.");
        // Escaped HTML content is read as HTML, not shown as markup.
        assert_eq!(feed.items[1].content, "Une usine à Séoul.");
        // `type` before another attribute and `mode`; Atom 0.3's base64.
        assert_eq!(feed.items[1].summary, "En base64 : les puces");
        let b64 = fixture!("atom_base64.xml").unwrap();
        assert_eq!(b64.items[0].summary, "Pékin riposte");
        let cdf = fixture!("cdf.xml").unwrap();
        assert_eq!(cdf.items[0].summary, "Pékin accélère.");
        assert_eq!(
            cdf.items[0].published.map(|d| d.to_rfc3339()).as_deref(),
            Some("2025-04-26T09:20:00+00:00")
        );
        let rdf = fixture!("rdf_title_only.xml").unwrap();
        assert!(rdf.items.iter().all(|i| i.published.is_some()));
        assert_eq!(rdf.items[1].source_id, None);
    }

    #[test]
    fn the_repairs_never_cut_a_document_inside_a_character() {
        let mut doc = String::from(
            "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><channel><title>",
        );
        if doc.len() % 2 == 0 {
            doc.push('a');
        }
        doc.push_str(&"ж".repeat(3000));
        doc.push_str("</title></channel><item><title>ж</title></item></rdf:RDF>");
        // The places the repairs look up to fall inside a character.
        assert!(!doc.is_char_boundary(2048) && !doc.is_char_boundary(4096));
        let feed = parse_fixture(doc.as_bytes()).unwrap();
        assert_eq!(feed.items[0].title, "ж");
    }

    #[test]
    fn fixture_details() {
        let lb = fixture!("leading_blank_latin1.xml").unwrap();
        assert_eq!(
            lb.items[0].published.map(|d| d.to_rfc3339()).as_deref(),
            Some("2025-04-26T09:20:00+00:00")
        );
        let w = fixture!("windows1252.xml").unwrap();
        assert_eq!(
            w.items[0].published.map(|d| d.to_rfc3339()).as_deref(),
            Some("2025-04-26T09:20:00+00:00")
        );
        let atom = fixture!("atom.xml").unwrap();
        assert_eq!(atom.items[0].content, "semi-conducteurs");
        let json = fixture!("json_feed_11.json").unwrap();
        assert_eq!(json.items[0].content, "générative\u{a0}IA");
        let ng = fixture!("no_guids.xml").unwrap();
        assert!(ng.items.iter().all(|i| i.source_id.is_none()));
        assert!(matches!(
            fixture!("malformed.xml"),
            Err(ParseError::Invalid(_))
        ));
    }
}
