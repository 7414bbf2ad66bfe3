//! Changing a live connection's topic set: the subscription is reopened over the new set from
//! a point early enough for every topic, and what a topic has already delivered (or was not
//! asked for) is skipped, so the topics that stay neither lose nor repeat an event.
//!
//! A connection stands at one position `P` in the hub's order (its subscription's cursor). A
//! `subscribe` frame with a cursor `C` adds topics that should start at `C` while the others go
//! on from `P`. The hub reads a subscription from one cursor, so it is reopened from
//! `S = min(C, P)`, and [`Floors`] drops what lies at or below each topic's own start: events
//! of the old topics up to `P`, and of the new ones up to `C` when `C` is ahead. `now` is the
//! head (new topics start live); `oldest` and a cursor of another epoch mean what they mean to
//! the hub (replay what is retained), for the new topics only.
//!
//! Resets are told per topic from its own start, not from `S`: the subscription's own reset
//! (reported from `S`) is replaced by resets read with [`Hub::fetch`] from each topic's start,
//! after the subscription is open, so nothing evicted in between goes unreported (an event
//! evicted later makes the subscription lag, as usual).

use std::collections::HashMap;

use pushgate_hub::{
    Cursor, Event, FetchOptions, Hub, HubError, Reset, SubscribeOptions, Subscription, TopicName,
};

/// Per-topic positions at or below which a reopened subscription's events are skipped: they were
/// delivered before the reopening, or lie before the cursor a topic was added with.
#[derive(Debug, Default)]
pub(crate) struct Floors {
    by_topic: HashMap<TopicName, u64>,
    /// The highest floor: once the subscription has passed it, nothing is skipped any more.
    until: u64,
}

impl Floors {
    fn raise(&mut self, topic: &TopicName, floor: u64) {
        let entry = self.by_topic.entry(topic.clone()).or_default();
        *entry = (*entry).max(floor);
        self.until = self.until.max(floor);
    }

    /// The floor of `topic`: 0 when nothing of it is skipped.
    fn of(&self, topic: &TopicName) -> u64 {
        self.by_topic.get(topic).copied().unwrap_or(0)
    }

    /// Whether `event` is news for the client.
    pub(crate) fn admits(&self, event: &Event) -> bool {
        self.by_topic.is_empty() || event.position() > self.of(event.topic())
    }

    /// Forgets every floor once the subscription's `cursor` has passed them all.
    pub(crate) fn passed(&mut self, cursor: Cursor) {
        if let Cursor::At { position, .. } = cursor
            && position >= self.until
        {
            self.by_topic.clear();
            self.until = 0;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_topic.is_empty()
    }
}

/// How to reopen a subscription for a new topic set: where the hub starts, and where each topic
/// starts on its own.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The cursor the subscription is opened from: no topic starts earlier.
    start: Cursor,
    /// Topics grouped by their own start.
    groups: Vec<(Cursor, Vec<TopicName>)>,
    /// A client cursor that affects no topic (all were followed already) but must still be one
    /// the hub accepts.
    check: Option<Cursor>,
}

/// Plans the reopening of a subscription standing at `current` (with `floors` still in force)
/// for the topics `keep` (followed, and staying) plus `add`, the added ones starting at
/// `cursor` (`None`: at `current`, like the others).
pub(crate) fn plan(
    current: Cursor,
    floors: &Floors,
    keep: &[TopicName],
    add: &[TopicName],
    cursor: Option<Cursor>,
) -> Plan {
    let mut new: Vec<TopicName> = add.iter().filter(|t| !keep.contains(t)).cloned().collect();
    new.sort_unstable();
    new.dedup();
    let Cursor::At { epoch, position } = current else {
        // A subscription's cursor is always a position; should it not be, every topic starts
        // where the connection stands.
        let all = keep.iter().chain(&new).cloned().collect();
        return Plan { start: current, groups: vec![(current, all)], check: None };
    };
    let here = Cursor::at(epoch, position);
    let mut groups: Vec<(Cursor, Vec<TopicName>)> = Vec::new();
    for topic in keep {
        let from = Cursor::at(epoch, position.max(floors.of(topic)));
        match groups.iter_mut().find(|(start, _)| *start == from) {
            Some((_, topics)) => topics.push(topic.clone()),
            None => groups.push((from, vec![topic.clone()])),
        }
    }
    let (start, check) = match cursor {
        Some(cursor) if new.is_empty() => (here, Some(cursor)),
        None | Some(Cursor::Now) => (here, None),
        Some(Cursor::At { epoch: theirs, position: at }) if theirs == epoch => {
            (Cursor::at(epoch, at.min(position)), None)
        }
        // `oldest`, or another epoch: the hub replays what is retained (with a reset for the
        // latter); the old topics skip what they delivered.
        Some(other) => (other, None),
    };
    if !new.is_empty() {
        groups.push((cursor.unwrap_or(here), new));
    }
    Plan { start, groups, check }
}

/// A subscription reopened by [`reopen`].
pub(crate) struct Reopened {
    pub(crate) subscription: Subscription,
    pub(crate) floors: Floors,
    /// To tell the client before any event, in place of the subscription's own reset.
    pub(crate) resets: Vec<Reset>,
}

/// Opens the subscription `plan` describes.
///
/// # Errors
/// As [`Hub::subscribe_with`] and [`Hub::fetch`]; notably [`HubError::CursorAhead`] for a
/// client cursor past the newest event.
pub(crate) async fn reopen(hub: &Hub, options: SubscribeOptions, plan: Plan) -> Result<Reopened, HubError> {
    let all: Vec<TopicName> = plan.groups.iter().flat_map(|(_, topics)| topics.iter().cloned()).collect();
    let subscription = hub.subscribe_with(&all, plan.start, options)?;
    let opened_at = match subscription.cursor() {
        Cursor::At { position, .. } => position,
        _ => 0,
    };
    // Only whether a reset is due matters, and the first event always comes: read one.
    let probe = FetchOptions::default().limit(1).max_bytes(0);
    if let Some(cursor) = plan.check {
        hub.fetch(&all, cursor, &probe).await?;
    }
    let mut floors = Floors::default();
    let mut resets = Vec::new();
    for (from, topics) in &plan.groups {
        let batch = hub.fetch(topics, *from, &probe).await?;
        resets.extend(batch.reset);
        // Where this group starts, as a position of the subscription's epoch: `now` is the head
        // the fetch found; `oldest` and other epochs start at the beginning.
        let floor = match (*from, batch.cursor) {
            (Cursor::At { epoch, position }, _) if epoch == hub.epoch() => position,
            (Cursor::Now, Cursor::At { position, .. }) => position,
            _ => 0,
        };
        if floor > opened_at {
            for topic in topics {
                floors.raise(topic, floor);
            }
        }
    }
    Ok(Reopened { subscription, floors, resets })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushgate_hub::Epoch;

    fn names(list: &[&str]) -> Vec<TopicName> {
        list.iter().map(|name| TopicName::new(name).unwrap()).collect()
    }

    const E: Epoch = Epoch::from_u32(7);

    #[test]
    fn without_a_cursor_added_topics_start_where_the_connection_stands() {
        let plan = plan(Cursor::at(E, 5), &Floors::default(), &names(&["a"]), &names(&["b", "a"]), None);
        let here = Cursor::at(E, 5);
        assert_eq!(
            plan,
            Plan { start: here, groups: vec![(here, names(&["a"])), (here, names(&["b"]))], check: None }
        );
    }

    #[test]
    fn a_cursor_behind_reopens_from_it_and_one_ahead_from_the_position() {
        let keep = names(&["a"]);
        let behind =
            plan(Cursor::at(E, 5), &Floors::default(), &keep, &names(&["b"]), Some(Cursor::at(E, 2)));
        assert_eq!(behind.start, Cursor::at(E, 2));
        assert_eq!(behind.groups, [(Cursor::at(E, 5), names(&["a"])), (Cursor::at(E, 2), names(&["b"]))]);

        let ahead = plan(Cursor::at(E, 5), &Floors::default(), &keep, &names(&["b"]), Some(Cursor::at(E, 9)));
        assert_eq!(ahead.start, Cursor::at(E, 5));
        assert_eq!(ahead.groups[1], (Cursor::at(E, 9), names(&["b"])));

        let now = plan(Cursor::at(E, 5), &Floors::default(), &keep, &names(&["b"]), Some(Cursor::Now));
        assert_eq!((now.start, &now.groups[1]), (Cursor::at(E, 5), &(Cursor::Now, names(&["b"]))));

        for special in [Cursor::Oldest, Cursor::at(Epoch::from_u32(8), 3)] {
            let plan = plan(Cursor::at(E, 5), &Floors::default(), &keep, &names(&["b"]), Some(special));
            assert_eq!(plan.start, special);
            assert_eq!(plan.groups[0], (Cursor::at(E, 5), names(&["a"])));
        }
    }

    #[test]
    fn a_cursor_that_adds_no_topic_changes_nothing_but_is_checked() {
        let plan =
            plan(Cursor::at(E, 5), &Floors::default(), &names(&["a"]), &names(&["a"]), Some(Cursor::Oldest));
        assert_eq!(plan.start, Cursor::at(E, 5));
        assert_eq!(plan.check, Some(Cursor::Oldest));
        assert_eq!(plan.groups.len(), 1);
    }

    #[test]
    fn floors_still_in_force_keep_each_topic_at_its_own_start() {
        let mut floors = Floors::default();
        floors.raise(&names(&["a"])[0], 8);
        let plan = plan(Cursor::at(E, 5), &floors, &names(&["a", "b"]), &[], None);
        assert_eq!(plan.start, Cursor::at(E, 5));
        assert_eq!(plan.groups, [(Cursor::at(E, 8), names(&["a"])), (Cursor::at(E, 5), names(&["b"]))]);
    }

    #[test]
    fn floors_skip_up_to_each_topic_start_until_passed() {
        let mut floors = Floors::default();
        assert!(floors.is_empty());
        floors.raise(&names(&["a"])[0], 8);
        floors.raise(&names(&["b"])[0], 3);
        assert_eq!(floors.until, 8);
        floors.passed(Cursor::at(E, 7));
        assert!(!floors.is_empty());
        floors.passed(Cursor::at(E, 8));
        assert!(floors.is_empty());
    }
}
