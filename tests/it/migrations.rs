//! A migration that shipped is never edited: a database migrated by it
//! would differ from one migrated by the edited text. Each shipped file's
//! SHA-256 is pinned here, for both backends; a new migration adds a line.

use sha2::{Digest, Sha256};

const SHIPPED: &[(&str, &str)] = &[
    (
        "0001_init.sql",
        "5138a09f8a015828cc8d26348d6334cd7a78b258f69b3c0595b6d3aedf49d58c",
    ),
    (
        "0002_digests.sql",
        "60e2d90bd5fbe37280a27286c03f1a85d8879a94d6007ddf0d6c194ca355a320",
    ),
    (
        "0003_wire.sql",
        "4e39cc9111696928f68c17bef2157123905884cf18c7d259b5484f8bd5e52da4",
    ),
    (
        "0004_leases.sql",
        "cdfd9f2de1b2971c6b6e1cdc1df6a06e1f6311336ab0014af775d29e564eb2b4",
    ),
    (
        "0005_unread.sql",
        "57e66e9d8dbec7d38761a03c9bf88a02464c4b19279370be2c9a8a31a2c94498",
    ),
    (
        "0006_health.sql",
        "fdaa57b79f6831cb9747c201d7d5d7a68b32a39e52f2ffbc143cd06c1b646466",
    ),
    (
        "0007_retention.sql",
        "b3b60eb95f5cf59a47e9c6ea757004cd902982dc62606a3d02b2f53c3a65b40f",
    ),
    (
        "0008_prune_indexes.sql",
        "a0d8089a0471206d5908fd603929d55ebfe0fa614335363a8ff84f52eeb34c9e",
    ),
    (
        "0009_wire_copies.sql",
        "89edbbdfd02ddade0ab7e8c8beb36d7a3cde4153116df6ce4ce39dd4f65f523b",
    ),
    (
        "0010_channel_faults.sql",
        "9c7a948c98643a117ce01fcda624e1da1c1d6be5a153d1e7f00a4afee919d0a0",
    ),
    (
        "0011_feed_leases.sql",
        "a26f3a4aa05504e3a3265a05724a8b5ce678b8b74ccb6fbc4ec3302973d26fb1",
    ),
    (
        "0012_processes.sql",
        "e18d896146f5bdaa3e6f5d47ccc936722ce906d4907a396d0a4b1bbdab090865",
    ),
    (
        "0013_item_texts.sql",
        "3bd816dc50b888ac966f45de26463fca1c9187dc7fb5100f575428fc1f48c41e",
    ),
    (
        "0014_pages.sql",
        "0f5f848b775994a6d9aaa8ffb7fece3a02ef5eccee2aafa7861393004ca610f0",
    ),
];

const SHIPPED_POSTGRES: &[(&str, &str)] = &[
    (
        "0001_schema.sql",
        "ac1b567aa2c607a4a1b66934f24839016b15498b8076ceaf84bb303ce91ffd92",
    ),
    (
        "0002_feed_leases.sql",
        "4ce7dc1e58e6db7e11889a556994f23761b19bc6d4e58f207a9df7687df070ab",
    ),
    (
        "0003_processes.sql",
        "343d7d094603dbdfd59a0b1485e8197f2cf9c851db0caa04f2a53405b03fb47d",
    ),
    (
        "0004_item_texts.sql",
        "5333fdca97717f93eb06a56c351328c3b54240d6e7e19dda938a6b9900e7b15e",
    ),
    (
        "0005_pages.sql",
        "7424ab37f89e0d76e8fbcbea72a286af86007dfd77d1206673ece4a641284389",
    ),
];

#[test]
fn shipped_migrations_are_never_edited_and_every_file_is_pinned() {
    pinned("sqlite", SHIPPED);
    pinned("postgres", SHIPPED_POSTGRES);
}

fn pinned(backend: &str, shipped: &[(&str, &str)]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    files.sort();
    let pinned: Vec<&str> = shipped.iter().map(|(f, _)| *f).collect();
    assert_eq!(files, pinned, "every migration file is pinned, in order");
    for (file, want) in shipped {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let got: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            &got, want,
            "{backend}/{file} was edited after it shipped: add a new migration instead"
        );
    }
}
