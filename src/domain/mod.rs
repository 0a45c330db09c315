//! The pure core: no I/O, no clock, no randomness except as arguments.

pub mod backtest;
pub mod crontab;
pub mod dates;
pub mod discover;
pub mod fulltext;
pub mod health;
pub mod hook;
pub mod identity;
pub mod ids;
pub mod link;
pub mod model;
pub mod normalize;
pub mod opml;
pub mod outgoing;
pub mod parse;
pub mod poll;
pub mod render;
pub mod rules;
pub mod schedule;
pub mod text;
pub mod triage;
pub mod wire;
pub mod wire_index;
pub mod zone;
