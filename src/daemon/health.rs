//! The feed-health review: reads each configured feed's facts, lets
//! `domain::health` judge them, and records the episodes and alerts that
//! changed (SPEC §7 "Feed health"). Without `[health]` nothing is recorded;
//! `veille status` judges the same facts when asked.

use anyhow::Result;
use tracing::{info, warn};

use super::Shared;
use crate::domain::health::{Event, review};
use crate::store::HealthChange;

/// Feeds read at once by a review (about 2.5 ms of reading).
const REVIEW_SLICE: usize = 100;

/// Reviews every configured feed at `now`; returns the alerts made.
pub async fn review_health_once(sh: &Shared, now: i64) -> Result<usize> {
    let Some(health) = sh.config.health.clone() else {
        return Ok(0);
    };
    // Read on the reading connection, a slice of feeds at a time, so that
    // neither the writer nor the pollers wait for the whole review.
    let mut feeds = Vec::with_capacity(sh.config.feeds.len());
    for slice in sh.config.feeds.chunks(REVIEW_SLICE) {
        let names: Vec<String> = slice.iter().map(|f| f.name.clone()).collect();
        feeds.extend(
            sh.with_reader(move |s| {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                s.feed_health(&names)
            })
            .await?,
        );
    }
    let changes: Vec<HealthChange> = feeds
        .into_iter()
        .filter_map(|f| {
            let mut r = review(&f.name, f.open, &f.facts, health.policy, now);
            if !r.notices.is_empty() {
                // Notices are rare: a scan of the feeds for each is cheap.
                let url = sh.config.feeds.iter().find(|c| c.name == f.name);
                for n in &mut r.notices {
                    n.url = url.map(|c| c.url.to_string());
                }
            }
            (r.open != f.open || !r.notices.is_empty()).then_some(HealthChange {
                feed_id: f.feed_id,
                was: f.open,
                open: r.open,
                notices: r.notices,
            })
        })
        .collect();
    if changes.is_empty() {
        return Ok(0);
    }
    for c in &changes {
        for n in &c.notices {
            let line = match n.event {
                Event::Recovered => "feed recovered",
                Event::Failing => "feed failing",
                Event::Gone => "feed gone",
                Event::Silent => "feed silent",
            };
            // A date a person reads, in the configured zone.
            let since = chrono::DateTime::from_timestamp(n.since, 0).map_or_else(
                || n.since.to_string(),
                |at| sh.config.daemon.timezone.format(at, "%Y-%m-%d %H:%M %Z"),
            );
            if n.event == Event::Recovered {
                info!(feed = %n.feed, since, "{line}");
            } else {
                warn!(feed = %n.feed, since, "{line}");
            }
        }
    }
    let notify = health.notify.clone();
    let made = sh
        .with_store(move |s| s.record_health(&changes, &notify, now))
        .await?;
    if made > 0 {
        sh.alerts_recorded.notify_one();
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    //! Reviews with the clock passed in, through a real config file, a real
    //! database file and real Maildirs.

    use std::path::Path;

    use super::*;
    use crate::config::{self, Env};
    use crate::daemon::{deliver_due_once, digests_due_once};
    use crate::domain::model::Item;
    use crate::store::{FetchRecord, ItemRecord, PollRecord, Store};

    const H: i64 = 3600;
    /// Monday 2026-11-23 00:00 UTC.
    const T0: i64 = 1_795_392_000;

    fn setup(dir: &Path) -> Shared {
        crate::fetch::install_crypto();
        let path = dir.join("config.toml");
        std::fs::write(
            &path,
            "[daemon]\ndatabase = \"v.db\"\ntimezone = \"Europe/Paris\"\n\n\
             [[feed]]\nname = \"AFP\"\nurl = \"feed.xml\"\n\n\
             [[rule]]\nname = \"puces\"\nany = [\"puces\"]\nnotify = [\"moi\"]\n\n\
             [health]\nnotify = [\"moi\", \"matin\"]\nfailing_after = \"6h\"\n\n\
             [channel.moi]\nkind = \"maildir\"\npath = \"moi\"\n\n\
             [channel.matin]\nkind = \"maildir\"\npath = \"matin\"\ndigest = \"0 8 * * *\"\n",
        )
        .unwrap();
        let config = config::load(&path, &Env::default()).unwrap();
        let mut store = Store::open(&config.daemon.database).unwrap();
        store
            .sync_feeds(&[("AFP".into(), "feed.xml".into())])
            .unwrap();
        Shared::new(config, store, crate::clock::Clock::manual(T0)).unwrap()
    }

    /// A poll of AFP at `now` that ended as `fetch`, bringing new items `keys`.
    async fn poll(sh: &Shared, now: i64, fetch: FetchRecord, keys: &[String]) {
        let items = keys
            .iter()
            .map(|k| ItemRecord {
                key: k.clone(),
                is_new: true,
                wire: None,
                kept: None,
                story_link: Some(format!("https://x.fr/{k}")),
                content_hash: format!("h-{k}"),
                item: Item {
                    title: format!("Dépêche {k}"),
                    link: Some(format!("https://x.fr/{k}")),
                    ..Item::default()
                },
                alerts: Vec::new(),
                quiet: false,
            })
            .collect();
        let poll = PollRecord {
            feed_id: crate::domain::ids::FeedId(1),
            now,
            fetch,
            redirect_url: None,
            next_poll: now + 900,
            wire_window: 0,
            wire_keep: 0,
            lease: None,
            items,
            keep_text: false,
            pages: Default::default(),
        };
        let recorded = sh
            .with_store(move |s| s.record_polls(&[poll]))
            .await
            .unwrap();
        assert!(recorded[0].is_ok());
    }

    fn fetched() -> FetchRecord {
        FetchRecord::Fetched {
            status: 200,
            etag: None,
            last_modified: None,
            items: 1,
            unread_items: 0,
        }
    }

    fn failed() -> FetchRecord {
        FetchRecord::Failed(crate::domain::poll::FetchFailure {
            status: Some(500),
            error: "HTTP 500".into(),
            gone: false,
            retry_after_until: None,
        })
    }

    /// Reviews and delivers at `now`; the alerts the review made.
    async fn at(sh: &Shared, now: i64) -> usize {
        sh.clock.set(now);
        let made = review_health_once(sh, now).await.unwrap();
        deliver_due_once(sh, now, false).await.unwrap();
        made
    }

    /// The subjects and texts of the messages in Maildir `name`, oldest first.
    fn mails(dir: &Path, name: &str) -> Vec<(String, String)> {
        let Ok(entries) = std::fs::read_dir(dir.join(name).join("new")) else {
            return Vec::new();
        };
        let mut out: Vec<(String, String, String)> = entries
            .map(|e| {
                let raw = std::fs::read(e.unwrap().path()).unwrap();
                let m = mailparse::parse_mail(&raw).unwrap();
                let header = |k: &str| {
                    m.headers
                        .iter()
                        .find(|h| h.get_key().eq_ignore_ascii_case(k))
                        .map(|h| h.get_value())
                        .unwrap_or_default()
                };
                let date = mailparse::dateparse(&header("Date")).unwrap().to_string();
                let text = m.subparts[0].get_body().unwrap().replace("\r\n", "\n");
                (date, header("Subject"), text)
            })
            .collect();
        out.sort();
        out.into_iter().map(|(_, s, t)| (s, t)).collect()
    }

    #[tokio::test]
    async fn a_failure_alerts_once_then_its_recovery_once_and_the_digest_lists_both() {
        let dir = tempfile::tempdir().unwrap();
        let sh = setup(dir.path());
        digests_due_once(&sh, T0).await.unwrap();
        poll(&sh, T0, fetched(), &["a".into()]).await;
        poll(&sh, T0 + H, failed(), &[]).await;
        // Failing for five hours: nothing yet.
        assert_eq!(at(&sh, T0 + 6 * H).await, 0);
        poll(&sh, T0 + 6 * H, failed(), &[]).await;
        // Six hours: one alert per channel; the email channel sends it now.
        assert_eq!(at(&sh, T0 + 7 * H).await, 2);
        let got = mails(dir.path(), "moi");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "[veille] flux en échec : AFP");
        assert!(
            got[0]
                .1
                .contains(" est en échec depuis le lundi 23 novembre 2026 à 02 h 00 (dernière erreur : HTTP 500)"),
            "{}",
            got[0].1
        );
        // Reviewed again, still failing: nothing more.
        assert_eq!(at(&sh, T0 + 8 * H).await, 0);
        assert_eq!(mails(dir.path(), "moi").len(), 1);
        // A success: one recovery.
        poll(&sh, T0 + 9 * H, FetchRecord::NotModified, &[]).await;
        assert_eq!(at(&sh, T0 + 9 * H).await, 2);
        assert_eq!(at(&sh, T0 + 10 * H).await, 0);
        let got = mails(dir.path(), "moi");
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[1].0, "[veille] flux rétabli : AFP");
        assert!(
            got[1].1.contains(
                "répond de nouveau (en échec depuis le lundi 23 novembre 2026 à 02 h 00)"
            )
        );
        // The digest channel got nothing yet; at 08:00 Paris, one digest
        // holding both, though no story is in it.
        assert!(mails(dir.path(), "matin").is_empty());
        sh.clock.set(T0 + 31 * H);
        digests_due_once(&sh, T0 + 31 * H).await.unwrap();
        let got = mails(dir.path(), "matin");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "[veille] matin: santé des flux");
        let body = &got[0].1;
        let failing = body.find(" est en échec").expect(body);
        let back = body.find(" répond de nouveau").expect(body);
        assert!(failing < back, "{body}");
        // Sent: nothing waits any more.
        let status = sh.with_store(|s| s.status()).await.unwrap();
        for c in &status.channels {
            assert_eq!((c.pending, c.failed), (0, 0), "{c:?}");
        }
    }

    #[tokio::test]
    async fn silence_beyond_five_usual_gaps_alerts_once_and_a_new_item_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let sh = setup(dir.path());
        // A first poll, then a new item every two hours.
        for i in 0..7 {
            poll(&sh, T0 + 2 * i * H, fetched(), &[format!("n{i}")]).await;
        }
        let last = T0 + 12 * H;
        // Polled without news for 23 h after the last item: five gaps
        // (10 h) passed, but silence waits a day.
        poll(&sh, last + 23 * H, FetchRecord::NotModified, &[]).await;
        assert_eq!(at(&sh, last + 23 * H).await, 0);
        // Not polled since: still not silent, however late the review.
        assert_eq!(at(&sh, last + 40 * H).await, 0);
        poll(&sh, last + 41 * H, FetchRecord::NotModified, &[]).await;
        assert_eq!(at(&sh, last + 41 * H).await, 2);
        let got = mails(dir.path(), "moi");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "[veille] flux silencieux : AFP");
        assert!(
            got[0].1.contains(
                "n'a apporté aucun nouvel article depuis le lundi 23 novembre 2026 à 13 h 00, alors qu'il en apporte d'habitude un toutes les 2 h"
            ),
            "{}",
            got[0].1
        );
        assert_eq!(at(&sh, last + 50 * H).await, 0);
        poll(&sh, last + 51 * H, fetched(), &["back".into()]).await;
        assert_eq!(at(&sh, last + 51 * H).await, 2);
        let got = mails(dir.path(), "moi");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[1].1.contains("apporte de nouveau des articles"),
            "{}",
            got[1].1
        );
    }
}
