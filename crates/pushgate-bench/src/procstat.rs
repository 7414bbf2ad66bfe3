//! CPU time and memory of processes, read from `/proc`: the server's (a process and its
//! children, so nginx's workers count with their master) and the bench's own.

use std::collections::HashMap;

/// CPU seconds and resident memory of a process tree.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Usage {
    /// User plus system CPU time, seconds.
    pub(crate) cpu_seconds: f64,
    /// Resident set now (`VmRSS`), bytes.
    pub(crate) rss_bytes: u64,
    /// Peak resident set (`VmHWM`), bytes; summed over the processes of the tree.
    pub(crate) peak_rss_bytes: u64,
}

/// `(ppid, utime + stime in clock ticks)` from the text of `/proc/<pid>/stat`.
///
/// The command name (field 2) is in parentheses and may hold spaces and parentheses itself, so
/// fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<(u32, u64)> {
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state(3) ppid(4) ... utime(14) stime(15), so indexes shift by 3.
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS:  1234 kB`), in bytes.
pub(crate) fn status_bytes(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(field) && line[field.len()..].starts_with(':'))?;
    let kib: u64 = line[field.len() + 1..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// Clock ticks per second of `/proc` CPU times.
pub(crate) fn ticks_per_second() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

/// CPU seconds used by this process so far (all threads).
pub(crate) fn self_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|text| parse_stat(&text))
        .map_or(0.0, |(_, ticks)| ticks as f64 / ticks_per_second())
}

/// The one-minute load average, from `/proc/loadavg`.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// `root` and its descendants, found by scanning every `/proc/<pid>/stat` once.
pub(crate) fn process_tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
                continue;
            };
            if let Some((ppid, _)) =
                std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|text| parse_stat(&text))
            {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut tree = vec![root];
    let mut at = 0;
    // Each pid is visited once; `/proc` lists a bounded number of them.
    while at < tree.len() {
        if let Some(kids) = children.get(&tree[at]) {
            tree.extend(kids.iter().filter(|kid| **kid != root));
        }
        at += 1;
    }
    tree
}

/// The summed [`Usage`] of `pids`; processes that vanished count as zero.
pub(crate) fn usage(pids: &[u32]) -> Usage {
    let mut total = Usage::default();
    for pid in pids {
        if let Some((_, ticks)) =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|text| parse_stat(&text))
        {
            total.cpu_seconds += ticks as f64 / ticks_per_second();
        }
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            total.rss_bytes += status_bytes(&status, "VmRSS").unwrap_or(0);
            total.peak_rss_bytes += status_bytes(&status, "VmHWM").unwrap_or(0);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let text = "4242 (nginx: (worker) x) S 4200 4200 4200 0 -1 4194624 120 0 0 0 \
                    731 289 0 0 20 0 1 0 1234 1000000 300 18446744073709551615";
        assert_eq!(parse_stat(text), Some((4200, 731 + 289)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn status_sizes_are_read_in_bytes() {
        let status = "Name:\tpushgate\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_bytes(status, "VmRSS"), Some(10 << 20));
        assert_eq!(status_bytes(status, "VmHWM"), Some(20 << 20));
        assert_eq!(status_bytes(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_is_measurable() {
        let me = std::process::id();
        assert_eq!(process_tree(me)[0], me);
        let usage = usage(&[me]);
        assert!(usage.rss_bytes > 0 && usage.peak_rss_bytes >= usage.rss_bytes);
    }
}
