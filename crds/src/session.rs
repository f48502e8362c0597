//! `VDISession`: one desktop for one user, the document a platform team keeps in git.

// kube's `printcolumn(...)` repeats `type_ = ...` per column, which clippy mistakes for a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Duration, Quantity};

/// Pattern for `spec.user`: one `@`, no spaces, a dot in the domain.
pub const EMAIL_PATTERN: &str = r"^[^@\s]+@[^@\s]+\.[^@\s]+$";

/// A desktop session for one user, started from a VDITemplate.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "vdi.kasm.io",
    version = "v1alpha1",
    kind = "VDISession",
    derive = "PartialEq",
    plural = "vdisessions",
    singular = "vdisession",
    shortname = "vdi",
    category = "vdi",
    namespaced,
    status = "VDISessionStatus",
    doc = "A GPU desktop for one user, streamed to the browser. Rendered by vdi-render into a Pod, Service, PVC and Secret.",
    printcolumn(
        name = "User",
        type_ = "string",
        json_path = ".spec.user",
        description = "Email of the session's user"
    ),
    printcolumn(
        name = "Template",
        type_ = "string",
        json_path = ".spec.template",
        description = "VDITemplate the session runs"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase", description = "Lifecycle phase"),
    printcolumn(
        name = "URL",
        type_ = "string",
        json_path = ".status.url",
        description = "Where the user opens the desktop"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.message",
        description = "Why the session is in its phase (kubectl get -o wide)",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VDISessionSpec {
    /// Email address of the person this desktop belongs to. Immutable.
    #[schemars(regex(pattern = EMAIL_PATTERN))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.user is immutable; create a new session instead"))]
    pub user: String,

    /// Name of the cluster-scoped VDITemplate to start the desktop from. Immutable.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.template is immutable; create a new session instead"))]
    pub template: String,

    /// Compute resources of the desktop; each field defaults from the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<SessionResources>,

    /// How long the desktop may run, as a duration such as 8h, 90m or 1h30m (at most 168h, one
    /// week). Becomes the Pod's activeDeadlineSeconds. Defaults to 8h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) <= duration('168h')").message("spec.timeout must be at most 168h (one week)"))]
    pub timeout: Option<Duration>,
}

/// Resources of one session. Unset fields take the template's defaults.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionResources {
    /// Number of GPUs (`nvidia.com/gpu`); 0 gives a CPU-only desktop. Defaults to the
    /// template's defaultGPU (else 1) and may not exceed the template's maxGPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16))]
    pub gpu: Option<i32>,

    /// Memory limit as a Kubernetes quantity such as 4Gi or 16Gi. Defaults to the template's
    /// defaultMemory (else 4Gi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,

    /// CPU limit as a Kubernetes quantity such as 2 or 1500m. Defaults to the template's
    /// defaultCPU (else 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
}

/// Lifecycle phase of a session.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// Accepted, not yet scheduled.
    Pending,
    /// The Pod is starting.
    Creating,
    /// The desktop is reachable.
    Running,
    /// The session is shutting down.
    Terminating,
    /// The desktop could not start or stopped with an error; see status.message.
    Failed,
}

/// Observed state of a session. Only `vdi-status` writes it (server-side apply to the status
/// subresource, field manager `vdi-status`), from what the cluster shows about the session's Pod.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VDISessionStatus {
    /// Lifecycle phase: Pending, Creating, Running, Terminating or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// URL where the user opens the desktop (set once it is Running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Human-readable detail for the current phase, such as why the session is Pending or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the desktop became Running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// The metadata.generation of the session this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard Kubernetes conditions (at least Ready), keyed by type so that several writers
    /// can each own their own condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
