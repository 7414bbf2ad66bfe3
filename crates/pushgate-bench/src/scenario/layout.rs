//! Where a run's subscribers go: their topics and their 127.0.0.x source addresses. Pure, so
//! the split of several concurrent transport groups over the same topics is tested without a
//! socket.

use std::net::Ipv4Addr;

/// Source addresses usable by runs: 127.0.0.2 up to (but excluding) 127.0.0.242.
const SOURCE_SPAN: usize = 240;
/// Subscribers per source address by default: about 8,000 of its ~28,000 ephemeral ports.
const PER_SOURCE: usize = 8_000;

/// The subscribers of one run: `groups` transport groups of `per_group` subscribers each, all
/// following the same `topics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    groups: usize,
    per_group: usize,
    topics: usize,
    sources: usize,
    first_source: usize,
}

impl Layout {
    /// The layout of run `run_index` of bench process `process_id`; `sources` (default: one per
    /// 8,000 subscribers of the whole run) source addresses are spread over subscribers.
    ///
    /// Each run (and each bench process) gets its own source addresses, so ports still in
    /// TIME_WAIT from an earlier run never run short.
    pub(crate) fn new(
        groups: usize,
        per_group: usize,
        topics: usize,
        sources: Option<usize>,
        run_index: usize,
        process_id: u32,
    ) -> Self {
        let groups = groups.max(1);
        let sources = sources.unwrap_or_else(|| (groups * per_group).div_ceil(PER_SOURCE)).clamp(1, 60);
        let first_source = 2 + (process_id as usize * 7 + run_index * sources) % (SOURCE_SPAN - sources);
        Self { groups, per_group, topics: topics.max(1), sources, first_source }
    }

    /// Subscribers of all groups.
    pub(crate) fn total(&self) -> usize {
        self.groups * self.per_group
    }

    /// The topic of subscriber `index` of any group: subscriber i follows topic i mod topics,
    /// so every group is spread over the topics exactly as a single-transport run is.
    pub(crate) fn topic(&self, index: usize) -> usize {
        index % self.topics
    }

    /// How many subscribers of one group follow each topic.
    pub(crate) fn subscribers_per_topic(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.topics];
        for index in 0..self.per_group {
            counts[self.topic(index)] += 1;
        }
        counts
    }

    /// The source address of subscriber `index` of group `group`. The groups are interleaved
    /// (as they connect), so each address carries an even share of every group.
    pub(crate) fn source(&self, group: usize, index: usize) -> Ipv4Addr {
        let global = index * self.groups + group;
        // `first_source + sources` stays below 242, so the cast cannot truncate.
        Ipv4Addr::new(127, 0, 0, (self.first_source + global % self.sources) as u8)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn every_group_follows_the_topics_like_a_single_run() {
        let single = Layout::new(1, 1000, 7, None, 0, 42);
        let both = Layout::new(2, 1000, 7, None, 0, 42);
        assert_eq!(both.subscribers_per_topic(), single.subscribers_per_topic());
        assert_eq!(both.subscribers_per_topic().iter().sum::<u64>(), 1000);
        assert_eq!(both.total(), 2000);
        assert_eq!(Layout::new(2, 1000, 1, None, 0, 42).subscribers_per_topic(), [1000]);
    }

    #[test]
    fn sources_are_shared_evenly_and_stay_in_range() {
        // 2 × 9,000 subscribers need three addresses by default.
        let layout = Layout::new(2, 9_000, 10, None, 3, 4_000_000);
        let mut per_source: HashMap<Ipv4Addr, [usize; 2]> = HashMap::new();
        for group in 0..2 {
            for index in 0..9_000 {
                let source = layout.source(group, index);
                let last = source.octets()[3];
                assert!((2..242).contains(&last), "{source}");
                per_source.entry(source).or_default()[group] += 1;
            }
        }
        assert_eq!(per_source.len(), 3);
        for counts in per_source.values() {
            assert_eq!(*counts, [3_000, 3_000]);
        }
        // Another run of the same process uses other addresses.
        let next = Layout::new(2, 9_000, 10, None, 4, 4_000_000);
        assert!((0..9_000).all(|index| next.source(0, index) != layout.source(0, index)));
    }
}
