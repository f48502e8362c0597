//! vdi-crds: the VDISession and VDITemplate API (group `vdi.kasm.io/v1alpha1`), the parsers for
//! its quantities and durations, defaulting, and the single definition of what a session Pod must
//! contain. Pure logic, no I/O: the renderer and the webhook are thin shells around it.

pub mod agent;
pub mod crd_yaml;
pub mod defaults;
pub mod duration;
pub mod error;
pub mod labels;
pub mod names;
pub mod pod;
pub mod quantity;
pub mod session;
pub mod template;
pub mod turn;

pub use defaults::{ResolvedSession, resolve};
pub use duration::Duration;
pub use error::{FieldError, FieldErrors};
pub use quantity::Quantity;
pub use session::{Phase, SessionResources, VDISession, VDISessionSpec, VDISessionStatus};
pub use template::{EnvVar, HomeVolume, TemplateResources, VDITemplate, VDITemplateSpec};

/// API group of both kinds.
pub const GROUP: &str = "vdi.kasm.io";
/// API version of both kinds.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in documents.
pub const API_VERSION: &str = "vdi.kasm.io/v1alpha1";
