//! STYLE: `src/domain/` is pure — no I/O crates, no file system, network,
//! environment, threads or clock, and nothing of the shell around it. The
//! code is read as Rust (syn): grouped imports (`use std::{fs}`), paths
//! written out in expressions (`std::fs::read(…)`) and macros
//! (`thread_local!`) are all seen; test modules are left out.

use syn::visit::Visit;

/// Paths the domain may not name, by prefix.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "reqwest",
    "rusqlite",
    "lettre",
    "hyper",
    "rand",
    "std::fs",
    "std::net",
    "std::env",
    "std::process",
    "std::thread",
    "std::time::SystemTime",
    "std::time::Instant",
    "SystemTime",
    "Instant",
    "thread_local",
    "crate::clock",
    "crate::store",
    "crate::fetch",
    "crate::deliver",
    "crate::daemon",
    "crate::cli",
];

/// Every path a file names: `use` trees flattened, paths in types and
/// expressions, macro names.
#[derive(Default)]
struct Paths(Vec<String>);

fn flatten(tree: &syn::UseTree, prefix: &str, out: &mut Vec<String>) {
    let join = |name: &str| {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}::{name}")
        }
    };
    match tree {
        syn::UseTree::Path(p) => flatten(&p.tree, &join(&p.ident.to_string()), out),
        syn::UseTree::Name(n) => out.push(join(&n.ident.to_string())),
        syn::UseTree::Rename(r) => out.push(join(&r.ident.to_string())),
        syn::UseTree::Glob(_) => out.push(join("*")),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| flatten(t, prefix, out)),
    }
}

fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("test")
            || (a.path().is_ident("cfg") && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test"))
    })
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        flatten(&u.tree, "", &mut self.0);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let names: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        self.0.push(names.join("::"));
        syn::visit::visit_path(self, p);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if !is_test(&m.attrs) {
            syn::visit::visit_item_mod(self, m);
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if !is_test(&f.attrs) {
            syn::visit::visit_item_fn(self, f);
        }
    }
}

/// The forbidden paths `source` names.
fn impure(source: &str) -> Vec<String> {
    let file = syn::parse_file(source).expect("the domain parses as Rust");
    let mut paths = Paths::default();
    paths.visit_file(&file);
    paths
        .0
        .into_iter()
        .filter(|p| {
            FORBIDDEN
                .iter()
                .any(|f| p == f || p.starts_with(&format!("{f}::")))
                || p.ends_with("Utc::now")
                || p.ends_with("Local::now")
        })
        .collect()
}

#[test]
fn the_domain_core_does_no_io_and_reads_no_clock() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let mut files = vec![root];
    let mut checked = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_some_and(|e| e == "rs") {
            let found = impure(&std::fs::read_to_string(&path).unwrap());
            assert!(found.is_empty(), "{} names {found:?}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} files checked");
}

#[test]
fn the_purity_check_sees_through_grouping_paths_and_macros() {
    let sneaky = r#"
        use std::{collections::HashMap, fs};
        use tokio as t;
        fn a() -> String { std::env::var("X").unwrap() }
        fn b() { let _ = chrono::Utc::now(); }
        thread_local! { static C: u8 = 0; }
        fn d(_: crate::store::Store) {}
        #[cfg(test)]
        mod tests { use std::net::TcpStream; }
    "#;
    let found = impure(sneaky);
    for want in [
        "std::fs",
        "tokio",
        "std::env::var",
        "chrono::Utc::now",
        "thread_local",
        "crate::store::Store",
    ] {
        assert!(
            found.iter().any(|f| f == want),
            "{want} not seen in {found:?}"
        );
    }
    assert!(
        !found.iter().any(|f| f.starts_with("std::net")),
        "test modules are skipped"
    );
    assert!(impure("use std::collections::HashMap; fn f() -> u8 { 1 }").is_empty());
}
