//! SPEC §5: whole messages as a reader gets them, pinned by golden files
//! (`tests/golden/messages/`). Real feed server, real `veille run --once
//! --flush-digests`, real Maildirs; every byte of the subject, the text part
//! and the HTML part is compared. `VEILLE_BLESS=1` rewrites the files after
//! a deliberate change (then read the diff).

use std::path::Path;

use wiremock::MockServer;

use crate::harness::{FeedDoc, TestEnv, rss, serve};

const SUMMARY_A: &str = "Pékin a annoncé vendredi de nouveaux droits de douane sur les puces \
    importées des États-Unis. La mesure entrera en vigueur le 10 avril, a précisé le ministère \
    du Commerce. Les fabricants européens redoutent des hausses de prix. Bruxelles dit suivre la \
    situation « de très près ».";

fn config(feeds: &str) -> String {
    format!(
        "[daemon]\ndatabase = \"veille.db\"\ntimezone = \"Europe/Paris\"\n\
         first_poll_window = \"36500d\"\nmax_age = \"36500d\"\n\n\
         [[feed]]\nname = \"Le Monde\"\nurl = \"{feeds}/lemonde.xml\"\n\n\
         [[feed]]\nname = \"AFP\"\nurl = \"{feeds}/afp.xml\"\n\n\
         [[rule]]\nname = \"tarifs\"\nall = [\"droits de douane\"]\nnotify = [\"moi\", \"matin\"]\n\n\
         [[rule]]\nname = \"puces-ia\"\nany = [\"puce*\", \"IA\"]\nnotify = [\"moi\", \"matin\"]\n\n\
         [channel.moi]\nkind = \"maildir\"\npath = \"moi\"\n\n\
         [channel.matin]\nkind = \"maildir\"\npath = \"matin\"\ndigest = \"0 8 * * *\"\n"
    )
}

/// Each message of the Maildir `rel`, by subject: subject, text part and
/// HTML part, as one document.
fn rendered(env: &TestEnv, rel: &str) -> String {
    let mut mails = env.mails(rel);
    mails.sort_by(|a, b| a.subject.cmp(&b.subject));
    mails
        .iter()
        .map(|m| {
            format!(
                "Subject: {}\n\n{}\n---- html ----\n{}",
                m.subject,
                m.text.replace("\r\n", "\n"),
                m.html.replace("\r\n", "\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n==== next message ====\n")
}

fn golden(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/messages")
        .join(name);
    if std::env::var_os("VEILLE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        want == got,
        "{name} differs from {}; VEILLE_BLESS=1 rewrites it.\n--- got ---\n{got}",
        path.display()
    );
}

#[tokio::test]
async fn messages_read_as_a_journalist_would_forward_them() {
    let server = MockServer::start().await;
    // One story in two feeds (the same link, one with trackers), one that
    // matches both rules, one that matches a pattern.
    let lemonde = rss(
        "Le Monde",
        &[
            (
                "lm-1",
                "Pékin riposte : droits de douane sur les puces américaines",
                "https://www.lemonde.fr/economie/article/2025/04/04/pekin-riposte.html?utm_source=rss&amp;xtor=RSS-3208",
                SUMMARY_A,
                "Fri, 04 Apr 2025 09:30:00 +0200",
            ),
            (
                "lm-2",
                "L'IA générative au menu du sommet de Paris",
                "https://www.lemonde.fr/pixels/article/2025/02/10/ia-sommet.html",
                "Chefs d'État et patrons de la tech se retrouvent lundi au Grand Palais. \
                 Au programme : l'IA, son énergie et sa régulation. Emmanuel Macron doit \
                 annoncer des investissements.",
                "Mon, 10 Feb 2025 07:05:00 +0100",
            ),
        ],
    );
    let afp = rss(
        "AFP",
        &[
            (
                "afp-1",
                "Chine : droits de douane sur les puces américaines",
                "https://www.lemonde.fr/economie/article/2025/04/04/pekin-riposte.html",
                SUMMARY_A,
                "Fri, 04 Apr 2025 09:45:00 +0200",
            ),
            (
                "afp-2",
                "Météo : un week-end ensoleillé sur la moitié nord",
                "https://afp.example/meteo",
                "Le soleil dominera samedi et dimanche.",
                "Sat, 01 Mar 2025 06:00:00 +0100",
            ),
        ],
    );
    serve(&server, "/lemonde.xml", FeedDoc::rss(&lemonde)).await;
    serve(&server, "/afp.xml", FeedDoc::rss(&afp)).await;
    let env = TestEnv::new();
    env.write_config(&config(&server.uri()));
    env.ok(&["run", "--once", "--flush-digests"]);
    assert_eq!(env.mails("moi").len(), 2, "{}", rendered(&env, "moi"));
    assert_eq!(env.mails("matin").len(), 1);
    golden("per-story.txt", &rendered(&env, "moi"));
    golden("digest.txt", &rendered(&env, "matin"));
}
