//! `vdi-status`: keeps `VDISession.status` true from what the cluster shows about each session's
//! Pod. Start at `writer::run`; `derive` is the pure rule from a Pod to a phase, a message and the
//! Ready condition. It needs get/list/watch on Pods and VDISessions and patch on
//! vdisessions/status, nothing more (examples/webhook/status.yaml).

pub mod derive;
pub mod metrics;
pub mod writer;

pub use derive::derive;
pub use metrics::StatusMetrics;
