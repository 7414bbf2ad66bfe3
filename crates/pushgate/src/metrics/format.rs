//! The two text formats a scraper may ask `/metrics` for.
//!
//! `prometheus-client` writes OpenMetrics 1.0 text. A scraper that does not accept OpenMetrics
//! (an older Prometheus, a tool asking `text/plain; version=0.0.4`, or `curl`) would read that
//! text with the 0.0.4 parser and mis-type every counter: OpenMetrics names a counter family
//! `x` (`# TYPE x counter`) and its sample `x_total`, where 0.0.4 wants the family and the
//! sample named alike. So the answer is chosen from `Accept`, as Prometheus's own client
//! libraries do, and the 0.0.4 text is derived from the OpenMetrics text.

use http::HeaderMap;
use http::header::ACCEPT;

/// The content type of OpenMetrics 1.0 text.
pub(super) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of the Prometheus text format 0.0.4.
pub(super) const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether the request's `Accept` takes OpenMetrics text (with a non-zero quality). Anything
/// else, no `Accept` and `*/*` included, gets the 0.0.4 text every scraper reads.
pub(super) fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            let refused = parts.any(|param| {
                param.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()).is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        })
}

/// The Prometheus 0.0.4 text of `openmetrics`: counter families take their samples' `_total`
/// name in `# HELP` and `# TYPE`, `unknown` becomes `untyped`, and the OpenMetrics-only lines
/// (`# UNIT`, `# EOF`) go.
pub(super) fn to_prometheus_text(openmetrics: &str) -> String {
    let lines: Vec<&str> = openmetrics.lines().collect();
    let mut out = String::with_capacity(openmetrics.len() + 256);
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("# EOF") || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            // The family's TYPE line follows its HELP line.
            let type_line = lines.get(i + 1).and_then(|next| next.strip_prefix("# TYPE "));
            if type_line.is_some_and(|t| is_counter(t, name)) {
                out.push_str(&format!("# HELP {name}_total{}\n", &rest[name.len()..]));
                continue;
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap_or_default();
            if is_counter(rest, name) {
                out.push_str(&format!("# TYPE {name}_total counter\n"));
                continue;
            }
            if rest[name.len()..].trim() == "unknown" {
                out.push_str(&format!("# TYPE {name} untyped\n"));
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Whether the text after `# TYPE ` declares `name` a counter.
fn is_counter(type_rest: &str, name: &str) -> bool {
    type_rest.strip_prefix(name).is_some_and(|kind| kind.trim() == "counter")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")));
        headers
    }

    #[test]
    fn openmetrics_only_when_asked_for() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(&accept(prometheus)));
        assert!(!wants_openmetrics(&accept("text/plain; version=0.0.4")));
        assert!(!wants_openmetrics(&accept("*/*")));
        assert!(!wants_openmetrics(&HeaderMap::new()));
        assert!(!wants_openmetrics(&accept("application/openmetrics-text; q=0")));
    }

    #[test]
    fn counters_are_named_by_their_samples_in_the_old_format() {
        let openmetrics = "# HELP pushgate_events_published Events published.\n\
                           # TYPE pushgate_events_published counter\n\
                           pushgate_events_published_total 3\n\
                           # HELP pushgate_topics Topics held.\n\
                           # TYPE pushgate_topics gauge\n\
                           pushgate_topics 2\n\
                           # HELP pushgate_latency_seconds Latency.\n\
                           # TYPE pushgate_latency_seconds histogram\n\
                           # UNIT pushgate_latency_seconds seconds\n\
                           pushgate_latency_seconds_bucket{le=\"+Inf\"} 1\n\
                           # EOF\n";
        let text = to_prometheus_text(openmetrics);
        assert_eq!(
            text,
            "# HELP pushgate_events_published_total Events published.\n\
             # TYPE pushgate_events_published_total counter\n\
             pushgate_events_published_total 3\n\
             # HELP pushgate_topics Topics held.\n\
             # TYPE pushgate_topics gauge\n\
             pushgate_topics 2\n\
             # HELP pushgate_latency_seconds Latency.\n\
             # TYPE pushgate_latency_seconds histogram\n\
             pushgate_latency_seconds_bucket{le=\"+Inf\"} 1\n"
        );
    }
}
