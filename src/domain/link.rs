//! Link normalisation (SPEC §4): the key that makes two links one story.
//!
//! Scheme and host in lower case, `http` and `https` alike, default port
//! dropped, a fixed list of tracking parameters removed and no others, and the
//! fragment kept apart so that the caller can decide (live blogs keep it).

use url::Url;

/// A link reduced to what identifies the page it points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalLink {
    /// Everything but the fragment: the story key.
    pub base: String,
    /// The fragment, without `#`, when the link had a non-empty one.
    pub fragment: Option<String>,
}

impl NormalLink {
    /// The base with the fragment put back: used when two items of one feed
    /// differ only by it.
    pub fn with_fragment(&self) -> String {
        match &self.fragment {
            Some(f) => format!("{}#{}", self.base, f),
            None => self.base.clone(),
        }
    }
}

/// Parameters named by SPEC §4; `utm_` and `at_` are prefixes.
fn is_tracking_parameter(name: &str) -> bool {
    const EXACT: [&str; 11] = [
        "xtor", "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "_hsenc",
        "_hsmi", "ref_src",
    ];
    name.starts_with("utm_") || name.starts_with("at_") || EXACT.contains(&name)
}

/// Normalises an absolute http(s) link; anything else is kept as written
/// (trimmed), since it still identifies something within its feed.
pub fn normalize(link: &str) -> NormalLink {
    let link = link.trim();
    let Ok(mut url) = Url::parse(link) else {
        return NormalLink {
            base: link.to_owned(),
            fragment: None,
        };
    };
    if !matches!(url.scheme(), "http" | "https") {
        let fragment = url.fragment().filter(|f| !f.is_empty()).map(str::to_owned);
        url.set_fragment(None);
        return NormalLink {
            base: url.to_string(),
            fragment,
        };
    }
    // `url` already lower-cases scheme and host and drops the scheme's
    // default port; making http read as https must keep "port 80" default too.
    if url.scheme() == "http" {
        let port = url.port();
        let _ = url.set_scheme("https");
        let _ = url.set_port(port.filter(|p| *p != 443));
    }
    let fragment = url.fragment().filter(|f| !f.is_empty()).map(str::to_owned);
    url.set_fragment(None);
    let query = url.query().map(strip_tracking);
    url.set_query(query.as_deref().filter(|q| !q.is_empty()));
    NormalLink {
        base: url.to_string(),
        fragment,
    }
}

/// `link` as shown to a reader: the tracking parameters `normalize`
/// drops are dropped, from the query and from a fragment made only of
/// `name=value` pairs (franceinfo's `#xtor=RSS-3-[lestitres]`); everything
/// else stays as the feed wrote it.
pub fn without_tracking(link: &str) -> String {
    let link = link.trim();
    // The fragment first: a `?` after the `#` belongs to it.
    let (before, fragment) = match link.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (link, None),
    };
    let (head, query) = match before.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (before, None),
    };
    if !is_web(head) {
        return link.to_owned();
    }
    let mut out = head.to_owned();
    if let Some(query) = query {
        let kept = strip_tracking(query);
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept);
        }
    }
    match fragment {
        Some(f) if is_pairs(f) => {
            let kept = strip_tracking(f);
            if !kept.is_empty() {
                out.push('#');
                out.push_str(&kept);
            }
        }
        Some(f) => {
            out.push('#');
            out.push_str(f);
        }
        None => {}
    }
    out
}

/// A fragment that reads as query pairs (`xtor=RSS-3&a=b`), not as an
/// anchor (`#p2`) or a route (`#/route?x=1`).
fn is_pairs(fragment: &str) -> bool {
    !fragment.is_empty() && !fragment.contains('/') && fragment.split('&').all(|p| p.contains('='))
}

fn is_web(head: &str) -> bool {
    let lower = head.get(..8).unwrap_or(head).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// Removes tracking pairs, keeping the others byte for byte and in order.
/// Written by hand: `tracking-params` misses `xtor` and `at_*`, which French
/// news feeds use, and rebuilding through `query_pairs` would re-encode.
fn strip_tracking(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            !pair.is_empty() && !is_tracking_parameter(&name.to_ascii_lowercase())
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_link_loses_its_trackers_and_nothing_else() {
        for (link, shown) in [
            (
                "https://www.lemonde.fr/a.html?utm_source=rss&xtor=RSS-1",
                "https://www.lemonde.fr/a.html",
            ),
            (
                "HTTP://X.fr/a?id=3&utm_medium=x#p2",
                "HTTP://X.fr/a?id=3#p2",
            ),
            ("https://x.fr/a?at_medium=rss#", "https://x.fr/a#"),
            ("https://x.fr/a", "https://x.fr/a"),
            ("urn:x?utm_source=1", "urn:x?utm_source=1"),
            (
                "https://x.fr/a#/route?utm_source=x",
                "https://x.fr/a#/route?utm_source=x",
            ),
            (
                "https://x.fr/a?xtor=1#/route?utm_source=x",
                "https://x.fr/a#/route?utm_source=x",
            ),
            (
                "https://www.francetvinfo.fr/monde/a.html#xtor=RSS-3-[lestitres]",
                "https://www.francetvinfo.fr/monde/a.html",
            ),
            (
                "https://x.fr/a?id=3#xtor=RSS-3&p=2",
                "https://x.fr/a?id=3#p=2",
            ),
            ("https://x.fr/live#post-12", "https://x.fr/live#post-12"),
        ] {
            assert_eq!(without_tracking(link), shown, "{link}");
        }
    }

    #[test]
    fn links_normalise_as_spec_says() {
        let cases = [
            (
                "https://www.lemonde.fr/a.html",
                "https://www.lemonde.fr/a.html",
            ),
            (
                "HTTP://WWW.LeMonde.FR/a.html",
                "https://www.lemonde.fr/a.html",
            ),
            ("http://x.fr:80/a", "https://x.fr/a"),
            ("https://x.fr:443/a", "https://x.fr/a"),
            ("http://x.fr:8080/a", "https://x.fr:8080/a"),
            (
                "https://x.fr/a?utm_source=rss&utm_medium=x",
                "https://x.fr/a",
            ),
            ("https://x.fr/a?id=3&xtor=RSS-3208", "https://x.fr/a?id=3"),
            (
                "https://x.fr/a?at_medium=rss&at_campaign=c&p=2",
                "https://x.fr/a?p=2",
            ),
            (
                "https://x.fr/a?fbclid=1&gclid=2&dclid=3&msclkid=4",
                "https://x.fr/a",
            ),
            (
                "https://x.fr/a?mc_cid=1&mc_eid=2&igshid=3",
                "https://x.fr/a",
            ),
            (
                "https://x.fr/a?_hsenc=1&_hsmi=2&ref_src=3",
                "https://x.fr/a",
            ),
            (
                "https://x.fr/a?ref=home&mc_x=1",
                "https://x.fr/a?ref=home&mc_x=1",
            ),
            (
                "https://x.fr/a?q=%C3%A9t%C3%A9&utm_x=1",
                "https://x.fr/a?q=%C3%A9t%C3%A9",
            ),
            ("https://x.fr/a#live-3", "https://x.fr/a"),
            ("  https://x.fr/a  ", "https://x.fr/a"),
            ("not a link", "not a link"),
        ];
        for (link, want) in cases {
            assert_eq!(normalize(link).base, want, "{link}");
        }
    }

    #[test]
    fn the_fragment_is_kept_apart() {
        let n = normalize("https://x.fr/live?utm_source=a#post-2");
        assert_eq!(n.fragment.as_deref(), Some("post-2"));
        assert_eq!(n.with_fragment(), "https://x.fr/live#post-2");
        assert_eq!(normalize("https://x.fr/a#").fragment, None);
    }
}
