//! What a running gazette counts, in Prometheus's text format: issues by status, the ledger's
//! deliveries by issue status and state, subscribers by status (all three counted from the
//! store, so the whole publication's, whichever process did the work), and what this process
//! alone did: the deliveries it recorded by outcome, the time its SMTP exchanges took, and web
//! requests by route. Code anywhere records through the functions here (cheap no-ops until a
//! recorder is installed); the web server installs the recorder once and serves `render()` at
//! `/metrics`. No label ever holds an address, a name or a token: only fixed words, route
//! patterns and status codes.

use std::{collections::BTreeMap, sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::domain::{DeliveryState, IssueStatus};

/// Deliveries this process recorded in the ledger, by `outcome` (sent, deferred, failed,
/// released).
pub const DELIVERIES: &str = "gazette_deliveries_total";
/// The ledger's deliveries by `issue_status` and `state`, counted from the store: every
/// process's, refreshed with the subscribers.
pub const LEDGER: &str = "gazette_ledger_deliveries";
/// One SMTP exchange (MAIL, RCPT, DATA) on an open connection, by `result` (ok, error).
pub const SMTP_SECONDS: &str = "gazette_smtp_send_seconds";
/// Subscribers by `status`, refreshed from the store at most every 30 seconds.
/// Throttling replies (421, 454, 4.7.x) by domain group: a `[[shaping]]` group's first domain, or
/// `other`.
pub const THROTTLED: &str = "gazette_throttled_total";
/// Each domain group's current limit on messages in flight, lowered by throttling replies.
pub const LANE_LIMIT: &str = "gazette_lane_limit";
pub const SUBSCRIBERS: &str = "gazette_subscribers";
/// Issues by `status` (sending, sent, cancelled), refreshed with the subscribers.
pub const ISSUES: &str = "gazette_issues";
/// Bounces and complaints recorded, by `kind` (hard, soft, complaint), counted from the store
/// with the subscribers.
pub const BOUNCES: &str = "gazette_bounces";
/// Reports this process read (mail or webhook), by `outcome`: applied, seen (read before),
/// not_a_bounce, test_copy, forged, unmatched.
pub const BOUNCE_REPORTS: &str = "gazette_bounce_reports_total";
/// Web requests by `route` (the pattern, not the path), `method` and `status`.
pub const HTTP_REQUESTS: &str = "gazette_http_requests_total";
/// Time to answer a web request, by `route`.
pub const HTTP_SECONDS: &str = "gazette_http_request_duration_seconds";
/// Providers' webhook requests, by `provider` and `outcome` (accepted, unverified, malformed,
/// failed).
pub const WEBHOOK_REQUESTS: &str = "gazette_webhook_requests_total";
/// The bounce and complaint events in accepted webhook requests, by `provider` and `outcome`
/// (applied, seen, test_copy, forged, unmatched, ignored).
pub const WEBHOOK_EVENTS: &str = "gazette_webhook_events_total";

/// Messages this process handed to each relay (`relay`: its `host:port`), by `result`:
/// accepted, deferred (4xx), throttled (421, 454, 4.7.x), refused (5xx, or unsendable there), broken (the exchange broke off).
pub const RELAY_MESSAGES: &str = "gazette_relay_messages_total";
/// Whether this process uses each relay (1) or has set it aside (0), by `relay` (`host:port`).
pub const RELAY_UP: &str = "gazette_relay_up";
/// Each relay's current limit on messages in flight from this process, halved by its throttling
/// replies and climbing back with its successes, by `relay` (`host:port`).
pub const RELAY_LIMIT: &str = "gazette_relay_limit";
/// Whether a relay rests after a throttling reply (1) or takes messages (0), by `relay`.
pub const RELAY_RESTING: &str = "gazette_relay_resting";

const OUTCOMES: &[&str] = &["sent", "deferred", "failed", "released"];
const SMTP_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
const HTTP_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Histograms keep their samples in buckets that only upkeep folds away.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder on the first call and hands back its handle; later calls
/// return the same one. `None` when another recorder was installed first (metrics then go to
/// that one and `/metrics` has nothing to show).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(SMTP_SECONDS.to_owned()), SMTP_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(HTTP_SECONDS.to_owned()), HTTP_BUCKETS))
                .and_then(PrometheusBuilder::install_recorder);
            let handle = match installed {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!("metrics are off: {e}");
                    return None;
                }
            };
            describe();
            spawn_upkeep(handle.clone());
            Some(handle)
        })
        .as_ref()
}

/// Everything recorded so far, in Prometheus's text format; empty without a recorder.
pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}

fn describe() {
    ::metrics::describe_counter!(DELIVERIES, "Deliveries this process recorded in the ledger, by outcome.");
    ::metrics::describe_gauge!(LEDGER, "Deliveries in the ledger, every process's, by issue status and state.");
    ::metrics::describe_histogram!(
        SMTP_SECONDS,
        ::metrics::Unit::Seconds,
        "One SMTP exchange (MAIL, RCPT, DATA) on an open connection."
    );
    ::metrics::describe_counter!(THROTTLED, "Throttling replies from mail servers, by domain group.");
    ::metrics::describe_gauge!(LANE_LIMIT, "Messages in flight allowed to a domain group now, by group.");
    ::metrics::describe_gauge!(SUBSCRIBERS, "Subscribers by status.");
    ::metrics::describe_gauge!(ISSUES, "Issues by status.");
    ::metrics::describe_gauge!(BOUNCES, "Bounces and complaints recorded, every process's, by kind.");
    ::metrics::describe_counter!(BOUNCE_REPORTS, "Bounce and complaint reports this process read, by outcome.");
    ::metrics::describe_counter!(HTTP_REQUESTS, "Web requests by route pattern, method and status.");
    ::metrics::describe_histogram!(HTTP_SECONDS, ::metrics::Unit::Seconds, "Time to answer a web request.");
    ::metrics::describe_counter!(WEBHOOK_REQUESTS, "Providers' webhook requests, by provider and outcome.");
    ::metrics::describe_counter!(WEBHOOK_EVENTS, "Bounce and complaint events from webhooks, by provider and outcome.");
    ::metrics::describe_counter!(RELAY_MESSAGES, "Messages this process handed to each relay, by result.");
    ::metrics::describe_gauge!(RELAY_UP, "Whether this process uses each relay (1) or has set it aside (0).");
    ::metrics::describe_gauge!(RELAY_LIMIT, "Messages in flight this process allows each relay now, by relay.");
    ::metrics::describe_gauge!(RELAY_RESTING, "Whether a relay rests after a throttling reply (1) or not (0).");
    // Every outcome shows from the start, at zero, so a rate over it is defined.
    for outcome in OUTCOMES {
        ::metrics::counter!(DELIVERIES, "outcome" => *outcome).increment(0);
    }
}

/// Upkeep on a thread of its own: it is a few microseconds of work every few seconds, and a
/// thread outlives any one runtime (tests start many).
fn spawn_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        }
    });
    if let Err(e) = started {
        tracing::warn!("metrics upkeep did not start ({e}); histograms grow until the next scrape");
    }
}

/// A delivery's outcome, once the ledger has it.
pub fn delivery(outcome: &'static str) {
    ::metrics::counter!(DELIVERIES, "outcome" => outcome).increment(1);
}

/// One SMTP exchange and whether the server took the message.
pub fn smtp_send(elapsed: Duration, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    ::metrics::histogram!(SMTP_SECONDS, "result" => result).record(elapsed.as_secs_f64());
}

/// One message a relay took or did not; `relay` is its `host:port`, never its URL.
pub fn relay_message(relay: &str, result: &'static str) {
    ::metrics::counter!(RELAY_MESSAGES, "relay" => relay.to_owned(), "result" => result).increment(1);
}

/// Whether a relay is in use or set aside; `relay` is its `host:port`, never its URL.
pub fn relay_up(relay: &str, up: bool) {
    ::metrics::gauge!(RELAY_UP, "relay" => relay.to_owned()).set(if up { 1.0 } else { 0.0 });
}

/// A relay's limit on messages in flight now; `relay` is its `host:port`, never its URL.
pub fn relay_limit(relay: &str, limit: usize) {
    ::metrics::gauge!(RELAY_LIMIT, "relay" => relay.to_owned()).set(limit as f64);
}

/// Whether a relay rests after a throttling reply; `relay` is its `host:port`, never its URL.
pub fn relay_resting(relay: &str, resting: bool) {
    ::metrics::gauge!(RELAY_RESTING, "relay" => relay.to_owned()).set(if resting { 1.0 } else { 0.0 });
}

/// Subscribers by status, as the store counts them.
pub fn throttled(group: &str) {
    ::metrics::counter!(THROTTLED, "group" => group.to_owned()).increment(1);
}

pub fn lane_limit(group: &str, limit: usize) {
    ::metrics::gauge!(LANE_LIMIT, "group" => group.to_owned()).set(limit as f64);
}

pub fn subscribers(counts: &BTreeMap<String, u64>) {
    for (status, n) in counts {
        ::metrics::gauge!(SUBSCRIBERS, "status" => status.clone()).set(*n as f64);
    }
}

/// Issues by status, as the store counts them.
pub fn issues(counts: &BTreeMap<String, u64>) {
    for (status, n) in counts {
        ::metrics::gauge!(ISSUES, "status" => status.clone()).set(*n as f64);
    }
}

/// The ledger's deliveries by issue status and state, as the store counts them.
pub fn ledger(counts: impl IntoIterator<Item = (IssueStatus, DeliveryState, u64)>) {
    for (issue, state, n) in counts {
        ::metrics::gauge!(LEDGER, "issue_status" => issue.as_str(), "state" => state.as_str()).set(n as f64);
    }
}

/// One web request: `route` is the pattern that matched (`/archive/{number}`), never the path.
/// Records how many reports of each kind the store holds.
pub fn bounces(counts: &BTreeMap<String, u64>) {
    for (kind, n) in counts {
        ::metrics::gauge!(BOUNCES, "kind" => kind.clone()).set(*n as f64);
    }
}

/// Counts one report read, by what became of it.
pub fn bounce_report(outcome: &'static str) {
    ::metrics::counter!(BOUNCE_REPORTS, "outcome" => outcome).increment(1);
}

pub fn http_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    ::metrics::counter!(
        HTTP_REQUESTS,
        "route" => route.to_owned(),
        "method" => method.to_owned(),
        "status" => status.to_string()
    )
    .increment(1);
    ::metrics::histogram!(HTTP_SECONDS, "route" => route.to_owned()).record(elapsed.as_secs_f64());
}

/// One webhook request of `provider` and what became of it; both are fixed words.
pub fn webhook_request(provider: &'static str, outcome: &'static str) {
    ::metrics::counter!(WEBHOOK_REQUESTS, "provider" => provider, "outcome" => outcome).increment(1);
}

/// One event of an accepted webhook request and what became of it; both are fixed words.
pub fn webhook_event(provider: &'static str, outcome: &'static str) {
    ::metrics::counter!(WEBHOOK_EVENTS, "provider" => provider, "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_recorded_with_fixed_labels() {
        assert!(install().is_some());
        delivery("sent");
        smtp_send(Duration::from_millis(12), true);
        subscribers(&BTreeMap::from([("active".to_owned(), 3)]));
        ledger([(IssueStatus::Sending, DeliveryState::Sent, 7), (IssueStatus::Sent, DeliveryState::Failed, 0)]);
        http_request("/archive/{number}", "GET", 200, Duration::from_millis(2));
        relay_message("smtp1.example.org:465", "accepted");
        relay_up("smtp1.example.org:465", false);
        relay_limit("smtp1.example.org:465", 7);
        relay_resting("smtp1.example.org:465", true);
        let text = render();
        assert!(text.contains("gazette_relay_limit{relay=\"smtp1.example.org:465\"} 7"), "{text}");
        assert!(text.contains("gazette_relay_resting{relay=\"smtp1.example.org:465\"} 1"), "{text}");
        assert!(
            text.contains("gazette_relay_messages_total{relay=\"smtp1.example.org:465\",result=\"accepted\"} 1"),
            "{text}"
        );
        assert!(text.contains("gazette_relay_up{relay=\"smtp1.example.org:465\"} 0"), "{text}");
        assert!(text.contains("gazette_deliveries_total{outcome=\"sent\"}"), "{text}");
        assert!(text.contains("gazette_deliveries_total{outcome=\"failed\"} 0"), "{text}");
        assert!(text.contains("gazette_subscribers{status=\"active\"} 3"), "{text}");
        assert!(text.contains("gazette_ledger_deliveries{issue_status=\"sending\",state=\"sent\"} 7"), "{text}");
        assert!(text.contains("gazette_ledger_deliveries{issue_status=\"sent\",state=\"failed\"} 0"), "{text}");
        assert!(text.contains("gazette_smtp_send_seconds_bucket{result=\"ok\",le=\"0.025\"}"), "{text}");
        assert!(text.contains("route=\"/archive/{number}\""), "{text}");
    }
}
