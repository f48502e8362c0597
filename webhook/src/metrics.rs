//! Prometheus metrics: admission requests by kind, operation and result, their latency, and the
//! expiry time of the serving certificate.

use std::{borrow::Cow, sync::atomic::AtomicI64};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of one admission request (borrowed where they come from a fixed set, so counting a
/// request allocates nothing).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `mutate` or `validate`.
    pub endpoint: &'static str,
    /// Object kind: `Pod`, `Secret`, `VDISession`, `other` or `invalid` (a fixed set).
    pub kind: Cow<'static, str>,
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT` or `none`.
    pub operation: &'static str,
    /// `allowed`, `patched`, `denied` or `error`.
    pub result: &'static str,
}

/// All metrics of the server.
pub struct Metrics {
    registry: Registry,
    /// Requests by labels.
    pub requests: Family<RequestLabels, Counter>,
    /// Handling time in seconds.
    pub latency: Histogram,
    /// Unix time at which the serving certificate expires.
    pub cert_expiry: Gauge<i64, AtomicI64>,
    /// Certificate reloads, by outcome.
    pub cert_reloads: Family<Vec<(String, String)>, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A new registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vdi_webhook");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Histogram::new([0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1]);
        let cert_expiry = Gauge::<i64, AtomicI64>::default();
        let cert_reloads = Family::<Vec<(String, String)>, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission requests by endpoint, kind, operation and result",
            requests.clone(),
        );
        registry.register("admission_duration_seconds", "Time to answer an admission request", latency.clone());
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "Unix time when the serving certificate expires",
            cert_expiry.clone(),
        );
        registry.register("certificate_reloads", "Serving certificate reloads by result", cert_reloads.clone());
        Self { registry, requests, latency, cert_expiry, cert_reloads }
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
