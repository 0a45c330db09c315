//! veille: watch feeds, match items against rules, alert once per story.
//!
//! Layout: `domain` is the pure core (text, identity, parsing, rules,
//! schedules, rendering), tested with tables. Around it, each shell module
//! owns one outside resource: `config` (the config file), `fetch` (HTTP and
//! files), `store` (SQLite), `deliver` (Maildir, SMTP and webhooks),
//! `panics` (the process's panic hook, quiet for contained parser panics).
//! `daemon` holds the units of work (`poll_feed_once`, `deliver_due_once`) and
//! the loops that decide when to call them, and the `/metrics` `/healthz`
//! endpoint that reports on them; `cli` has one thin function per
//! subcommand.
//!
//! Data flow: config → fetch → parse → normalise → identify → match →
//! store items and alerts in one transaction (the outbox) → deliver.

pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod deliver;
pub mod domain;
pub mod fetch;
pub mod panics;
pub mod store;
