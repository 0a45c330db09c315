//! veille: watch feeds, match items against rules, alert once per story.
//!
//! Layout: `domain` is the pure core (text, identity, parsing, rules and
//! queries, triage, wire-copy fingerprints with their index and the rule
//! that places a new item, `poll` — the whole decision a poll leads to —,
//! schedules, feed health, rendering, and `outgoing`, what each channel
//! medium sends), tested with tables; `tests/it/purity.rs` reads it as Rust
//! to keep I/O, clocks and the shell out. Around it, each shell module owns
//! one outside resource: `config` (the config file, located errors),
//! `fetch` (HTTP and files), `pages` (articles' pages for full text:
//! robots.txt, a slot per site, one deadline per poll), `store` (the database behind one face:
//! `Store`, and its backend in `store::sqlite`, split by entity), `deliver` (bytes to Maildir, SMTP and webhooks), `clock` (the
//! one wall-clock read, made in `main`), `panics` (the process's panic hook,
//! quiet for contained parser panics). `daemon` holds the units of work —
//! `poll` (fetch, parse, look up, `domain::poll::decide`, hand to the
//! `writer` thread), `dispatch` (render what the outbox holds for each
//! channel and send it), `health`, `retention` — the loops in `run`, and
//! `endpoint`/`metrics` for `/metrics` and `/healthz`; `cli` has one thin
//! function per subcommand (`channel` for `send-test`, `retry`, `digest`).
//!
//! Data flow: config → fetch → parse → identify → known items looked up →
//! new items' pages (`full_text`) → decide (triage and match, next poll, fingerprints) → one transaction
//! that places new items (link, wire copy or new story) and writes items,
//! alerts and feed state (the outbox) → dispatch (render for the medium,
//! send) → mark sent.

pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod deliver;
pub mod domain;
pub mod fetch;
pub mod pages;
pub mod panics;
pub mod push;
pub mod store;
