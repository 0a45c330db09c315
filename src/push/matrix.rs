//! Matrix: an `m.room.message` sent into a room, plain `body` and HTML
//! `formatted_body`, with the alert id as the transaction id, so that a
//! homeserver drops a resend after a crash instead of showing it twice.

use url::Url;

use super::{
    Budget, HTML, Kind, PLAIN, Request, Settings, Table, Wrong, compose, endpoint, web_url, wrong,
};
use crate::domain::hook::Hook;

pub const KIND: Kind = Kind {
    name: "matrix",
    keys: &["homeserver", "room", "token_file"],
    needs_token: true,
    parse,
};

/// Well under the 65,536 bytes of a whole event.
const BYTES: usize = 24_000;

#[derive(Debug, Clone)]
pub struct Matrix {
    pub homeserver: Url,
    /// A room id: `!opaque:server`.
    pub room: String,
}

fn parse(t: &dyn Table) -> Result<Settings, Wrong> {
    let Some(homeserver) = t.string("homeserver") else {
        return wrong(
            "homeserver",
            "kind = \"matrix\" needs `homeserver` (https://matrix.example.org)",
        );
    };
    let homeserver = web_url("homeserver", homeserver)?;
    let Some(room) = t.string("room").map(str::trim) else {
        return wrong(
            "room",
            "kind = \"matrix\" needs `room`, the room's id (!AbCdEf:example.org)",
        );
    };
    let well_formed = room
        .strip_prefix('!')
        .and_then(|r| r.split_once(':'))
        .is_some_and(|(local, server)| !local.is_empty() && !server.is_empty());
    if !well_formed {
        let hint = if room.starts_with('#') {
            "a room alias: give the room's id instead (!…:server), shown in the room's advanced settings"
        } else {
            "not a room id (!AbCdEf:example.org)"
        };
        return wrong("room", format!("{room:?} is {hint}"));
    }
    Ok(Settings::Matrix(Matrix {
        homeserver,
        room: room.to_owned(),
    }))
}

impl Matrix {
    pub fn request(&self, id: &str, hook: &Hook, token: Option<&str>) -> Request {
        let plain = compose(hook, &PLAIN, Budget::Bytes(BYTES), true);
        let html = compose(hook, &HTML, Budget::Bytes(BYTES), true);
        let body = serde_json::json!({
            "msgtype": "m.text",
            "body": plain.body,
            "format": "org.matrix.custom.html",
            // HTML joins lines unless told to break them.
            "formatted_body": html.body.replace('\n', "<br>"),
        });
        let path = [
            "_matrix",
            "client",
            "v3",
            "rooms",
            &self.room,
            "send",
            "m.room.message",
            id,
        ];
        Request {
            method: reqwest::Method::PUT,
            url: endpoint(&self.homeserver, &path),
            headers: vec![
                ("Content-Type", "application/json".to_owned()),
                (
                    "Authorization",
                    format!("Bearer {}", token.unwrap_or_default()),
                ),
            ],
            body: body.to_string().into_bytes(),
        }
    }
}

/// Matrix's `retry_after_ms` on a 429 (`M_LIMIT_EXCEEDED`).
pub fn wait(body: &str) -> Option<std::time::Duration> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["retry_after_ms"]
        .as_u64()
        .map(|ms| std::time::Duration::from_millis(ms.max(1000)))
}
