//! The README and `docs/` link to one another: every relative link names a
//! file that exists and, for a Markdown file, a heading it has (as GitHub
//! makes anchors: lower case, punctuation dropped, spaces as hyphens).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#')));
        }
    }
    out
}

#[test]
fn every_link_between_the_readme_and_docs_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    assert!(files.len() > 5, "{files:?}");
    let texts: HashMap<PathBuf, String> = files
        .iter()
        .map(|f| (f.clone(), std::fs::read_to_string(f).unwrap()))
        .collect();
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    let mut checked = 0;
    for (file, text) in &texts {
        for m in link.captures_iter(text) {
            let target = &m[1];
            if target.starts_with("http") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let to = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            checked += 1;
            if !to.exists() {
                broken.push(format!("{}: {target}: no such file", file.display()));
                continue;
            }
            let to = to.canonicalize().unwrap();
            let headings = texts
                .iter()
                .find(|(f, _)| f.canonicalize().unwrap() == to)
                .map(|(_, t)| anchors(t));
            if let (false, Some(headings)) = (anchor.is_empty(), headings)
                && !headings.iter().any(|h| h == anchor)
            {
                broken.push(format!("{}: {target}: no such heading", file.display()));
            }
        }
    }
    assert!(checked > 20, "only {checked} links");
    assert!(broken.is_empty(), "{broken:#?}");
}
