//! STYLE: `src/domain/` is pure — no I/O crates, no file system, no clock.

#[test]
fn the_domain_core_does_no_io_and_reads_no_clock() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let forbidden = [
        "tokio",
        "reqwest",
        "rusqlite",
        "lettre",
        "std::fs",
        "std::net",
        "Utc::now",
        "Local::now",
        "SystemTime::now",
        "Instant::now",
        "rand::",
        "clock::",
    ];
    let mut files = vec![root];
    let mut checked = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Test modules may build fixtures however they like.
        let code = text.split("#[cfg(test)]").next().unwrap();
        for word in forbidden {
            assert!(!code.contains(word), "{} uses {word}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} files checked");
}
