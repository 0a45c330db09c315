//! SPEC §1–2 at the command line: `check`, exit codes, located errors.

use crate::harness::TestEnv;

#[test]
fn check_summarises_a_valid_config() {
    let env = TestEnv::new();
    env.write_config("[[feed]]\nname = \"Le Monde\"\nurl = \"https://www.lemonde.fr/rss/une.xml\"\n\n[[rule]]\nname = \"tarifs\"\nall = [\"droits de douane\"]\nany = [\"Chine\"]\nnotify = [\"moi\"]\n\n[channel.moi]\nkind = \"maildir\"\npath = \"mail\"\n");
    let out = env.veille(&["check"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Le Monde"), "{text}");
    assert!(
        text.contains("tarifs — all: droits de douane; any: Chine → moi"),
        "{text}"
    );
    assert!(!env.path("veille.db").exists(), "check creates no database");
    assert!(!text.contains("metrics:"), "{text}");
}

#[test]
fn check_names_the_metrics_address_and_warns_beyond_loopback() {
    let env = TestEnv::new();
    for (addr, line) in [
        (
            "127.0.0.1:9187",
            "metrics: http://127.0.0.1:9187/metrics and /healthz\n",
        ),
        (
            "0.0.0.0:9187",
            "metrics: http://0.0.0.0:9187/metrics and /healthz (beyond loopback: no authentication)\n",
        ),
    ] {
        env.write_config(&format!("[daemon]\nlisten = \"{addr}\"\n"));
        let text = String::from_utf8(env.ok(&["check"]).stdout).unwrap();
        assert!(text.contains(line), "{text}");
    }
}

#[test]
fn each_class_of_config_error_is_located_and_exits_2() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
    let cases = [
        (
            "unknown_key.toml",
            ":3:1: unknown key `intervall` in [daemon]; allowed here: `database`, `interval`",
        ),
        (
            "wrong_type.toml",
            ":2:15: daemon.concurrency: string \"seize\" where a whole number is expected",
        ),
        (
            "bad_duration.toml",
            ":4:12: feed.interval: invalid duration \"10 minutes!\"",
        ),
        (
            "unknown_channel.toml",
            ":9:11: rule.notify: rule \"puces\" notifies unknown channel \"equip\" (channels: equipe)",
        ),
        (
            "duplicate_name.toml",
            ":6:8: feed.name: two feeds are named \"Le Monde\"; names must be unique",
        ),
        (
            "bare_host.toml",
            ":3:7: feed.url: \"www.lemonde.fr/rss/une.xml\" reads as a file path, but it looks like a web address without its scheme: write \"https://www.lemonde.fr/rss/une.xml\"",
        ),
        (
            "smtp_port_in_host.toml",
            ":2:8: smtp.host: \"127.0.0.1:8725\" holds a port; write host = \"127.0.0.1\" and port = 8725",
        ),
        (
            "bad_listen.toml",
            ":2:10: daemon.listen: invalid address \"localhost:9187\" (write an IP address and a port, e.g. \"127.0.0.1:9187\" or \"[::1]:9187\")",
        ),
    ];
    for (file, want) in cases {
        let path = fixtures.join(file);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_veille"))
            .arg("check")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        let expected = format!("veille: {}{want}", path.display());
        assert!(
            stderr.starts_with(&expected),
            "{file}:\n got: {stderr}\nwant: {expected}"
        );
    }
}

#[test]
fn global_options_go_before_or_after_the_subcommand() {
    let env = TestEnv::new();
    env.write_config("");
    let config = env.path("config.toml");
    for args in [
        vec!["--config", config.to_str().unwrap(), "check"],
        vec!["check", "--config", config.to_str().unwrap()],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_veille"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Valid but surely not meant: `check` passes (exit 0) and says so.
#[test]
fn check_warns_about_what_is_valid_but_surely_unintended() {
    let env = TestEnv::new();
    env.write_config(
        r#"
[[feed]]
name = "A"
url = "https://a.example.org/rss.xml"

[[feed]]
name = "A bis"
url = "https://a.example.org/rss.xml"

[[feed]]
name = "B"
url = "https://b.example.org/rss.xml"

[[feed]]
name = "A local"
url = "flux/absent.xml"

[[rule]]
name = "r"
any = ["puces"]
feeds = ["A*"]
notify = ["boite"]

[channel.boite]
kind = "maildir"
path = "mail"

[channel.oubliee]
kind = "maildir"
path = "mail2"

[channel.equipe]
kind = "email"
to = ["Équipe <equipe@exemple>"]

[smtp]
host = "smtp.example.org"
from = "veille@example.org"

[channel.fevrier]
kind = "webhook"
url = "https://hooks.example.org/x"
secret_file = "no-such-secret"
digest = "0 8 31 2 *"
"#,
    );
    let out = env.ok(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "warnings (9):",
        "feed \"A local\": the file ",
        "flux/absent.xml does not exist",
        "address \"Équipe <equipe@exemple>\" has a domain without a dot",
        "channel \"equipe\" is notified by no rule",
        "feeds \"A\" and \"A bis\" have the same url",
        "feed \"B\" is watched by no rule",
        "channel \"oubliee\" is notified by no rule",
        "channel \"fevrier\": the digest schedule \"0 8 31 2 *\" never fires",
        "channel \"fevrier\" secret_file",
        "cannot be read",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
}

/// `veille ARGS` on an empty config, asserting bad usage (exit 2) that
/// printed nothing on stdout; returns stderr.
fn usage_error(args: &[&str]) -> String {
    let env = TestEnv::new();
    env.write_config("");
    let out = env.veille(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(out.stdout.is_empty(), "{args:?}: nothing done");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_unknown_log_level_is_bad_usage_listing_the_levels() {
    let err = usage_error(&["--log-level", "verbose", "check"]);
    assert!(err.contains("verbose"), "{err}");
    assert!(err.contains("error, warn, info, debug, trace"), "{err}");
    let env = TestEnv::new();
    env.write_config("");
    // A valid one is taken, after the subcommand too.
    let out = env.veille(&["check", "--log-level", "debug"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("veille watches nothing"),
        "an empty config: {text}"
    );
}

/// Under journald each line carries its syslog priority, so that
/// `journalctl -p warning` finds the failures.
#[test]
fn under_journald_every_log_line_starts_with_its_priority() {
    let env = TestEnv::new();
    env.write_config(
        "[daemon]\ndatabase = \"v.db\"\n\n[[feed]]\nname = \"x\"\nurl = \"http://127.0.0.1:9/feed.xml\"\n\n\
         [[rule]]\nname = \"r\"\nany = [\"a\"]\nnotify = [\"m\"]\n\n[channel.m]\nkind = \"maildir\"\npath = \"mail\"\n",
    );
    let out = env
        .command(&["run", "--once"])
        .env("JOURNAL_STREAM", "8:12345")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<4>") && l.contains("poll failed")),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>") && l.contains("run complete")),
        "{log}"
    );
    assert!(
        lines.iter().all(|l| l.starts_with('<')),
        "every line prefixed: {log}"
    );
    assert!(!log.contains('\u{1b}'), "no colours in the journal: {log}");
    // Outside journald, no prefix.
    let out = env.veille(&["run", "--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.lines().any(|l| l.starts_with("<")), "{log}");
}

#[test]
fn status_without_a_database_says_where_it_looked_and_exits_1() {
    let env = TestEnv::new();
    env.write_config("");
    let out = env.veille(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = match crate::harness::on_postgres() {
        // PostgreSQL: the (empty) database names itself and what to do.
        true => "has no veille schema, or an older one; run `veille run` once".to_owned(),
        false => format!("no database at {}", env.path("veille.db").display()),
    };
    assert!(stderr.contains(&said), "{stderr}");
    assert!(!env.path("veille.db").exists());
}

#[test]
fn a_missing_config_is_an_error_naming_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_veille"))
        .args(["check", "--config", "/nonexistent/veille.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("/nonexistent/veille.toml: cannot read the config file")
    );
}

#[test]
fn import_opml_prints_feeds_that_paste_into_a_config_which_passes_check() {
    let env = TestEnv::new();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/opml/export.opml"
    );
    // No config needed.
    let out = env.ok(&["import-opml", fixture]);
    let tables = String::from_utf8(out.stdout).unwrap();
    assert_eq!(tables.matches("[[feed]]").count(), 5, "{tables}");
    assert!(
        tables.contains("tags = [\"Presse\", \"Tech & IA\"]"),
        "{tables}"
    );
    assert!(
        tables.contains(
            "name = \"Le Monde.fr - Actualités et Infos en France et dans le monde (2)\""
        ),
        "{tables}"
    );
    env.write_config(&format!(
        "{tables}[[rule]]\nname = \"ia\"\nany = [\"IA\"]\nfeeds = [\"tag:Tech & IA\"]\nnotify = [\"archive\"]\n\n[channel.archive]\nkind = \"maildir\"\npath = \"mail\"\n"
    ));
    let check = env.ok(&["check"]);
    assert!(String::from_utf8_lossy(&check.stdout).contains("feeds (5)"));

    let out = env.veille(&["import-opml", "/nonexistent.opml"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn test_feed_with_a_mistyped_scheme_says_so_instead_of_reading_a_file() {
    let err = usage_error(&["test", "--feed", "htps://www.lemonde.fr/rss.xml"]);
    assert!(err.contains("unsupported scheme \"htps\""), "{err}");
}

#[test]
fn test_without_text_or_feed_asks_for_either() {
    let err = usage_error(&["test"]);
    assert!(err.contains("--text") && err.contains("--feed"), "{err}");
    let err = usage_error(&["test", "--text", "a", "--feed", "b.xml"]);
    assert!(
        err.contains("cannot be used with"),
        "one or the other: {err}"
    );
}

/// Before the first `veille run` there is no database: `test --feed --wire`
/// says there is nothing to compare with yet, and creates nothing.
#[test]
fn test_feed_without_a_database_says_there_is_nothing_to_compare_with() {
    let env = TestEnv::new();
    env.write_config(
        "[[feed]]\nname = \"A\"\nurl = \"https://a.example.org/rss.xml\"\n\n[[rule]]\nname = \"r\"\nany = [\"puces\"]\nnotify = [\"m\"]\n\n[channel.m]\nkind = \"maildir\"\npath = \"mail\"\n",
    );
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/actualites.xml");
    let out = env.veille(&["test", "--feed", sample.to_str().unwrap(), "--wire"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("r:"), "matches are reported: {text}");
    assert!(
        text.contains("Wire copies: nothing to compare with yet"),
        "{text}"
    );
    assert!(!env.path("veille.db").exists(), "test creates no database");
}

/// `veille test --query` needs no config file: the query is the rule.
#[test]
fn test_query_needs_no_config_file() {
    let env = TestEnv::new();
    let out = env.veille(&[
        "test",
        "--query",
        "puces NEAR/3 Chine",
        "--text",
        "Des puces pour la Chine",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("query:"));
    assert!(!env.path("config.toml").exists());
    // Rules of the config still need one, and say which file is missing.
    let out = env.veille(&["test", "--text", "Des puces"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the config file"));
}

#[test]
fn completions_and_the_manual_come_from_the_same_definitions() {
    let env = TestEnv::new();
    for (shell, marker) in [
        ("bash", "complete -F _veille"),
        ("zsh", "#compdef veille"),
        ("fish", "complete -c veille"),
    ] {
        let out = env.ok(&["completions", shell]);
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: {script}");
        for sub in ["run", "check", "send-test", "import-opml", "completions"] {
            assert!(script.contains(sub), "{shell} completes {sub}");
        }
    }
    let out = env.veille(&["completions", "powershell7"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is bad usage");
    let man = String::from_utf8(env.ok(&["man"]).stdout).unwrap();
    assert!(man.contains(".TH veille 1"));
    assert!(
        man.contains("send\\-test") && man.contains("Exit status"),
        "{man}"
    );
    // The pages veille(1) points to exist.
    let run = String::from_utf8(env.ok(&["man", "run"]).stdout).unwrap();
    assert!(
        run.contains(".TH veille-run 1") && run.contains("\\-\\-once"),
        "{run}"
    );
    assert_eq!(env.veille(&["man", "nope"]).status.code(), Some(2));
}

#[test]
fn every_subcommand_has_an_example_and_the_top_help_the_exit_codes() {
    let env = TestEnv::new();
    let top = String::from_utf8(env.ok(&["--help"]).stdout).unwrap();
    assert!(
        top.contains("Exit status: 0 success; 1 a failure while running (`test`: nothing matched); 2 bad usage or an invalid config."),
        "{top}"
    );
    for sub in [
        "run",
        "check",
        "test",
        "status",
        "retry",
        "digest",
        "import-opml",
        "send-test",
        "completions",
        "man",
    ] {
        let help = String::from_utf8(env.ok(&[sub, "--help"]).stdout).unwrap();
        let example = help
            .lines()
            .skip_while(|l| !l.starts_with("Example"))
            .nth(1)
            .unwrap_or_default();
        assert!(
            example.trim_start().starts_with("veille "),
            "{sub}: no example in\n{help}"
        );
    }
}

#[test]
fn a_clock_shift_moves_the_next_digest_and_a_bad_one_is_bad_usage() {
    let env = TestEnv::new();
    env.write_config("[daemon]\ntimezone = \"Europe/Paris\"\n\n[[feed]]\nname = \"a\"\nurl = \"https://a.example/rss\"\n\n[[rule]]\nname = \"r\"\nany = [\"x\"]\nnotify = [\"matin\"]\n\n[channel.matin]\nkind = \"maildir\"\npath = \"mail\"\ndigest = \"0 8 * * *\"\n");
    let next = |shift: &str| {
        let out = env
            .command(&["check"])
            .env("VEILLE_CLOCK_SHIFT", shift)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text.lines().find(|l| l.contains("(next: ")).unwrap();
        let date = line.split("(next: ").nth(1).unwrap()[..10].to_owned();
        chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").unwrap()
    };
    let today = next("0s");
    assert_eq!((next("3d") - today).num_days(), 3, "three days on");
    assert_eq!((next("-2d") - today).num_days(), -2, "two days back");
    let out = env
        .command(&["check"])
        .env("VEILLE_CLOCK_SHIFT", "demain")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("VEILLE_CLOCK_SHIFT=\"demain\""), "{err}");
}
