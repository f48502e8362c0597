//! The status writer's Prometheus metrics. Labels come from a fixed set (the five phases), never
//! from what the cluster holds.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use vdi_crds::Phase;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: &'static str,
}

/// Counters of the status writer.
pub struct StatusMetrics {
    registry: Registry,
    patches: Family<PhaseLabel, Counter>,
    /// Status patches the API server refused or that failed on the way.
    pub errors: Counter,
}

impl Default for StatusMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl StatusMetrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let patches = Family::<PhaseLabel, Counter>::default();
        let errors = Counter::default();
        registry.register("vdi_status_patches", "Status patches written, by the phase they wrote", patches.clone());
        registry.register("vdi_status_patch_errors", "Status patches that failed (retried)", errors.clone());
        Self { registry, patches, errors }
    }

    /// Counts one written patch.
    pub fn patched(&self, phase: Option<Phase>) {
        let phase = match phase {
            Some(Phase::Pending) => "Pending",
            Some(Phase::Creating) => "Creating",
            Some(Phase::Running) => "Running",
            Some(Phase::Terminating) => "Terminating",
            Some(Phase::Failed) => "Failed",
            None => "none",
        };
        self.patches.get_or_create(&PhaseLabel { phase }).inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
