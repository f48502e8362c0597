//! `VDITemplate`: a cluster-wide desktop image with its default and maximum resources.

// kube's `printcolumn(...)` repeats `type_ = ...` per column, which clippy mistakes for a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Quantity;

/// A desktop image and the defaults and bounds of the sessions started from it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "vdi.kasm.io",
    version = "v1alpha1",
    kind = "VDITemplate",
    derive = "PartialEq",
    plural = "vditemplates",
    singular = "vditemplate",
    shortname = "vdit",
    category = "vdi",
    doc = "A desktop image with default and maximum resources. Cluster-scoped; VDISessions name it in spec.template.",
    printcolumn(
        name = "Image",
        type_ = "string",
        json_path = ".spec.image",
        description = "Container image of the desktop"
    ),
    printcolumn(name = "Display Name", type_ = "string", json_path = ".spec.displayName"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VDITemplateSpec {
    /// Container image of the desktop, with the vdi-agent in it, for example
    /// `ghcr.io/example/desktop:1.4.2`.
    #[schemars(length(min = 1))]
    pub image: String,

    /// Name shown to people choosing a desktop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,

    /// What the desktop is for and what it contains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,

    /// Default resources of sessions and the most GPUs a session may ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<TemplateResources>,

    /// Environment variables set in the desktop container. Session values such as the password,
    /// DISPLAY and PULSE_SERVER are injected and cannot be overridden here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,

    /// The user's persistent home volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<HomeVolume>,
}

/// Default resources of sessions started from a template.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!has(self.defaultGPU) || !has(self.maxGPU) || self.defaultGPU <= self.maxGPU").message("resources.defaultGPU must not exceed resources.maxGPU"))]
pub struct TemplateResources {
    /// GPUs a session gets when it does not ask (default 1; 0 for CPU-only desktops).
    #[serde(default, rename = "defaultGPU", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16))]
    pub default_gpu: Option<i32>,

    /// The most GPUs a session may ask for (unset: 16, the schema's bound).
    #[serde(default, rename = "maxGPU", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16))]
    pub max_gpu: Option<i32>,

    /// Memory a session gets when it does not ask (default 4Gi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_memory: Option<Quantity>,

    /// The most memory a session may ask for (unset: no bound beyond the cluster's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<Quantity>,

    /// CPU a session gets when it does not ask (default 2).
    #[serde(default, rename = "defaultCPU", skip_serializing_if = "Option::is_none")]
    pub default_cpu: Option<Quantity>,
}

/// One environment variable of the desktop container.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// Variable name, a C identifier.
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub name: String,
    /// Literal value.
    #[serde(default)]
    pub value: String,
}

/// The persistent home directory of each session.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HomeVolume {
    /// Size of the home volume (default 10Gi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// StorageClass of the home volume (default: the settings' storageClassName, else the
    /// cluster default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Where the home volume is mounted in the desktop (default /home/user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/.*"))]
    pub mount_path: Option<String>,
}
