//! Prometheus metrics: the registry, the per-request figures the edge
//! records, and `GET /metrics` in the Prometheus text format.
//!
//! Labels are kept low-cardinality: the service (first two path segments,
//! or `other`), the method and the status code.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of one request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `rest`, `auth`, `storage`, `realtime`, `changes`, `health`, `metrics` or `other`.
    pub service: &'static str,
    /// HTTP method.
    pub method: String,
    /// HTTP status code.
    pub status: u16,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    /// As in [`RequestLabels::service`].
    pub service: &'static str,
}

/// Every metric Fluxbase exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Requests by service, method and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency by service.
    pub latency: Family<ServiceLabels, Histogram>,
    /// Connections in the database pool.
    pub db_pool_size: Gauge,
    /// Idle connections in the database pool.
    pub db_pool_available: Gauge,
    /// Requests waiting for a database connection.
    pub db_pool_waiting: Gauge,
    /// 1 while the replication stream is streaming.
    pub replication_streaming: Gauge,
    /// Bytes of WAL the event log is behind the server.
    pub replication_lag_bytes: Gauge,
    /// The event log's durable LSN.
    pub eventlog_durable_lsn: Gauge,
    /// Live fan-out subscriptions.
    pub fanout_subscribers: Gauge,
    /// Changes handed to subscribers.
    pub fanout_delivered: Gauge,
    /// Subscribers cut loose for falling behind.
    pub fanout_cut_loose: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("fluxbase");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<ServiceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        let db_pool_size = Gauge::default();
        let db_pool_available = Gauge::default();
        let db_pool_waiting = Gauge::default();
        let replication_streaming = Gauge::default();
        let replication_lag_bytes = Gauge::default();
        let eventlog_durable_lsn = Gauge::default();
        let fanout_subscribers = Gauge::default();
        let fanout_delivered = Gauge::default();
        let fanout_cut_loose = Gauge::default();
        registry.register("http_requests", "HTTP requests by service, method and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by service", latency.clone());
        registry.register("db_pool_connections", "Connections held by the database pool", db_pool_size.clone());
        registry.register("db_pool_available", "Idle connections in the database pool", db_pool_available.clone());
        registry.register("db_pool_waiting", "Requests waiting for a database connection", db_pool_waiting.clone());
        registry.register("replication_streaming", "1 while the replication stream is streaming", replication_streaming.clone());
        registry.register("replication_lag_bytes", "WAL bytes the event log is behind the server", replication_lag_bytes.clone());
        registry.register("eventlog_durable_lsn", "The event log's durable LSN", eventlog_durable_lsn.clone());
        registry.register("fanout_subscribers", "Live fan-out subscriptions", fanout_subscribers.clone());
        registry.register("fanout_delivered", "Changes handed to subscribers since start", fanout_delivered.clone());
        registry.register("fanout_cut_loose", "Subscribers cut loose for falling behind since start", fanout_cut_loose.clone());
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            db_pool_size,
            db_pool_available,
            db_pool_waiting,
            replication_streaming,
            replication_lag_bytes,
            eventlog_durable_lsn,
            fanout_subscribers,
            fanout_delivered,
            fanout_cut_loose,
        }
    }

    /// Lets a later component add its own metrics.
    pub fn register(&self, f: impl FnOnce(&mut Registry)) {
        if let Ok(mut r) = self.registry.lock() {
            f(&mut r);
        }
    }

    /// Records one finished request.
    pub fn observe(&self, service: &'static str, method: &str, status: u16, seconds: f64) {
        self.requests.get_or_create(&RequestLabels { service, method: method.to_owned(), status }).inc();
        self.latency.get_or_create(&ServiceLabels { service }).observe(seconds);
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        }
        out
    }
}

/// The service label for a path.
pub fn service_of(path: &str) -> &'static str {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "rest" => "rest",
        "auth" => "auth",
        "storage" => "storage",
        "realtime" => "realtime",
        "changes" => "changes",
        "health" => "health",
        "metrics" => "metrics",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_observed_requests() {
        let m = Metrics::new();
        m.observe("rest", "GET", 200, 0.003);
        let text = m.encode();
        assert!(text.contains("fluxbase_http_requests_total{service=\"rest\",method=\"GET\",status=\"200\"} 1"), "{text}");
        assert!(text.contains("fluxbase_http_request_duration_seconds_bucket"), "{text}");
    }

    #[test]
    fn service_labels() {
        assert_eq!(service_of("/rest/v1/x"), "rest");
        assert_eq!(service_of("/"), "other");
        assert_eq!(service_of("/../../etc"), "other");
    }
}
