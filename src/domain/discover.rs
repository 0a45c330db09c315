//! Finding a site's feeds in its HTML page: the `<link rel="alternate">`
//! elements whose type is a feed's (`veille test --feed https://site/`).
//! Read with html5gum's tokenizer, as a browser would, entities decoded.

use html5gum::{Token, Tokenizer};

/// The feed kinds a page may announce, in the order they are preferred.
pub const KINDS: [(&str, &str); 3] = [
    ("application/rss+xml", "RSS"),
    ("application/atom+xml", "Atom"),
    ("application/feed+json", "JSON Feed"),
];

/// A feed a page announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedLink {
    /// "RSS", "Atom" or "JSON Feed".
    pub kind: &'static str,
    /// Absolute, resolved against the page's address.
    pub url: String,
    pub title: Option<String>,
}

/// The first feed of each kind `html` announces, RSS first, then Atom,
/// then JSON Feed; empty when it announces none (or is not HTML).
pub fn feed_links(html: &str, page: &url::Url) -> Vec<FeedLink> {
    let mut found: Vec<FeedLink> = Vec::new();
    for token in Tokenizer::new(html).flatten() {
        let Token::StartTag(tag) = token else {
            continue;
        };
        if tag.name.as_slice() != b"link" {
            continue;
        }
        let attr = |name: &[u8]| {
            tag.attributes
                .get(name)
                .map(|v| String::from_utf8_lossy(&v.value).trim().to_owned())
        };
        let alternate = attr(b"rel").is_some_and(|rel| {
            rel.split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("alternate"))
        });
        let media = attr(b"type").unwrap_or_default().to_ascii_lowercase();
        let kind = KINDS
            .iter()
            .find(|(t, _)| media.split(';').next() == Some(*t));
        let (Some((_, kind)), true, Some(href)) = (kind, alternate, attr(b"href")) else {
            continue;
        };
        let Ok(url) = page.join(&href) else {
            continue;
        };
        if !matches!(url.scheme(), "http" | "https") || found.iter().any(|f| f.kind == *kind) {
            continue;
        }
        found.push(FeedLink {
            kind,
            url: url.to_string(),
            title: attr(b"title").filter(|t| !t.is_empty()),
        });
    }
    found.sort_by_key(|f| KINDS.iter().position(|(_, k)| *k == f.kind));
    found
}

/// Whether a document is an HTML page rather than a feed.
pub fn looks_like_html(content_type: Option<&str>, text: &str) -> bool {
    if content_type.is_some_and(|c| c.to_ascii_lowercase().contains("html")) {
        return true;
    }
    let head: String = text
        .trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n'])
        .chars()
        .take(200)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> url::Url {
        "https://www.example.fr/economie/".parse().unwrap()
    }

    #[test]
    fn the_first_feed_of_each_kind_is_found_rss_first() {
        let html = r#"<!DOCTYPE html><html><head>
            <link rel="stylesheet" href="/s.css">
            <link rel="alternate" type="application/atom+xml" title="Atom" href="/atom.xml">
            <link rel="alternate" hreflang="fr" type="application/rss+xml" title="Économie &amp; IA" href="rss.xml">
            <link rel="alternate" type="application/rss+xml" href="/second.xml">
            <link rel="Alternate Home" type="application/feed+json" href="https://cdn.example.fr/f.json">
            <link rel="alternate" type="text/html" hreflang="en" href="/en/">
            </head><body><a rel="alternate" type="application/rss+xml" href="/not-a-link-tag.xml">x</a></body></html>"#;
        let found = feed_links(html, &page());
        let got: Vec<(&str, &str)> = found.iter().map(|f| (f.kind, f.url.as_str())).collect();
        assert_eq!(
            got,
            [
                ("RSS", "https://www.example.fr/economie/rss.xml"),
                ("Atom", "https://www.example.fr/atom.xml"),
                ("JSON Feed", "https://cdn.example.fr/f.json"),
            ]
        );
        assert_eq!(found[0].title.as_deref(), Some("Économie & IA"));
    }

    #[test]
    fn pages_without_feeds_and_odd_links_give_nothing() {
        for html in [
            "<html><head><title>t</title></head></html>",
            r#"<link rel="alternate" type="application/rss+xml">"#,
            r#"<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">"#,
            r#"<link rel="stylesheet" type="application/rss+xml" href="/f.xml">"#,
            "not html at all",
        ] {
            assert!(feed_links(html, &page()).is_empty(), "{html}");
        }
        assert!(looks_like_html(None, "\n<!DOCTYPE html><html>"));
        assert!(looks_like_html(Some("text/html; charset=utf-8"), "<rss>"));
        assert!(!looks_like_html(
            Some("application/rss+xml"),
            "<rss version=\"2.0\">"
        ));
    }
}
