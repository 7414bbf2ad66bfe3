//! Counting deliveries honestly: each subscriber remembers which sequence numbers of its topic
//! it has seen, so duplicates and reordering are counted, and loss is computed at the end
//! against the publishes the server acknowledged, never assumed to be zero.

/// A growable set of sequence numbers (1-based), one bit each, with a hard upper bound so a
/// garbled number cannot allocate gigabytes.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeqSet {
    words: Vec<u64>,
    len: u64,
}

impl SeqSet {
    /// Inserts `seq`; returns whether it was new. `seq` must be below `limit`, which the caller
    /// checks.
    pub(crate) fn insert(&mut self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let mask = 1u64 << bit;
        let new = self.words[word] & mask == 0;
        self.words[word] |= mask;
        self.len += u64::from(new);
        new
    }

    /// Whether `seq` is in the set.
    #[cfg(test)]
    pub(crate) fn contains(&self, seq: u64) -> bool {
        self.words.get((seq / 64) as usize).is_some_and(|word| word & (1 << (seq % 64)) != 0)
    }

    /// How many numbers the set holds.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// How many numbers of `self` are missing from `other`.
    pub(crate) fn missing_from(&self, other: &SeqSet) -> u64 {
        self.words
            .iter()
            .enumerate()
            .map(|(i, word)| u64::from((word & !other.words.get(i).copied().unwrap_or(0)).count_ones()))
            .sum()
    }
}

/// What one received stamp turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// First time this sequence number arrived (in order or not).
    New,
    /// Seen before.
    Duplicate,
    /// Not a number this run could have published (zero, or past the plan).
    Invalid,
}

/// One subscriber's record of its topic's sequence numbers.
#[derive(Debug, Clone)]
pub(crate) struct SeqTracker {
    seen: SeqSet,
    highest: u64,
    limit: u64,
    /// Deliveries of a number already seen.
    pub(crate) duplicated: u64,
    /// New deliveries of a number below the highest already seen.
    pub(crate) out_of_order: u64,
    /// Stamps that were malformed, for another topic, or out of range.
    pub(crate) invalid: u64,
}

impl SeqTracker {
    /// A tracker accepting sequence numbers `1..limit`.
    pub(crate) fn new(limit: u64) -> Self {
        Self { seen: SeqSet::default(), highest: 0, limit, duplicated: 0, out_of_order: 0, invalid: 0 }
    }

    /// Records one arrival of `seq`.
    pub(crate) fn record(&mut self, seq: u64) -> Arrival {
        if seq == 0 || seq >= self.limit {
            self.invalid += 1;
            return Arrival::Invalid;
        }
        if !self.seen.insert(seq) {
            self.duplicated += 1;
            return Arrival::Duplicate;
        }
        if seq < self.highest {
            self.out_of_order += 1;
        }
        self.highest = self.highest.max(seq);
        Arrival::New
    }

    /// Distinct sequence numbers received.
    pub(crate) fn delivered(&self) -> u64 {
        self.seen.len()
    }

    /// Acknowledged publishes of the topic that never arrived.
    pub(crate) fn lost(&self, acknowledged: &SeqSet) -> u64 {
        acknowledged.missing_from(&self.seen)
    }
}

/// Totals over all subscribers of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Distinct messages received (each subscriber counts each of its messages once).
    pub(crate) delivered: u64,
    /// Acknowledged publishes a subscriber of the topic never received.
    pub(crate) lost: u64,
    /// Repeated receptions.
    pub(crate) duplicated: u64,
    /// Receptions below a number already seen.
    pub(crate) out_of_order: u64,
    /// Stamps that could not be accounted (malformed, wrong topic, out of range).
    pub(crate) invalid: u64,
}

impl Tally {
    /// Adds one subscriber's tracker, judged against its topic's acknowledged publishes.
    pub(crate) fn add(&mut self, tracker: &SeqTracker, acknowledged: &SeqSet) {
        self.delivered += tracker.delivered();
        self.lost += tracker.lost(acknowledged);
        self.duplicated += tracker.duplicated;
        self.out_of_order += tracker.out_of_order;
        self.invalid += tracker.invalid;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acknowledged(seqs: impl IntoIterator<Item = u64>) -> SeqSet {
        let mut set = SeqSet::default();
        for seq in seqs {
            set.insert(seq);
        }
        set
    }

    #[test]
    fn in_order_delivery_is_clean() {
        let mut tracker = SeqTracker::new(1000);
        for seq in 1..=200 {
            assert_eq!(tracker.record(seq), Arrival::New);
        }
        let mut tally = Tally::default();
        tally.add(&tracker, &acknowledged(1..=200));
        assert_eq!(tally, Tally { delivered: 200, ..Tally::default() });
    }

    #[test]
    fn gaps_repeats_and_reordering_are_each_counted() {
        let mut tracker = SeqTracker::new(100);
        for seq in [1, 2, 4, 3, 4, 6, 0, 100] {
            tracker.record(seq);
        }
        let mut tally = Tally::default();
        // 1..=7 acknowledged: 5 and 7 never arrived.
        tally.add(&tracker, &acknowledged(1..=7));
        assert_eq!(tally, Tally { delivered: 5, lost: 2, duplicated: 1, out_of_order: 1, invalid: 2 });
    }

    #[test]
    fn failed_publishes_are_not_losses() {
        let mut tracker = SeqTracker::new(100);
        for seq in [1, 3] {
            tracker.record(seq);
        }
        // Publish 2 was refused by the server, so nobody could receive it.
        let acked = acknowledged([1, 3]);
        assert!(!acked.contains(2));
        assert_eq!(tracker.lost(&acked), 0);
        // A delivery of an unacknowledged publish (its answer was lost) is not held against anyone.
        assert_eq!(SeqTracker::new(100).lost(&acked), 2);
    }
}
