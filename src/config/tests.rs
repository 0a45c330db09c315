//! Config errors, one per class, each located; and the shipped config loads.

use super::*;

fn load_str(source: &str) -> std::result::Result<Config, ConfigError> {
    parse(
        Path::new("/etc/veille/config.toml"),
        source,
        &Env::default(),
    )
}

fn err(source: &str) -> String {
    load_str(source).unwrap_err().to_string()
}

const BASE: &str = r#"
[[feed]]
name = "Le Monde"
url = "https://www.lemonde.fr/rss/une.xml"
tags = ["presse"]

[[rule]]
name = "puces"
any = ["puces", "IA"]
notify = ["archive"]

[channel.archive]
kind = "maildir"
path = "mail"
"#;

#[test]
fn a_minimal_config_gets_the_defaults() {
    let c = load_str(BASE).unwrap();
    assert_eq!(c.daemon.interval, defaults::INTERVAL);
    assert_eq!(c.daemon.concurrency, 16);
    assert_eq!(c.daemon.per_host, 2);
    assert_eq!(c.daemon.max_body, 16 << 20);
    assert_eq!(
        c.daemon.database,
        Location::File(PathBuf::from("/etc/veille/veille.db"))
    );
    assert!(c.daemon.user_agent.starts_with("veille/"));
    assert_eq!(c.feeds[0].interval, defaults::INTERVAL);
    assert!(
        matches!(&c.channels[0].kind, ChannelKind::Maildir { path } if path == Path::new("/etc/veille/mail"))
    );
    assert_eq!(c.rules[0].fields.len(), 4);
}

#[test]
fn written_paths_follow_the_state_directory() {
    let env = Env {
        state_directory: Some("/var/lib/veille".into()),
    };
    let c = parse(Path::new("/etc/veille/config.toml"), BASE, &env).unwrap();
    assert_eq!(
        c.daemon.database,
        Location::File(PathBuf::from("/var/lib/veille/veille.db"))
    );
    assert!(
        matches!(&c.channels[0].kind, ChannelKind::Maildir { path } if path == Path::new("/var/lib/veille/mail"))
    );
}

#[test]
fn read_paths_follow_the_config_folder() {
    let src = BASE.replace("https://www.lemonde.fr/rss/une.xml", "samples/feed.xml");
    let c = load_str(&src).unwrap();
    assert_eq!(
        c.feeds[0].url,
        FeedUrl::File("/etc/veille/samples/feed.xml".into())
    );
}

#[test]
fn errors_are_located_and_name_the_key() {
    let cases: [(&str, &str); 16] = [
        // unknown key, with the allowed ones
        (
            "[daemon]\nintervall = \"5m\"\n",
            "/etc/veille/config.toml:2:1: unknown key `intervall` in [daemon]; allowed here: `database`, `interval`",
        ),
        // wrong type
        (
            "[daemon]\nconcurrency = \"many\"\n",
            "/etc/veille/config.toml:2:15: daemon.concurrency: string \"many\" where a whole number is expected",
        ),
        // a duration written as a number
        (
            "[daemon]\ninterval = 15\n",
            "/etc/veille/config.toml:2:12: daemon.interval: integer `15` where a string is expected: durations are strings with a unit, write \"15m\"",
        ),
        // a term where a list is wanted, counted from one
        (
            "[[feed]]\nname = \"A\"\nurl = \"a.xml\"\n[[rule]]\nname = \"r\"\nany = \"puces\"\nnotify = []\n",
            "/etc/veille/config.toml:6:7: rule #1 \"r\".any: string \"puces\" where a list is expected: write [\"puces\"]",
        ),
        // bad duration
        (
            "[daemon]\ninterval = \"5x\"\n",
            "/etc/veille/config.toml:2:12: daemon.interval: invalid duration \"5x\"",
        ),
        // too short an interval
        (
            "[daemon]\ninterval = \"30s\"\n",
            "/etc/veille/config.toml:2:12: daemon.interval: \"30s\" is too short",
        ),
        // syntax
        ("[daemon\n", "/etc/veille/config.toml:1:8: "),
        // bad size
        (
            "[daemon]\nmax_body = \"16\"\n",
            "/etc/veille/config.toml:2:12: daemon.max_body: invalid size \"16\"",
        ),
        // bad time zone
        (
            "[daemon]\ntimezone = \"Paris\"\n",
            "/etc/veille/config.toml:2:12: daemon.timezone: unknown time zone \"Paris\"",
        ),
        // unknown key in a feed
        (
            "[[feed]]\nname = \"a\"\nurl = \"a.xml\"\nlink = \"x\"\n",
            "/etc/veille/config.toml:4:1: unknown key `link` in [feed #1 \"a\"]; allowed here: `name`, `url`, `interval`, `first_poll_window`, `max_age`, `tags`",
        ),
        // missing key
        (
            "[[feed]]\nname = \"a\"\n",
            "/etc/veille/config.toml:1:1: feed #1 \"a\": missing key `url`",
        ),
        // key not for this kind
        (
            "[channel.x]\nkind = \"maildir\"\npath = \"m\"\nto = [\"a@b.fr\"]\n",
            "/etc/veille/config.toml:4:6: channel.x.to: not allowed for kind = \"maildir\"; allowed here: kind, path, digest, hold",
        ),
        // a Quartz line with seconds, not crontab
        (
            "[channel.x]\nkind = \"maildir\"\npath = \"m\"\ndigest = \"0 0 8 * * *\"\n",
            "/etc/veille/config.toml:4:10: channel.x.digest: a schedule has five fields",
        ),
        // a weekday past 7
        (
            "[channel.x]\nkind = \"maildir\"\npath = \"m\"\ndigest = \"0 8 * * 1-8\"\n",
            "/etc/veille/config.toml:4:10: channel.x.digest: invalid day of week \"8\"",
        ),
        // unknown kind
        (
            "[channel.x]\nkind = \"sms\"\n",
            "/etc/veille/config.toml:2:8: channel.x.kind: unknown kind \"sms\"",
        ),
        // email without smtp
        (
            "[channel.x]\nkind = \"email\"\nto = [\"a@b.fr\"]\n",
            "/etc/veille/config.toml: channel \"x\" sends email, so an [smtp] table is required",
        ),
    ];
    for (source, want) in cases {
        let got = err(source);
        assert!(got.starts_with(want), "\n got: {got}\nwant: {want}…");
    }
}

#[test]
fn a_list_table_written_with_one_bracket_says_two() {
    let want = "`[feed]` opens a single table, but each feed is an entry of a list: write `[[feed]]`, with two brackets";
    let after = format!("{BASE}\n[feed]\nurl = \"b.xml\"\n");
    assert_eq!(err(&after), format!("/etc/veille/config.toml:16:1: {want}"));
    let before = format!("[feed] # le premier\nurl = \"b.xml\"\n{BASE}");
    assert_eq!(err(&before), format!("/etc/veille/config.toml:1:1: {want}"));
    let alone = BASE.replacen("[[feed]]", "  [feed]", 1);
    assert_eq!(err(&alone), format!("/etc/veille/config.toml:2:3: {want}"));
    let rule = BASE.replacen("[[rule]]", "[rule]", 1);
    assert!(err(&rule).contains("write `[[rule]]`"), "{}", err(&rule));
}

#[test]
fn cross_references_are_checked() {
    let unknown_channel = BASE.replace("notify = [\"archive\"]", "notify = [\"archiv\"]");
    assert_eq!(
        err(&unknown_channel),
        "/etc/veille/config.toml:10:11: rule.notify: rule \"puces\" notifies unknown channel \"archiv\" (channels: archive)"
    );
    let duplicate = format!("{BASE}\n[[feed]]\nname = \"Le Monde\"\nurl = \"b.xml\"\n");
    assert_eq!(
        err(&duplicate),
        "/etc/veille/config.toml:17:8: feed.name: two feeds are named \"Le Monde\"; names must be unique"
    );
    let scoped = BASE.replace("notify =", "feeds = [\"Le Figaro*\"]\nnotify =");
    assert!(
        err(&scoped).contains(
            "rule.feeds: rule \"puces\" names \"Le Figaro*\", which matches no feed name"
        )
    );
    let tag = BASE.replace("notify =", "feeds = [\"tag:radio\"]\nnotify =");
    assert!(err(&tag).contains("names tag \"radio\", which no feed has"));
    let ok = BASE.replace(
        "notify =",
        "feeds = [\"Le Mon*\", \"tag:presse\"]\nnotify =",
    );
    assert!(load_str(&ok).is_ok());
}

#[test]
fn bad_terms_are_located() {
    let src = BASE.replace(
        "any = [\"puces\", \"IA\"]",
        "any = [\"puces\", \"/(oops/\"]",
    );
    let e = err(&src);
    assert!(e.starts_with("/etc/veille/config.toml:9:17: rule.any: term \"/(oops/\" of rule \"puces\": invalid regular expression"), "{e}");
    let src = BASE.replace("any = [\"puces\", \"IA\"]", "any = [\"*\"]");
    assert!(err(&src).contains(
        ":9:8: rule.any: term \"*\" of rule \"puces\": a term needs at least one letter"
    ));
    let src = BASE.replace("any = [\"puces\", \"IA\"]", "none = [\"x\"]");
    assert!(err(&src).contains("rule \"puces\": give at least one of `any` and `all`"));
}

#[test]
fn smtp_is_required_when_email_is_used_and_unused_otherwise() {
    let with_smtp =
        format!("{BASE}\n[smtp]\nhost = \"smtp.example.org\"\nfrom = \"v@example.org\"\n");
    let unused = load_str(&with_smtp).unwrap();
    let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let warnings = crate::cli::check::warnings(&unused, at);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("[smtp] is set but no channel sends email")),
        "{warnings:?}"
    );
    let email = format!(
        "{with_smtp}\n[channel.moi]\nkind = \"email\"\nto = [\"moi@example.org\"]\ndigest = \"0 8 * * *\"\n"
    );
    let c = load_str(&email).unwrap();
    let smtp = c.smtp.unwrap();
    assert_eq!((smtp.port, smtp.security), (587, Security::StartTls));
    assert!(!format!("{smtp:?}").contains("password"));
    let e = err(&format!(
        "{BASE}\n[smtp]\nhost = \"smtp.example.org\"\nsecurity = \"ssl\"\nfrom = \"v@example.org\"\n"
    ));
    assert!(
        e.contains("smtp.security") && e.contains("did you mean \"tls\""),
        "{e}"
    );
}

#[test]
fn a_feed_may_set_its_own_first_poll_window_and_max_age() {
    let source = format!(
        "[daemon]\nmax_age = \"3d\"\n{BASE}\n[[feed]]\nname = \"Archives\"\nurl = \"archives.xml\"\nfirst_poll_window = \"30d\"\n"
    );
    let c = load_str(&source).unwrap();
    let (le_monde, archives) = (&c.feeds[0], &c.feeds[1]);
    assert_eq!(le_monde.first_poll_window, defaults::FIRST_POLL_WINDOW);
    assert_eq!(archives.first_poll_window, Duration::from_secs(30 * 86_400));
    assert_eq!(le_monde.max_age, Duration::from_secs(3 * 86_400));
    assert_eq!(archives.max_age, Duration::from_secs(3 * 86_400));
    // Stories stay joinable for what the widest feed may still alert on.
    let keep = c.wire_keep;
    assert!(keep >= 30 * 86_400, "{keep}");
    let bad = source.replace("\"30d\"", "\"un mois\"");
    let line = 1 + bad.lines().position(|l| l.contains("un mois")).unwrap();
    let e = err(&bad);
    assert!(
        e.contains("feed.first_poll_window") && e.contains(&format!(":{line}:")),
        "{e}"
    );
}

#[test]
fn the_shipped_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let c = load(&path, &Env::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        c.feeds.iter().any(|f| matches!(f.url, FeedUrl::File(_))),
        "a bundled sample feed"
    );
    // Only the sample looks back further than a day: a real feed's first
    // poll must not alert on its archive.
    for f in &c.feeds {
        let sample = matches!(f.url, FeedUrl::File(_));
        assert_eq!(
            f.first_poll_window > defaults::FIRST_POLL_WINDOW,
            sample,
            "{}",
            f.name
        );
    }
    assert!(
        c.feeds.iter().any(|f| matches!(f.url, FeedUrl::Http(_))),
        "real news feeds"
    );
    assert!(
        c.channels
            .iter()
            .any(|ch| matches!(ch.kind, ChannelKind::Maildir { .. }))
    );
    for term in ["puces", "IA", "droits de douane"] {
        assert!(
            c.rules
                .iter()
                .any(|r| r.any.iter().chain(&r.all).any(|t| t.written == term)),
            "{term}"
        );
    }
}

#[test]
fn health_is_checked_and_located() {
    let c = load_str(&format!("{BASE}\n[health]\nnotify = [\"archive\"]\n")).unwrap();
    let h = c.health.unwrap();
    assert_eq!(h.notify, ["archive"]);
    assert_eq!(h.policy, crate::domain::health::Policy::default());
    let c = load_str(&format!(
        "{BASE}\n[health]\nnotify = [\"archive\"]\nfailing_after = \"2h\"\nsilent_after = 3\n"
    ))
    .unwrap();
    assert_eq!(c.health_policy().failing_after, 7200);
    assert_eq!(c.health_policy().silent_after, 3);
    let line = BASE.lines().count() + 3;
    let cases = [
        (
            "notify = [\"moi\"]\n",
            format!(
                "{line}:11: health.notify: notifies unknown channel \"moi\" (channels: archive)"
            ),
        ),
        (
            "notify = []\n",
            format!("{line}:10: health.notify: names no channel"),
        ),
        (
            "notify = [\"archive\"]\nfailing_after = \"30s\"\n",
            format!(
                "{}:17: health.failing_after: \"30s\" is too short",
                line + 1
            ),
        ),
        (
            "notify = [\"archive\"]\nsilent_after = 0\n",
            format!("{}:16: health.silent_after: 0 is not a number", line + 1),
        ),
        (
            "failing_after = \"1h\"\n",
            "missing key `notify`".to_owned(),
        ),
        (
            "notify = [\"archive\"]\nsilence = 3\n",
            format!("{}:1: unknown key `silence` in [health]", line + 1),
        ),
    ];
    for (health, want) in cases {
        let got = err(&format!("{BASE}\n[health]\n{health}"));
        assert!(got.contains(&want), "{health:?}: {got}");
    }
}

#[test]
fn query_errors_point_at_the_character_in_the_file() {
    let rule = |query: &str| {
        format!(
            "[[feed]]\nname = \"A\"\nurl = \"a.xml\"\n\n[channel.m]\nkind = \"maildir\"\npath = \"m\"\n\n\
             [[rule]]\nname = \"q\"\nnotify = [\"m\"]\n{query}\n"
        )
    };
    let file = "/etc/veille/config.toml";
    let cases = [
        // A literal string: the column counts from the file's line start.
        (
            "query = 'puces AND droits de douane'",
            format!("{file}:12:27: rule.query: rule \"q\": two terms side by side"),
        ),
        // A basic string: escapes before the error are walked through.
        (
            "query = \"\\\"Xi\\\" NEAR/3 puces IA\"",
            format!("{file}:12:30: rule.query: rule \"q\": two terms side by side"),
        ),
        (
            "query = \"\\u00e9lys\\u00e9e AND (puces\"",
            format!("{file}:12:31: rule.query: rule \"q\": this `(` is not closed"),
        ),
        // A multi-line literal string: line and column inside it.
        (
            "query = '''\n(puces OR semi-conducteur*)\n  NEAR/10 (Chine OR Pékin)\n  AND NOT title:Bourse Paris\n'''",
            format!("{file}:15:24: rule.query: rule \"q\": two terms side by side"),
        ),
        (
            "query = \"\"\"\n(puces OR \\\n   Chine) NEAR/51 IA\"\"\"",
            format!("{file}:14:11: rule.query: rule \"q\": NEAR/51"),
        ),
        (
            "query = \"\\x41\\u20ac OR b c\"",
            format!("{file}:12:26: rule.query: rule \"q\": two terms side by side"),
        ),
        (
            "query = 'NOT puces'",
            format!(
                "{file}:12:10: rule.query: rule \"q\": a query must be able to match something"
            ),
        ),
        (
            "query = 'puces'\nany = ['IA']",
            format!("{file}:12:9: rule.query: rule \"q\" has a query and any/all/none"),
        ),
    ];
    for (query, want) in cases {
        let got = err(&rule(query));
        assert!(got.starts_with(&want), "{query}\n got: {got}\nwant: {want}");
    }
    let c = load_str(&rule(
        "query = '''\n(puces OR semi-conducteur*) NEAR/10 (Chine OR Pékin)\nAND NOT title:Bourse'''",
    ))
    .unwrap();
    assert_eq!(
        c.rules[0].query.as_ref().unwrap().text,
        "(puces OR semi-conducteur*) NEAR/10 (Chine OR Pékin) AND NOT title:Bourse"
    );
}

#[test]
fn listed_terms_that_cannot_mean_what_they_look_like_are_errors_with_a_hint() {
    let rule = |terms: &str| {
        format!(
            "[[feed]]\nname = \"A\"\nurl = \"a.xml\"\n\n[channel.m]\nkind = \"maildir\"\npath = \"m\"\n\n\
             [[rule]]\nname = \"r\"\nnotify = [\"m\"]\n{terms}\n"
        )
    };
    let file = "/etc/veille/config.toml";
    let cases = [
        (
            "any = [\"nucléaire OR atome\"]",
            "12:19: rule.any: term \"nucléaire OR atome\" of rule \"r\" holds OR between words",
            "write a `query`",
        ),
        (
            "any = ['\"droits de douane\"']",
            "12:9: rule.any: term",
            "already a phrase",
        ),
        (
            "any = [\"puces\"]\nnone = [\"-jeu\"]",
            "13:10: rule.none: term \"-jeu\"",
            "list \"jeu\" in `none`",
        ),
        (
            "any = [\"nucl*aire\"]",
            "12:13: rule.any: term \"nucl*aire\"",
            "`*` ends a prefix term only",
        ),
        (
            "any = [\"/(?i)\\btarifs?/\"]",
            "12:14: rule.any: term",
            "write regular expressions in single quotes",
        ),
    ];
    for (terms, at, hint) in cases {
        let got = err(&rule(terms));
        assert!(
            got.starts_with(&format!("{file}:{at}")),
            "{terms}\n got: {got}\nwant: {at}"
        );
        assert!(got.contains(hint), "{terms}: {got}");
    }
    // What looks alike but means what it says.
    assert!(
        load_str(&rule(
            "any = ['/(?i)\\btarifs?\\b/', \"Procter and Gamble\", \"puce*\", \"l'IA\"]"
        ))
        .is_ok()
    );
}
