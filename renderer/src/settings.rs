//! Cluster-wide settings: one YAML file (`--settings`), every field optional with a documented
//! default. Nothing cluster-specific is a constant in code.

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};
use vdi_crds::agent::encoder;

use vdi_documents::{Diagnostic, Kind, Pos, diagnostic::pointer, limits, locate::Locations};

use crate::template::UrlTemplate;

/// All settings. `vdi-render render --help` and the README document them; `examples/settings.yaml`
/// shows every one with its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Settings {
    /// Namespace for sessions that do not name one.
    pub namespace: String,
    /// The cluster's domain, available to `urlTemplate` as `domain`.
    pub domain: String,
    /// minijinja template of the session URL. Variables: `session`, `namespace`, `user`,
    /// `user_slug`, `template`, `domain`. Undefined variables are errors.
    pub url_template: String,
    /// Most sessions in one kustomization folder before a namespace splits into shard folders.
    pub shard_size: usize,
    /// StorageClass of home volumes when the template names none (unset: the cluster default).
    pub storage_class_name: Option<String>,
    /// Image pull secrets added to every session Pod.
    pub image_pull_secrets: Vec<String>,
    /// Settings passed to the agent in every Pod.
    pub agent: AgentSettings,
    /// Per-session Ingress.
    pub ingress: IngressSettings,
    /// Per-session NetworkPolicy.
    pub network_policy: NetworkPolicySettings,
    /// Per-session ServiceAccount.
    pub service_account: ServiceAccountSettings,
    /// Home volumes.
    pub home: HomeSettings,
    /// How GPUs are named and shared in the cluster.
    pub gpu: GpuSettings,
    /// TURN server the agents use.
    pub turn: TurnSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            namespace: "vdi".into(),
            domain: "vdi.example.com".into(),
            url_template: "https://{{ session }}-{{ namespace }}.{{ domain }}".into(),
            shard_size: 40,
            storage_class_name: None,
            image_pull_secrets: Vec::new(),
            agent: AgentSettings::default(),
            ingress: IngressSettings::default(),
            network_policy: NetworkPolicySettings::default(),
            service_account: ServiceAccountSettings::default(),
            home: HomeSettings::default(),
            gpu: GpuSettings::default(),
            turn: TurnSettings::default(),
        }
    }
}

/// Agent settings, written as the agent's environment (Selkies-GStreamer names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AgentSettings {
    /// `SELKIES_ENCODER`: one of `vdi_crds::agent::encoder::CHOICES`.
    pub encoder: String,
    /// `SELKIES_VIDEO_BITRATE` in kbit/s.
    pub video_bitrate: u32,
    /// `SELKIES_FRAMERATE`.
    pub framerate: u32,
    /// `SELKIES_ENABLE_RESIZE`.
    pub enable_resize: bool,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self { encoder: encoder::NVH264.into(), video_bitrate: 8000, framerate: 60, enable_resize: true }
    }
}

/// Per-session Ingress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct IngressSettings {
    /// Render an Ingress for each session (host from `urlTemplate`).
    pub enabled: bool,
    /// `ingressClassName`.
    pub class_name: Option<String>,
    /// Serve the session URLs over TLS (default). Turning it off while `urlTemplate` says
    /// `https://` is refused: passwords would cross the network in clear.
    pub tls: bool,
    /// TLS Secret for the hosts (default `vdi-tls`, for example a wildcard certificate for
    /// `*.domain` in each session namespace). Ignored with `certManagerClusterIssuer`.
    pub tls_secret_name: String,
    /// cert-manager ClusterIssuer: each Ingress gets its own certificate (Secret `S-tls`) from it.
    pub cert_manager_cluster_issuer: Option<String>,
    /// Annotations of every Ingress (defaults keep WebSockets open for an hour on ingress-nginx).
    pub annotations: BTreeMap<String, String>,
}

impl Default for IngressSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            class_name: Some("nginx".into()),
            tls: true,
            tls_secret_name: "vdi-tls".into(),
            cert_manager_cluster_issuer: None,
            annotations: BTreeMap::from([
                ("nginx.ingress.kubernetes.io/proxy-read-timeout".into(), "3600".into()),
                ("nginx.ingress.kubernetes.io/proxy-send-timeout".into(), "3600".into()),
            ]),
        }
    }
}

/// Per-session NetworkPolicy: only the ingress controller reaches the agent's port, and the
/// desktop (which runs its user's code) reaches only DNS, the TURN server and the internet, never
/// cloud metadata, the cluster's own ranges or other Pods, unless listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NetworkPolicySettings {
    /// Render a NetworkPolicy for each session.
    pub enabled: bool,
    /// Namespaces (by name) allowed to reach the agent's port, typically the ingress controller's.
    pub ingress_namespaces: Vec<String>,
    /// Namespaces (by name) allowed to scrape the agent's metrics port (Prometheus').
    pub metrics_namespaces: Vec<String>,
    /// Where a desktop may connect.
    pub egress: EgressSettings,
}

/// Egress of a desktop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EgressSettings {
    /// Limit egress at all (default on).
    pub enabled: bool,
    /// Reach the internet: every address outside `except`.
    pub internet: bool,
    /// Never reached through `internet`: cloud metadata (169.254.0.0/16) and the private ranges
    /// a cluster's Pods and Services live in.
    pub except: Vec<String>,
    /// Reached whatever `except` says: the TURN server's address, a proxy, a file server (CIDRs).
    pub allow: Vec<String>,
}

impl Default for EgressSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            internet: true,
            except: ["169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"]
                .map(String::from)
                .to_vec(),
            allow: Vec::new(),
        }
    }
}

impl Default for NetworkPolicySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            ingress_namespaces: vec!["ingress-nginx".into()],
            metrics_namespaces: vec!["monitoring".into()],
            egress: EgressSettings::default(),
        }
    }
}

/// Per-session ServiceAccount (no API token mounted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ServiceAccountSettings {
    /// Render a ServiceAccount per session instead of using the namespace's default.
    pub create: bool,
}

impl Default for ServiceAccountSettings {
    fn default() -> Self {
        Self { create: true }
    }
}

/// GPUs: the extended resource name (the webhook takes the same value, `--gpu-resource-name`) and
/// how the device plugin shares them (examples/gpu-time-slicing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct GpuSettings {
    /// Resource of one GPU in a Pod's limits: `nvidia.com/gpu`, or `nvidia.com/gpu.shared` when
    /// the device plugin renames time-sliced GPUs (`renameByDefault: true`).
    pub resource_name: String,
    /// The device plugin's time-slicing, when it is on.
    pub time_slicing: Option<TimeSlicing>,
}

impl Default for GpuSettings {
    fn default() -> Self {
        Self { resource_name: vdi_crds::pod::GPU_RESOURCE.into(), time_slicing: None }
    }
}

/// The device plugin's `sharing.timeSlicing` as configured in the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeSlicing {
    /// Desktops that share one physical GPU.
    pub replicas: u32,
    /// With it, a Pod asking for more than one shared GPU fails on its node; the renderer then
    /// refuses sessions and templates that would ask for more than one.
    #[serde(default)]
    pub fail_requests_greater_than_one: bool,
}

/// Home volumes (`S-home`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct HomeSettings {
    /// Delete a session's home volume when the session leaves git. Off by default: the volume
    /// is marked so Argo CD (`Prune=false,Delete=false`) and Flux (`prune: disabled`) keep it,
    /// and the user's files survive a mistaken commit; delete it with kubectl when meant.
    pub delete_with_session: bool,
}

/// TURN server for the agents (`SELKIES_TURN_*`). The shared secret is never in a session's
/// namespace: vdi-webhook holds it and writes each session its own credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TurnSettings {
    /// TURN host; unset: no TURN settings are rendered.
    pub host: Option<String>,
    /// TURN port.
    pub port: u16,
    /// `udp` or `tcp`.
    pub protocol: String,
    /// TURN over TLS.
    pub tls: bool,
}

impl Default for TurnSettings {
    fn default() -> Self {
        Self { host: None, port: 3478, protocol: "udp".into(), tls: false }
    }
}

impl Settings {
    /// Reads and checks a settings file; every problem is a diagnostic naming the file.
    pub fn load(path: &Path) -> Result<Self, Vec<Diagnostic>> {
        let diag = |pos: Option<Pos>, field: Option<String>, message: String| {
            Diagnostic::new(Kind::Invalid, path, message).at(pos).object(Some("settings".into())).field(field)
        };
        let text = std::fs::read_to_string(path).map_err(|e| vec![diag(None, None, format!("cannot read: {e}"))])?;
        if let Err((line, why)) = limits::check_depth(&text) {
            return Err(vec![diag(Some(Pos { line, col: 1 }), None, why)]);
        }
        let settings: Settings = if text.trim().is_empty() {
            Settings::default()
        } else {
            serde_saphyr::from_str_with_options(&text, vdi_documents::yaml_options()).map_err(|e| {
                let pos = e.location().map(|l| Pos { line: l.line() as usize, col: l.column() as usize });
                vec![diag(pos, None, e.to_string())]
            })?
        };
        let errs = settings.check();
        if errs.is_empty() {
            return Ok(settings);
        }
        let loc = Locations::index(&text);
        Err(errs.into_iter().map(|(field, msg)| diag(loc.find(0, &pointer(&field)), Some(field), msg)).collect())
    }

    /// Problems as `(field, message)`.
    pub fn check(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        if let Err(e) = vdi_crds::names::check_dns_label(&self.namespace, 63) {
            errs.push(("namespace".into(), e));
        }
        if self.shard_size == 0 {
            errs.push(("shardSize".into(), "must be at least 1".into()));
        }
        if let Err(e) = UrlTemplate::new(&self.url_template, &self.domain) {
            errs.push(("urlTemplate".into(), e));
        }
        if !encoder::CHOICES.contains(&self.agent.encoder.as_str()) {
            errs.push((
                "agent.encoder".into(),
                format!("`{}` is not an encoder the agent knows ({})", self.agent.encoder, encoder::CHOICES.join(", ")),
            ));
        }
        if !self.ingress.tls && self.ingress.enabled && self.url_template.trim_start().starts_with("https://") {
            errs.push((
                "ingress.tls".into(),
                "is false but urlTemplate says https://: the desktop's password would cross the network in clear. Keep TLS on, or use http:// in urlTemplate when TLS ends before the Ingress".into(),
            ));
        }
        if let Err(e) = check_resource_name(&self.gpu.resource_name) {
            errs.push(("gpu.resourceName".into(), e));
        }
        if self.gpu.time_slicing.as_ref().is_some_and(|t| t.replicas == 0) {
            errs.push(("gpu.timeSlicing.replicas".into(), "must be at least 1".into()));
        }
        if !matches!(self.turn.protocol.as_str(), "udp" | "tcp") {
            errs.push(("turn.protocol".into(), format!("`{}` must be udp or tcp", self.turn.protocol)));
        }
        errs
    }
}

/// An extended resource name: `domain/name`, a DNS subdomain prefix and a name of letters, digits,
/// `-`, `_` and `.`.
fn check_resource_name(name: &str) -> Result<(), String> {
    let ok = name.split_once('/').is_some_and(|(domain, rest)| {
        !domain.is_empty()
            && domain.split('.').all(|l| vdi_crds::names::check_dns_label(l, 63).is_ok())
            && !rest.is_empty()
            && rest.len() <= 63
            && rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    });
    if ok { Ok(()) } else { Err(format!("`{name}` is not an extended resource name such as nvidia.com/gpu")) }
}
