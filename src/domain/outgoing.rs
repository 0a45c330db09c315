//! What a channel sends, by what it carries: a mail (email and Maildir
//! channels) or a webhook body. A story or a health alert is rendered when
//! it is sent, for its channel's medium only; a digest is rendered once,
//! when it is made, and frozen with both (`FrozenDigest`): its channel's
//! kind may change in the config before it is sent, and every retry sends
//! the same contents under the same id.

use serde::{Deserialize, Serialize};

use super::health::Notice;
use super::hook::{self, Hook};
use super::render::{self, Rendered, StoryView};
use super::zone::Zone;

/// What a channel kind carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    Mail,
    /// A webhook body in its channel's `format`.
    Hook(hook::Format),
    /// A push service's message, made from the webhook's medium-neutral
    /// data by the channel's kind when it is sent.
    Push,
}

/// A message rendered for one medium.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Mail(Rendered),
    /// The JSON the webhook posts.
    Hook(serde_json::Value),
    /// What a push message is made from.
    Push(Hook),
}

/// One message to deliver: the same id (Message-ID, `webhook-id`) and the
/// same contents on every attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub id: String,
    /// Unix seconds: the message's `Date`.
    pub date: i64,
    pub body: Body,
}

/// A digest as it is stored (`digests.body`), both renderings kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrozenDigest {
    pub id: String,
    pub date: i64,
    pub mail: Rendered,
    pub hook: Hook,
}

impl FrozenDigest {
    /// The digest as its channel's medium sends it.
    pub fn outgoing(self, medium: Medium) -> Outgoing {
        let body = match medium {
            Medium::Mail => Body::Mail(self.mail),
            Medium::Hook(format) => Body::Hook(hook::body(format, &self.hook)),
            Medium::Push => Body::Push(self.hook),
        };
        Outgoing {
            id: self.id,
            date: self.date,
            body,
        }
    }
}

/// The message about one story, alert `id`, queued at `date`.
pub fn story(medium: Medium, id: &str, date: i64, view: &StoryView) -> Outgoing {
    let body = match medium {
        Medium::Mail => Body::Mail(render::story(view)),
        Medium::Hook(format) => Body::Hook(hook::body(format, &Hook::Story(hook::story(id, view)))),
        Medium::Push => Body::Push(Hook::Story(hook::story(id, view))),
    };
    Outgoing {
        id: id.to_owned(),
        date,
        body,
    }
}

/// The message of one feed-health alert, dated when veille found it.
pub fn health(medium: Medium, id: &str, notice: &Notice, zone: Zone) -> Outgoing {
    let body = match medium {
        Medium::Mail => Body::Mail(render::health(notice, zone)),
        Medium::Hook(format) => {
            let health = Hook::Health(hook::health(id, notice, zone));
            Body::Hook(hook::body(format, &health))
        }
        Medium::Push => Body::Push(Hook::Health(hook::health(id, notice, zone))),
    };
    Outgoing {
        id: id.to_owned(),
        date: notice.at,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::health::Event;
    use crate::domain::hook::Format;
    use crate::domain::model::Item;

    const PARIS: Zone = Zone::Named(chrono_tz::Europe::Paris);

    fn notice() -> Notice {
        Notice {
            feed: "lemonde".into(),
            url: None,
            event: Event::Gone,
            recovered_from: None,
            since: 1_800_000_000,
            at: 1_800_003_600,
            error: Some("410 Gone".into()),
            usual_gap: None,
        }
    }

    fn json(body: &Body) -> &serde_json::Value {
        match body {
            Body::Hook(v) => v,
            Body::Mail(_) | Body::Push(_) => panic!("not a webhook body"),
        }
    }

    #[test]
    fn each_medium_gets_its_own_rendering_and_nothing_else() {
        let item = Item {
            title: "Puces".into(),
            ..Item::default()
        };
        let view = StoryView {
            rules: &["puces".into()],
            hits: &[],
            item: &item,
            outlets: &[],
            zone: PARIS,
        };
        let mail = story(Medium::Mail, "a1", 5, &view);
        assert!(matches!(&mail.body, Body::Mail(r) if r.subject.contains("Puces")));
        assert_eq!((mail.id.as_str(), mail.date), ("a1", 5));
        let hook = story(Medium::Hook(Format::Json), "a1", 5, &view);
        assert_eq!(json(&hook.body)["id"], "a1");
        assert_eq!(json(&hook.body)["title"], "Puces");
        let slack = story(Medium::Hook(Format::Slack), "a1", 5, &view);
        assert!(
            json(&slack.body)["text"]
                .as_str()
                .unwrap()
                .contains("Puces")
        );
        let h = health(Medium::Hook(Format::Json), "h1", &notice(), PARIS);
        assert_eq!(json(&h.body)["feed"], "lemonde");
        assert_eq!(h.date, 1_800_003_600, "dated when veille found it");
        assert!(matches!(
            health(Medium::Mail, "h1", &notice(), PARIS).body,
            Body::Mail(_)
        ));
    }

    #[test]
    fn a_frozen_digest_gives_the_medium_its_channel_has_when_sent() {
        let mail = render::health(&notice(), PARIS);
        let hook = Hook::Health(hook::health("d1", &notice(), PARIS));
        let frozen = FrozenDigest {
            id: "d1".into(),
            date: 9,
            mail: mail.clone(),
            hook: hook.clone(),
        };
        assert_eq!(frozen.clone().outgoing(Medium::Mail).body, Body::Mail(mail));
        let sent = frozen.outgoing(Medium::Hook(Format::Json));
        assert_eq!((sent.id.as_str(), sent.date), ("d1", 9));
        assert_eq!(sent.body, Body::Hook(hook::body(Format::Json, &hook)));
    }
}
