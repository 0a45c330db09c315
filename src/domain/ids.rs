//! The ids of stored rows that cross modules, each its own type so that a
//! story id is never passed where an item id is expected. The store makes
//! them from and into SQLite integers (`store::sqlite::ids`).

use std::fmt;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// A configured feed's row (`feeds.id`).
    FeedId
);
id!(
    /// A story: the items, from any feed, that tell one piece of news
    /// (`stories.id`).
    StoryId
);
id!(
    /// An item of one feed (`items.id`).
    ItemId
);
