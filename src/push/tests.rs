//! What each push kind makes of a story, a digest and a health alert: the
//! escaping, the limits, the link a tap opens, and the settings' checks.

use std::collections::HashMap;

use super::*;
use crate::domain::hook::{DigestJson, HealthJson, StoryJson};

struct Keys(HashMap<&'static str, &'static str>);

impl Table for Keys {
    fn string(&self, key: &str) -> Option<&str> {
        self.0.get(key).copied()
    }
    fn integer(&self, key: &str) -> Option<i64> {
        self.0.get(key).and_then(|v| v.parse().ok())
    }
    fn strings(&self, key: &str) -> Option<Vec<&str>> {
        self.0.get(key).map(|v| v.split(' ').collect())
    }
}

fn settings(kind: &str, keys: &[(&'static str, &'static str)]) -> Result<Settings, Wrong> {
    (super::kind(kind).unwrap().parse)(&Keys(keys.iter().copied().collect()))
}

fn story(summary: &str) -> StoryJson {
    StoryJson {
        id: "a1".into(),
        rules: vec!["tarifs".into()],
        terms: vec!["droits de douane".into()],
        title: "Droits de douane : « riposte » <immédiate> & ferme".into(),
        link: Some("https://www.lemonde.fr/a?b=1&c=2".into()),
        published: None,
        summary: summary.into(),
        feeds: vec!["Le Monde".into(), "AFP".into()],
        links: vec![],
        test: false,
    }
}

fn json(r: &Request) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn telegram_escapes_its_html_links_the_title_and_stays_within_4096_characters() {
    let Settings::Telegram(t) = settings("telegram", &[("chat_id", "-1001234567890")]).unwrap()
    else {
        panic!()
    };
    let r = t.request(&Hook::Story(story("Pékin répond.")), Some("123456:SECRET"));
    assert_eq!(
        r.url.as_str(),
        "https://api.telegram.org/bot123456:SECRET/sendMessage"
    );
    let v = json(&r);
    assert_eq!(v["parse_mode"], "HTML");
    assert_eq!(v["chat_id"], "-1001234567890");
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "<b><a href=\"https://www.lemonde.fr/a?b=1&amp;c=2\">Droits de douane : « riposte » &lt;immédiate&gt; &amp; ferme</a></b>\ntarifs · Le Monde, AFP\nPékin répond."
        ),
        "{text}"
    );
    assert_eq!(
        v["link_preview_options"]["url"],
        "https://www.lemonde.fr/a?b=1&c=2"
    );
    // A long excerpt is cut, the escaping counted.
    let long = "Le tarif <b> & la Chine. ".repeat(400);
    let v = json(&t.request(&Hook::Story(story(&long)), Some("t")));
    let text = v["text"].as_str().unwrap();
    assert!(text.chars().count() <= 4096, "{}", text.chars().count());
    assert!(text.ends_with('…'), "{}", &text[text.len() - 20..]);
    assert!(!text.contains("<b> &"), "unescaped");
    // The target shown in `check` and errors has no token.
    assert!(!Settings::Telegram(t).target().contains("SECRET"));
}

#[test]
fn ntfy_puts_the_title_and_click_in_headers_and_the_text_within_4096_bytes() {
    let s = settings(
        "ntfy",
        &[
            ("url", "https://ntfy.sh/veille-equipe"),
            ("priority", "4"),
            ("tags", "newspaper fr"),
        ],
    )
    .unwrap();
    let Settings::Ntfy(n) = s else { panic!() };
    let long = "Les droits de douane frappent l’acier européen. ".repeat(200);
    let r = n.request(&Hook::Story(story(&long)), Some("tk_abc"));
    assert_eq!(r.method, reqwest::Method::POST);
    assert_eq!(r.url.as_str(), "https://ntfy.sh/veille-equipe");
    assert!(r.body.len() <= 4096, "{}", r.body.len());
    let body = String::from_utf8(r.body.clone()).unwrap();
    assert!(
        body.starts_with("tarifs · Le Monde, AFP\nLes droits"),
        "{body}"
    );
    assert!(
        body.ends_with("…\nhttps://www.lemonde.fr/a?b=1&c=2"),
        "{body}"
    );
    // Non-ASCII titles travel as an RFC 2047 word.
    let title = header(&r, "Title").unwrap();
    assert!(
        title.starts_with("=?UTF-8?B?") && title.ends_with("?="),
        "{title}"
    );
    let decoded = B64
        .decode(
            title
                .trim_start_matches("=?UTF-8?B?")
                .trim_end_matches("?="),
        )
        .unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        "Droits de douane : « riposte » <immédiate> & ferme"
    );
    assert_eq!(
        header(&r, "Click"),
        Some("https://www.lemonde.fr/a?b=1&c=2")
    );
    assert_eq!(header(&r, "Priority"), Some("4"));
    assert_eq!(header(&r, "Tags"), Some("newspaper,fr"));
    assert_eq!(header(&r, "Authorization"), Some("Bearer tk_abc"));
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;
}

#[test]
fn a_digest_lists_headlines_then_says_how_many_more() {
    let Settings::Ntfy(n) = settings("ntfy", &[("url", "https://ntfy.sh/t")]).unwrap() else {
        panic!()
    };
    let stories: Vec<StoryJson> = (0..200)
        .map(|i| StoryJson {
            title: format!("Titre numéro {i} d’une longueur ordinaire pour un journal"),
            ..story("")
        })
        .collect();
    let d = Hook::Digest(DigestJson {
        id: "d1".into(),
        channel: "matin".into(),
        stories,
        health: vec![],
    });
    let r = n.request(&d, None);
    let body = String::from_utf8(r.body.clone()).unwrap();
    assert!(r.body.len() <= 4096);
    assert!(
        body.starts_with("• Titre numéro 0 d’une longueur"),
        "{body}"
    );
    let last = body.lines().last().unwrap();
    let shown = body.matches("• Titre").count();
    assert_eq!(last, format!("… et {} autres", 200 - shown));
    assert_eq!(header(&r, "Title"), Some("[veille] matin : 200 articles"));
    assert_eq!(header(&r, "Authorization"), None);
    assert_eq!(header(&r, "Click"), None);
}

#[test]
fn matrix_sends_with_the_alert_id_as_transaction_id_plain_and_html() {
    let Settings::Matrix(m) = settings(
        "matrix",
        &[
            ("homeserver", "https://matrix.example.org"),
            ("room", "!AbCd:example.org"),
        ],
    )
    .unwrap() else {
        panic!()
    };
    let r = m.request("a1b2", &Hook::Story(story("Pékin répond.")), Some("syt_x"));
    assert_eq!(r.method, reqwest::Method::PUT);
    assert_eq!(
        r.url.as_str(),
        "https://matrix.example.org/_matrix/client/v3/rooms/!AbCd:example.org/send/m.room.message/a1b2"
    );
    let v = json(&r);
    assert_eq!(v["msgtype"], "m.text");
    assert!(
        v["body"]
            .as_str()
            .unwrap()
            .starts_with("Droits de douane : « riposte » <immédiate> & ferme\n")
    );
    assert!(v["formatted_body"].as_str().unwrap().contains(
        "&lt;immédiate&gt; &amp; ferme</a></b><br>tarifs · Le Monde, AFP<br>Pékin répond."
    ));
    assert_eq!(header(&r, "Authorization"), Some("Bearer syt_x"));
}

#[test]
fn gotify_sends_markdown_with_the_click_url() {
    let Settings::Gotify(g) = settings(
        "gotify",
        &[("url", "https://gotify.example.org/"), ("priority", "8")],
    )
    .unwrap() else {
        panic!()
    };
    let health = HealthJson {
        id: "h1".into(),
        feed: "AFP".into(),
        url: None,
        event: "failing".into(),
        recovered_from: None,
        since: "2026-01-01T00:00:00+00:00".into(),
        error: None,
        usual_gap_seconds: None,
        text: "Le flux AFP est en échec depuis le 1er janvier.".into(),
    };
    let r = g.request(&Hook::Health(health), Some("Axyz"));
    assert_eq!(r.url.as_str(), "https://gotify.example.org/message");
    let v = json(&r);
    assert_eq!(v["title"], "[veille] flux en échec : AFP");
    assert_eq!(
        v["message"],
        "Le flux AFP est en échec depuis le 1er janvier."
    );
    assert_eq!(v["priority"], 8);
    assert_eq!(header(&r, "X-Gotify-Key"), Some("Axyz"));
    let v = json(&g.request(&Hook::Story(story("Un *point* important.")), Some("A")));
    assert_eq!(
        v["extras"]["client::notification"]["click"]["url"],
        "https://www.lemonde.fr/a?b=1&c=2"
    );
    assert_eq!(
        v["extras"]["client::display"]["contentType"],
        "text/markdown"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("Un \\*point\\* important."),
        "{v}"
    );
}

#[test]
fn settings_that_cannot_work_say_which_key_and_why() {
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
    );
    let cases: &[Case] = &[
        ("telegram", &[], "chat_id", "needs `chat_id`"),
        (
            "telegram",
            &[("chat_id", "équipe")],
            "chat_id",
            "neither a chat's number",
        ),
        (
            "telegram",
            &[
                ("chat_id", "@veille_fr"),
                ("api_url", "http://bot.example.org"),
            ],
            "api_url",
            "http:// only to this machine",
        ),
        (
            "matrix",
            &[("homeserver", "https://m.org"), ("room", "#veille:m.org")],
            "room",
            "a room alias",
        ),
        (
            "matrix",
            &[("homeserver", "https://m.org"), ("room", "veille")],
            "room",
            "not a room id",
        ),
        (
            "matrix",
            &[("room", "!a:m.org")],
            "homeserver",
            "needs `homeserver`",
        ),
        (
            "ntfy",
            &[("url", "https://ntfy.sh/")],
            "url",
            "name the topic",
        ),
        (
            "ntfy",
            &[("url", "https://ntfy.sh/t"), ("priority", "9")],
            "priority",
            "1 (min) to 5",
        ),
        (
            "gotify",
            &[("url", "ftp://g.org")],
            "url",
            "not an http(s) URL",
        ),
    ];
    for (kind, keys, key, said) in cases {
        let w = settings(kind, keys).unwrap_err();
        assert_eq!(w.key, *key, "{kind} {keys:?}");
        assert!(w.message.contains(said), "{kind}: {}", w.message);
    }
    // Loopback may be plain HTTP: a local Bot API server, a test receiver.
    assert!(
        settings(
            "telegram",
            &[("chat_id", "42"), ("api_url", "http://127.0.0.1:8081")]
        )
        .is_ok()
    );
    assert!(settings("ntfy", &[("url", "http://localhost:8080/alertes")]).is_ok());
}

#[test]
fn tokens_come_from_the_file_then_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t");
    std::fs::write(&file, "  abc123\n").unwrap();
    assert_eq!(token("x", Some(&file)).unwrap().as_deref(), Some("abc123"));
    assert_eq!(token_env("équipe-2"), "VEILLE_TOKEN__QUIPE_2");
    assert_eq!(
        redact_tokens("bad bot 123456789:AAHk-abcdefghijklmnopqrstuvwxyz0 here"),
        "bad bot *** here"
    );
}

#[test]
fn markup_is_never_cut_and_what_could_carry_a_secret_is_left_out() {
    let Settings::Telegram(t) = settings("telegram", &[("chat_id", "42")]).unwrap() else {
        panic!()
    };
    // A title of 1,000 `&` escapes to 5,000 characters: cut before the
    // markup, which stays whole.
    let s = StoryJson {
        title: "&".repeat(1000),
        ..story("Un résumé.")
    };
    let text = json(&t.request(&Hook::Story(s), Some("t")))["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.chars().count() <= 4096, "{}", text.chars().count());
    assert!(text.contains("</a></b>\n"), "{text}");
    assert!(!text.contains("&am\n") && !text.ends_with("&am"), "{text}");
    // An ntfy URL's password and `?auth=` token stay out of `check`.
    let n = settings(
        "ntfy",
        &[(
            "url",
            "https://moi:motdepasse@ntfy.example.org/alertes?auth=tk_1",
        )],
    )
    .unwrap();
    let shown = n.target();
    assert_eq!(shown, "https://ntfy.example.org/alertes");
    // An empty token file is no token.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vide");
    std::fs::write(&file, "\n").unwrap();
    assert_eq!(token("x", Some(&file)).unwrap(), None);
}
