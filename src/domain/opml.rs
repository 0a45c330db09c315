//! `veille import-opml`: the feeds of an OPML subscription list as
//! `[[feed]]` tables. Folders (outlines without a feed URL that hold
//! others) become tags; names are made unique; every string is written as a
//! TOML string, so the output pastes into a config as it is.

use std::collections::HashSet;

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// One feed found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpmlFeed {
    pub name: String,
    pub url: String,
    pub tags: Vec<String>,
}

/// What the file holds: feeds, and outlines skipped with the reason.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Opml {
    pub feeds: Vec<OpmlFeed>,
    pub skipped: Vec<String>,
}

pub fn parse(xml: &str) -> Result<Opml, String> {
    let mut reader = Reader::from_str(xml);
    let mut out = Opml::default();
    // The folders enclosing the current outline (None: a feed or unnamed).
    let mut folders: Vec<Option<String>> = Vec::new();
    let mut names = HashSet::new();
    loop {
        let event = reader.read_event().map_err(|e| {
            format!(
                "not a readable OPML file at byte {}: {e}",
                reader.error_position()
            )
        })?;
        match event {
            Event::Start(e) if is_outline(&e) => {
                let o = outline(&e)?;
                if o.url.is_none() {
                    folders.push(o.label.clone());
                } else {
                    folders.push(None);
                }
                add(&mut out, &mut names, o, &folders[..folders.len() - 1]);
            }
            Event::Empty(e) if is_outline(&e) => {
                add(&mut out, &mut names, outline(&e)?, &folders);
            }
            Event::End(e) if e.local_name().as_ref().eq_ignore_ascii_case("outline") => {
                folders.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// The tables, ready to paste.
pub fn to_toml(opml: &Opml) -> String {
    let mut s = String::new();
    for reason in &opml.skipped {
        s.push_str(&format!("# skipped: {}\n", reason.replace('\n', " ")));
    }
    if !opml.skipped.is_empty() {
        s.push('\n');
    }
    for f in &opml.feeds {
        s.push_str(&format!(
            "[[feed]]\nname = {}\nurl = {}\n",
            toml_string(&f.name),
            toml_string(&f.url)
        ));
        if !f.tags.is_empty() {
            let tags: Vec<String> = f.tags.iter().map(|t| toml_string(t)).collect();
            s.push_str(&format!("tags = [{}]\n", tags.join(", ")));
        }
        s.push('\n');
    }
    s
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

struct Outline {
    label: Option<String>,
    url: Option<String>,
}

fn is_outline(e: &BytesStart) -> bool {
    e.local_name().as_ref().eq_ignore_ascii_case("outline")
}

fn outline(e: &BytesStart) -> Result<Outline, String> {
    let (mut title, mut text, mut url) = (None, None, None);
    for attr in e.attributes() {
        let attr = attr.map_err(|err| format!("bad attribute in an outline: {err}"))?;
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| format!("bad attribute value in an outline: {err}"))?
            .trim()
            .to_owned();
        if value.is_empty() {
            continue;
        }
        match attr.key.local_name().as_ref().to_ascii_lowercase().as_str() {
            "title" => title = Some(value),
            "text" => text = Some(value),
            "xmlurl" => url = Some(value),
            _ => {}
        }
    }
    Ok(Outline {
        label: title.or(text),
        url,
    })
}

fn add(out: &mut Opml, names: &mut HashSet<String>, o: Outline, folders: &[Option<String>]) {
    let Some(url) = o.url else { return };
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        out.skipped.push(format!("{url:?} is not an http(s) URL"));
        return;
    }
    let base = o
        .label
        .map(|l| super::text::one_line(&l))
        .filter(|l| !l.is_empty())
        .or_else(|| url::Url::parse(&url).ok()?.host_str().map(str::to_owned))
        .unwrap_or_else(|| url.clone());
    let mut name = base.clone();
    let mut n = 1;
    while !names.insert(name.clone()) {
        n += 1;
        name = format!("{base} ({n})");
    }
    let mut tags: Vec<String> = Vec::new();
    for t in folders.iter().flatten() {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    out.feeds.push(OpmlFeed { name, url, tags });
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Abonnements</title></head>
  <body>
    <outline text="Presse" title="Presse">
      <outline type="rss" text="Le Monde" title="Le Monde — International" xmlUrl="https://www.lemonde.fr/international/rss_full.xml" htmlUrl="https://www.lemonde.fr"/>
      <outline text="Économie">
        <outline type="rss" text="Les Échos &amp; co" xmlUrl="https://services.lesechos.fr/rss/les-echos-economie.xml"/>
        <outline type="rss" text="Le Monde — International" xmlUrl="https://www.lemonde.fr/economie/rss_full.xml"/>
      </outline>
    </outline>
    <outline type="rss" xmlUrl="https://www.france24.com/fr/rss"/>
    <outline text="Un lien sans flux" htmlUrl="https://exemple.fr"/>
    <outline text="Podcast" xmlUrl="ftp://exemple.fr/feed"/>
    <outline text="Guillemets &quot;et\ antislash" xmlUrl="https://x.fr/feed"/>
  </body>
</opml>"#;

    #[test]
    fn feeds_folders_names_and_skips() {
        let o = parse(EXPORT).unwrap();
        let got: Vec<(&str, &str, Vec<&str>)> = o
            .feeds
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.url.as_str(),
                    f.tags.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "Le Monde — International",
                    "https://www.lemonde.fr/international/rss_full.xml",
                    vec!["Presse"]
                ),
                (
                    "Les Échos & co",
                    "https://services.lesechos.fr/rss/les-echos-economie.xml",
                    vec!["Presse", "Économie"]
                ),
                (
                    "Le Monde — International (2)",
                    "https://www.lemonde.fr/economie/rss_full.xml",
                    vec!["Presse", "Économie"]
                ),
                (
                    "www.france24.com",
                    "https://www.france24.com/fr/rss",
                    vec![]
                ),
                ("Guillemets \"et\\ antislash", "https://x.fr/feed", vec![]),
            ]
        );
        assert_eq!(o.skipped.len(), 1, "{:?}", o.skipped);
        let toml = to_toml(&o);
        // It reads back as TOML with the same values.
        let back: toml::Table = toml::from_str(&toml).unwrap();
        let feeds = back["feed"].as_array().unwrap();
        assert_eq!(feeds.len(), 5);
        assert_eq!(
            feeds[4]["name"].as_str(),
            Some("Guillemets \"et\\ antislash")
        );
        assert_eq!(feeds[1]["tags"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn broken_xml_says_where() {
        let err = parse("<opml><body><outline text=\"a\"></body>").unwrap_err();
        assert!(err.contains("byte"), "{err}");
    }
}
