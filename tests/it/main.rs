//! One integration-test binary: the real `veille` against real loopback
//! servers, a real SQLite file and a real Maildir. Modules follow SPEC.

// Signals to child processes go through libc.
#![allow(unsafe_code)]

mod harness;
mod pg_server;
mod smtp_server;

mod cli_config;
mod contract;
mod corpus;
mod delivery;
mod docs;
mod faults;
mod fetching;
mod fulltext;
mod health;
mod history;
mod hostile;
mod matching;
mod messages;
mod metrics;
mod migrations;
mod on_postgres;
mod pipeline;
mod purity;
mod push;
mod recent;
mod retention;
mod schema;
mod service;
mod sharing;
mod wire;
mod wire_heldout;
