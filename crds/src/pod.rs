//! What a session Pod must contain, in one place: `/dev/shm` in memory, `/dev/dri` and the
//! GPU limit when the session has GPUs, the password and the session's TURN pair from the session
//! Secret, and the display and audio environment. The renderer calls [`ensure`] on the Pods it builds; the
//! webhook calls it at admission and answers with the difference, so a rendered Pod passes
//! admission with an empty patch. [`check`] is the matching safety validation.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, HostPathVolumeSource, Pod, SecretKeySelector, Volume,
        VolumeMount,
    },
    apimachinery::pkg::api::resource::Quantity,
};

use crate::{FieldErrors, agent, labels, names, turn};

/// Size of the in-memory `/dev/shm` (browsers and GPU drivers need more than the 64 MiB default).
pub const SHM_SIZE: &str = "2Gi";
/// Volume name of `/dev/shm`.
pub const SHM_VOLUME: &str = "dshm";
/// Mount path of the shared-memory volume.
pub const SHM_PATH: &str = "/dev/shm";
/// Volume name of `/dev/dri`.
pub const DRI_VOLUME: &str = "dri";
/// The only host path a session Pod may mount: the GPU's render nodes.
pub const DRI_PATH: &str = "/dev/dri";
/// Extended resource of NVIDIA GPUs, the default of the `gpu.resourceName` setting
/// (`nvidia.com/gpu.shared` when the device plugin renames time-sliced GPUs).
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";
/// Name of the desktop container (the agent runs in it).
pub const DESKTOP_CONTAINER: &str = "desktop";
/// Port of the agent: web client, signalling WebSocket and health.
pub const AGENT_PORT: i32 = agent::PORT as i32;
/// Port of the agent's Prometheus metrics (kept apart from the page, never behind the Ingress).
pub const METRICS_PORT: i32 = agent::METRICS_PORT as i32;
/// Key of the password in the session Secret.
pub const PASSWORD_KEY: &str = "password";
/// Environment variable the agent reads its password from (Selkies-GStreamer's name).
pub const PASSWORD_ENV: &str = agent::env::BASIC_AUTH_PASSWORD;
pub use agent::{DISPLAY, PULSE_SERVER};
/// Driver capabilities the NVIDIA container toolkit must mount; `video` brings NVENC.
pub const NVIDIA_CAPABILITIES: &str = "compute,utility,graphics,video,display";
/// Capabilities a session container may add: the desktop and the agent need none.
pub const ALLOWED_CAPABILITIES: &[&str] = &[];

/// What admission needs to know to complete a session Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNeeds {
    /// Session name (names the Secret).
    pub session: String,
    /// GPUs granted to the session.
    pub gpu: u32,
    /// Extended resource name of a GPU in this cluster (setting `gpu.resourceName`).
    pub gpu_resource: String,
}

impl PodNeeds {
    /// Reads the needs from a session Pod's labels and the GPU annotation the renderer writes.
    /// A Pod without the annotation keeps a GPU limit it already has, else gets
    /// `template_default` (the default GPU count of the template it names; 0 when it names
    /// none): a CPU session is never given a GPU it did not ask for. `None` when the Pod is not a
    /// session Pod. `gpu_resource` is the cluster's GPU resource.
    pub fn from_pod(pod: &Pod, gpu_resource: &str, template_default: u32) -> Option<Result<Self, String>> {
        let session = pod.metadata.labels.as_ref()?.get(labels::SESSION)?.clone();
        let annotated = pod.metadata.annotations.as_ref().and_then(|a| a.get(labels::GPU_ANNOTATION));
        let gpu = match annotated {
            Some(v) => match v.parse::<u32>() {
                Ok(g) => g,
                Err(_) => {
                    return Some(Err(format!(
                        "annotation {} must be a whole number of GPUs, got `{v}`",
                        labels::GPU_ANNOTATION
                    )));
                }
            },
            None => existing_gpu_limit(pod, gpu_resource).unwrap_or(template_default),
        };
        Some(Ok(Self { session, gpu, gpu_resource: gpu_resource.to_owned() }))
    }
}

fn existing_gpu_limit(pod: &Pod, gpu_resource: &str) -> Option<u32> {
    let spec = pod.spec.as_ref()?;
    spec.containers.iter().find_map(|c| {
        let q = c.resources.as_ref()?.limits.as_ref()?.get(gpu_resource)?;
        q.0.parse().ok()
    })
}

/// Index of the desktop container: the one named `desktop`, else the first.
fn desktop_index(containers: &[Container]) -> Option<usize> {
    containers.iter().position(|c| c.name == DESKTOP_CONTAINER).or(if containers.is_empty() { None } else { Some(0) })
}

/// Adds what a session Pod must contain and is missing. Never removes or replaces what is there,
/// so a second call changes nothing. Returns whether anything was added, so admission can answer
/// a complete Pod without keeping a copy to diff against.
pub fn ensure(pod: &mut Pod, needs: &PodNeeds) -> bool {
    let Some(spec) = pod.spec.as_mut() else {
        return false; // A Pod without a spec is invalid; the API server rejects it with a better message.
    };
    let Some(idx) = desktop_index(&spec.containers) else {
        return false; // Likewise a Pod without containers.
    };
    let mut changed = false;
    let has_volume = |vols: &Option<Vec<Volume>>, name: &str| vols.iter().flatten().any(|v| v.name == name);
    let mounts_path = |c: &Container, path: &str| c.volume_mounts.iter().flatten().any(|m| m.mount_path == path);

    if !mounts_path(&spec.containers[idx], SHM_PATH) {
        changed = true;
        if !has_volume(&spec.volumes, SHM_VOLUME) {
            spec.volumes.get_or_insert_with(Vec::new).push(Volume {
                name: SHM_VOLUME.into(),
                empty_dir: Some(EmptyDirVolumeSource {
                    medium: Some("Memory".into()),
                    size_limit: Some(Quantity(SHM_SIZE.into())),
                }),
                ..Default::default()
            });
        }
        push_mount(&mut spec.containers[idx], SHM_VOLUME, SHM_PATH);
    }

    if needs.gpu > 0 {
        if !mounts_path(&spec.containers[idx], DRI_PATH) {
            changed = true;
            if !has_volume(&spec.volumes, DRI_VOLUME) {
                spec.volumes.get_or_insert_with(Vec::new).push(Volume {
                    name: DRI_VOLUME.into(),
                    host_path: Some(HostPathVolumeSource { path: DRI_PATH.into(), type_: Some("Directory".into()) }),
                    ..Default::default()
                });
            }
            push_mount(&mut spec.containers[idx], DRI_VOLUME, DRI_PATH);
        }
        let limits = spec.containers[idx]
            .resources
            .get_or_insert_with(Default::default)
            .limits
            .get_or_insert_with(BTreeMap::new);
        if !limits.contains_key(&needs.gpu_resource) {
            changed = true;
            limits.insert(needs.gpu_resource.clone(), Quantity(needs.gpu.to_string()));
        }
    }

    let c = &mut spec.containers[idx];
    let from_secret = |env: &str, key: &str, optional: bool| EnvVar {
        name: env.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: names::auth_secret(&needs.session),
                key: key.into(),
                optional: Some(optional),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    changed |= ensure_env(c, PASSWORD_ENV, || from_secret(PASSWORD_ENV, PASSWORD_KEY, false));
    // The session's own TURN pair, minted by the webhook (which alone holds the TURN shared
    // secret) when the platform has a TURN server: optional, as a platform without one has none.
    changed |= ensure_env(c, turn::USERNAME_ENV, || from_secret(turn::USERNAME_ENV, turn::USERNAME_KEY, true));
    changed |= ensure_env(c, turn::PASSWORD_ENV, || from_secret(turn::PASSWORD_ENV, turn::PASSWORD_KEY, true));
    changed |= ensure_env(c, agent::env::DISPLAY, || literal(agent::env::DISPLAY, DISPLAY));
    changed |= ensure_env(c, agent::env::PULSE_SERVER, || literal(agent::env::PULSE_SERVER, PULSE_SERVER));
    if needs.gpu > 0 {
        changed |=
            ensure_env(c, "NVIDIA_DRIVER_CAPABILITIES", || literal("NVIDIA_DRIVER_CAPABILITIES", NVIDIA_CAPABILITIES));
    }
    changed
}

fn literal(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() }
}

fn push_mount(c: &mut Container, volume: &str, path: &str) {
    c.volume_mounts.get_or_insert_with(Vec::new).push(VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        ..Default::default()
    });
}

/// Adds the variable unless the container has one of that name; true when added.
fn ensure_env(c: &mut Container, name: &str, make: impl FnOnce() -> EnvVar) -> bool {
    let env = c.env.get_or_insert_with(Vec::new);
    if env.iter().any(|e| e.name == name) {
        return false;
    }
    env.push(make());
    true
}

/// Sysctls the Kubernetes "baseline" Pod Security level allows (namespaced, harmless).
pub const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// A container of any of the Pod's three lists, with where it is.
struct AnyContainer<'a> {
    at: String,
    name: &'a str,
    security: Option<&'a k8s_openapi::api::core::v1::SecurityContext>,
    ports: Vec<(usize, Option<i32>)>,
    env: &'a [EnvVar],
}

fn containers(spec: &k8s_openapi::api::core::v1::PodSpec) -> Vec<AnyContainer<'_>> {
    fn plain<'a>(list: &str, cs: &'a [Container]) -> Vec<AnyContainer<'a>> {
        cs.iter()
            .enumerate()
            .map(|(i, c)| AnyContainer {
                at: format!("spec.{list}[{i}]"),
                name: &c.name,
                security: c.security_context.as_ref(),
                ports: c.ports.iter().flatten().enumerate().map(|(j, p)| (j, p.host_port)).collect(),
                env: c.env.as_deref().unwrap_or_default(),
            })
            .collect()
    }
    let mut all = plain("containers", &spec.containers);
    all.extend(plain("initContainers", spec.init_containers.as_deref().unwrap_or_default()));
    // `kubectl debug` adds these to a running Pod through pods/ephemeralcontainers.
    all.extend(spec.ephemeral_containers.iter().flatten().enumerate().map(|(i, c)| AnyContainer {
        at: format!("spec.ephemeralContainers[{i}]"),
        name: &c.name,
        security: c.security_context.as_ref(),
        ports: c.ports.iter().flatten().enumerate().map(|(j, p)| (j, p.host_port)).collect(),
        env: c.env.as_deref().unwrap_or_default(),
    }));
    all
}

/// Rejects what makes a Pod in a session namespace unsafe, the rules of the Kubernetes
/// "baseline" Pod Security level that the namespace cannot enforce itself (a GPU desktop needs
/// the `/dev/dri` host path, which baseline forbids), and a little more: privileged containers,
/// host namespaces and ports, added capabilities, host paths other than `/dev/dri`, an unconfined
/// seccomp profile, an unmasked `/proc`, unsafe sysctls, privilege escalation, running as root,
/// and the password as a literal value. Ephemeral and init containers count like the others.
pub fn check(pod: &Pod) -> FieldErrors {
    let mut errs = FieldErrors::default();
    let Some(spec) = &pod.spec else { return errs };
    for (flag, field) in [(spec.host_network, "hostNetwork"), (spec.host_pid, "hostPID"), (spec.host_ipc, "hostIPC")] {
        if flag == Some(true) {
            errs.push(
                format!("spec.{field}"),
                format!("a Pod here must not share the host's namespaces ({field}: true)"),
            );
        }
    }
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        if let Some(hp) = &v.host_path
            && hp.path.trim_end_matches('/') != DRI_PATH
        {
            errs.push(
                format!("spec.volumes[{i}].hostPath.path"),
                format!("volume `{}` mounts host path {}; a Pod here may mount only {DRI_PATH}", v.name, hp.path),
            );
        }
    }
    if let Some(sc) = &spec.security_context {
        if sc.seccomp_profile.as_ref().is_some_and(|p| p.type_ == "Unconfined") {
            errs.push("spec.securityContext.seccompProfile.type", "seccomp must not be Unconfined");
        }
        if sc.run_as_user == Some(0) {
            errs.push("spec.securityContext.runAsUser", "a Pod here must not run as root (runAsUser: 0)");
        }
        for (j, sysctl) in sc.sysctls.iter().flatten().enumerate() {
            if !SAFE_SYSCTLS.contains(&sysctl.name.as_str()) {
                errs.push(
                    format!("spec.securityContext.sysctls[{j}].name"),
                    format!("sysctl {} is not a safe one", sysctl.name),
                );
            }
        }
    }
    for c in containers(spec) {
        let at = &c.at;
        if let Some(sc) = c.security {
            if sc.privileged == Some(true) {
                errs.push(
                    format!("{at}.securityContext.privileged"),
                    format!("container `{}` must not be privileged", c.name),
                );
            }
            if sc.allow_privilege_escalation == Some(true) {
                errs.push(
                    format!("{at}.securityContext.allowPrivilegeEscalation"),
                    format!("container `{}` must not allow privilege escalation", c.name),
                );
            }
            if sc.run_as_user == Some(0) {
                errs.push(
                    format!("{at}.securityContext.runAsUser"),
                    format!("container `{}` must not run as root", c.name),
                );
            }
            if sc.seccomp_profile.as_ref().is_some_and(|p| p.type_ == "Unconfined") {
                errs.push(
                    format!("{at}.securityContext.seccompProfile.type"),
                    format!("container `{}`: seccomp must not be Unconfined", c.name),
                );
            }
            if sc.proc_mount.as_deref().is_some_and(|m| m != "Default") {
                errs.push(
                    format!("{at}.securityContext.procMount"),
                    format!("container `{}` must not unmask /proc", c.name),
                );
            }
            for cap in sc.capabilities.iter().flat_map(|caps| caps.add.iter().flatten()) {
                let bare = cap.trim_start_matches("CAP_");
                if !ALLOWED_CAPABILITIES.contains(&bare) {
                    errs.push(
                        format!("{at}.securityContext.capabilities.add"),
                        format!("container `{}` adds capability {cap}; the desktop needs none", c.name),
                    );
                }
            }
        }
        for (j, host_port) in &c.ports {
            if host_port.is_some_and(|p| p != 0) {
                errs.push(
                    format!("{at}.ports[{j}].hostPort"),
                    format!("container `{}` must not take a port of the host", c.name),
                );
            }
        }
        for (j, e) in c.env.iter().enumerate() {
            if e.name == PASSWORD_ENV && e.value.is_some() {
                errs.push(
                    format!("{at}.env[{j}].value"),
                    format!(
                        "container `{}` carries {PASSWORD_ENV} as a literal value; take it from the session Secret with valueFrom.secretKeyRef",
                        c.name
                    ),
                );
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Capabilities, PodSpec, SecurityContext};

    fn pod() -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container { name: "desktop".into(), image: Some("img".into()), ..Default::default() }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn needs(gpu: u32) -> PodNeeds {
        PodNeeds { session: "alice".into(), gpu, gpu_resource: GPU_RESOURCE.into() }
    }

    #[test]
    fn injects_everything_once() {
        let mut p = pod();
        assert!(ensure(&mut p, &needs(2)), "first pass reports its changes");
        let once = p.clone();
        assert!(!ensure(&mut p, &needs(2)), "second pass reports none");
        assert_eq!(p, once, "second pass adds nothing");
        let spec = p.spec.as_ref().expect("spec");
        let vols: Vec<_> = spec.volumes.iter().flatten().map(|v| v.name.as_str()).collect();
        assert_eq!(vols, [SHM_VOLUME, DRI_VOLUME]);
        let c = &spec.containers[0];
        let limit = c.resources.as_ref().and_then(|r| r.limits.as_ref()).and_then(|l| l.get(GPU_RESOURCE));
        assert_eq!(limit, Some(&Quantity("2".into())));
        let pw = c.env.iter().flatten().find(|e| e.name == PASSWORD_ENV).expect("password env");
        assert!(pw.value.is_none());
        let sel = pw.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()).expect("secretKeyRef");
        assert_eq!((sel.name.as_str(), sel.key.as_str()), ("alice-auth", "password"));
        assert!(check(&p).is_empty());
    }

    #[test]
    fn cpu_only_gets_no_dri_and_no_gpu() {
        let mut p = pod();
        ensure(&mut p, &needs(0));
        let spec = p.spec.as_ref().expect("spec");
        assert!(spec.volumes.iter().flatten().all(|v| v.host_path.is_none()));
        assert!(spec.containers[0].resources.is_none());
    }

    #[test]
    fn rejects_unsafe_pods() {
        let mut p = pod();
        let spec = p.spec.as_mut().expect("spec");
        spec.host_network = Some(true);
        spec.containers[0].security_context = Some(SecurityContext {
            privileged: Some(true),
            capabilities: Some(Capabilities { add: Some(vec!["SYS_ADMIN".into()]), drop: None }),
            ..Default::default()
        });
        spec.containers[0].env = Some(vec![literal(PASSWORD_ENV, "hunter2")]);
        spec.volumes = Some(vec![Volume {
            name: "root".into(),
            host_path: Some(HostPathVolumeSource { path: "/".into(), type_: None }),
            ..Default::default()
        }]);
        let errs = check(&p);
        let paths: Vec<_> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.hostNetwork",
                "spec.volumes[0].hostPath.path",
                "spec.containers[0].securityContext.privileged",
                "spec.containers[0].securityContext.capabilities.add",
                "spec.containers[0].env[0].value"
            ]
        );
        assert!(!errs.to_string().contains("hunter2"), "never echo the password");
    }
}
