//! The Kubernetes objects one session renders to (DESIGN.md "What a session renders to"): the
//! VDISession itself with its defaults, Pod, Service, PersistentVolumeClaim, the auth Secret
//! without its value, and, where the settings ask, ServiceAccount, NetworkPolicy and Ingress. The Pod is completed by `vdi_crds::pod::ensure`,
//! the same function the webhook runs at admission.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        core::v1::{
            Container, ContainerPort, EnvVar, HTTPGetAction, LocalObjectReference, PersistentVolumeClaim,
            PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Pod, PodSecurityContext, PodSpec, Probe,
            ResourceRequirements, SeccompProfile, Secret, SecurityContext, Service, ServiceAccount, ServicePort,
            ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
        },
        networking::v1::{
            HTTPIngressPath, HTTPIngressRuleValue, IPBlock, Ingress, IngressBackend, IngressRule,
            IngressServiceBackend, IngressSpec, IngressTLS, NetworkPolicy, NetworkPolicyEgressRule,
            NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec, ServiceBackendPort,
        },
    },
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};
use vdi_crds::{
    ResolvedSession, VDISession,
    agent::{self, env as agent_env},
    labels, names,
    pod::{self, AGENT_PORT, PodNeeds},
};

use crate::{gitops, settings::Settings};

/// One session's objects, serialized, in apply order.
pub struct SessionManifests {
    /// YAML documents, each starting with `---`.
    pub documents: Vec<String>,
}

impl SessionManifests {
    /// The documents as one multi-document YAML file.
    pub fn to_yaml(&self) -> String {
        self.documents.concat()
    }
}

fn meta(s: &ResolvedSession, name: String, component: &str, url: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(s.namespace.clone()),
        labels: Some(BTreeMap::from([
            (labels::NAME.into(), labels::NAME_VALUE.into()),
            (labels::INSTANCE.into(), s.name.clone()),
            (labels::MANAGED_BY.into(), labels::MANAGED_BY_VALUE.into()),
            (labels::COMPONENT.into(), component.into()),
            (labels::SESSION.into(), s.name.clone()),
            (labels::TEMPLATE.into(), s.template.clone()),
        ])),
        annotations: Some(BTreeMap::from([
            (labels::USER_ANNOTATION.into(), s.user.clone()),
            (labels::URL_ANNOTATION.into(), url.into()),
        ])),
        ..Default::default()
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() }
}

fn yaml<T: serde::Serialize>(v: &T) -> String {
    crate::yaml::document(v)
}

/// The desktop Pod, complete (what admission would add is already there).
pub fn pod(s: &ResolvedSession, settings: &Settings, url: &str) -> Pod {
    let mut env_vars: Vec<EnvVar> = s.env.iter().map(|e| env(&e.name, e.value.clone())).collect();
    let a = &settings.agent;
    env_vars.extend([
        env(agent_env::SESSION, s.name.clone()),
        env(agent_env::USER, s.user.clone()),
        env(agent_env::ENCODER, a.encoder.clone()),
        env(agent_env::VIDEO_BITRATE, a.video_bitrate.to_string()),
        env(agent_env::FRAMERATE, a.framerate.to_string()),
        env(agent_env::ENABLE_RESIZE, a.enable_resize.to_string()),
    ]);
    let t = &settings.turn;
    if let Some(host) = &t.host {
        env_vars.extend([
            env(agent_env::TURN_HOST, host.clone()),
            env(agent_env::TURN_PORT, t.port.to_string()),
            env(agent_env::TURN_PROTOCOL, t.protocol.clone()),
            env(agent_env::TURN_TLS, t.tls.to_string()),
        ]);
    }
    let probe = |path: &str, period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(agent::PORT_NAME.into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Default::default()
    };
    let quantities = BTreeMap::from([("cpu".to_owned(), s.cpu.to_k8s()), ("memory".to_owned(), s.memory.to_k8s())]);
    let mut meta = meta(s, s.name.clone(), labels::COMPONENT_DESKTOP, url);
    let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(labels::GPU_ANNOTATION.into(), s.gpu.to_string());
    gitops::annotate(annotations, &gitops::POD);
    let mut pod = Pod {
        metadata: meta,
        spec: Some(PodSpec {
            active_deadline_seconds: Some(s.timeout.as_secs()),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            hostname: Some(s.name.clone()),
            restart_policy: Some("Never".into()),
            service_account_name: settings.service_account.create.then(|| s.name.clone()),
            image_pull_secrets: (!settings.image_pull_secrets.is_empty()).then(|| {
                settings.image_pull_secrets.iter().map(|n| LocalObjectReference { name: n.clone() }).collect()
            }),
            security_context: Some(PodSecurityContext {
                // The desktop and the agent run as the image's unprivileged user; an image that
                // would run as root does not start.
                run_as_non_root: Some(true),
                fs_group: Some(1000),
                seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
                ..Default::default()
            }),
            termination_grace_period_seconds: Some(30),
            containers: vec![Container {
                name: pod::DESKTOP_CONTAINER.into(),
                image: Some(s.image.clone()),
                env: Some(env_vars),
                ports: Some(vec![
                    ContainerPort {
                        name: Some(agent::PORT_NAME.into()),
                        container_port: AGENT_PORT,
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    },
                    ContainerPort {
                        name: Some(agent::METRICS_PORT_NAME.into()),
                        container_port: pod::METRICS_PORT,
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    },
                ]),
                readiness_probe: Some(probe(agent::READY_PATH, 5, 3)),
                // The agent writes why it gave up to /dev/termination-log; vdi-status shows it.
                termination_message_policy: Some("FallbackToLogsOnError".into()),
                liveness_probe: Some(probe(agent::HEALTH_PATH, 10, 6)),
                resources: Some(ResourceRequirements {
                    requests: Some(quantities.clone()),
                    limits: Some(quantities),
                    ..Default::default()
                }),
                security_context: Some(SecurityContext {
                    privileged: Some(false),
                    allow_privilege_escalation: Some(false),
                    ..Default::default()
                }),
                volume_mounts: Some(vec![VolumeMount {
                    name: "home".into(),
                    mount_path: s.home_mount_path.clone(),
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            volumes: Some(vec![Volume {
                name: "home".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: names::home_claim(&s.name),
                    read_only: None,
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let needs = PodNeeds { session: s.name.clone(), gpu: s.gpu, gpu_resource: settings.gpu.resource_name.clone() };
    pod::ensure(&mut pod, &needs);
    pod
}

fn selector(s: &ResolvedSession) -> BTreeMap<String, String> {
    BTreeMap::from([(labels::SESSION.into(), s.name.clone())])
}

/// The session as the cluster keeps it: as written in git, with every default filled in (so the
/// webhook's defaulting is an empty patch), in its namespace, with the renderer's labels and the
/// URL added to its own.
pub fn session(s: &ResolvedSession, defaulted: &VDISession, url: &str) -> VDISession {
    let mut out = defaulted.clone();
    out.status = None;
    let ours = meta(s, s.name.clone(), labels::COMPONENT_DESKTOP, url);
    let m = &mut out.metadata;
    m.namespace = Some(s.namespace.clone());
    m.labels.get_or_insert_with(BTreeMap::new).extend(ours.labels.unwrap_or_default());
    let annotations = m.annotations.get_or_insert_with(BTreeMap::new);
    annotations.extend(ours.annotations.unwrap_or_default());
    gitops::annotate(annotations, &gitops::SESSION);
    out
}

/// Everything one session renders to; `defaulted` is its VDISession with defaults filled in.
pub fn render(s: &ResolvedSession, defaulted: &VDISession, settings: &Settings, url: &str) -> SessionManifests {
    let mut docs = Vec::with_capacity(8);
    docs.push(yaml(&session(s, defaulted, url)));
    if settings.service_account.create {
        docs.push(yaml(&ServiceAccount {
            metadata: meta(s, s.name.clone(), labels::COMPONENT_DESKTOP, url),
            automount_service_account_token: Some(false),
            ..Default::default()
        }));
    }
    let mut secret_meta = meta(s, names::auth_secret(&s.name), labels::COMPONENT_AUTH, url);
    let annotations = secret_meta.annotations.get_or_insert_with(BTreeMap::new);
    gitops::annotate(annotations, &gitops::SECRET);
    // The webhook makes the session's TURN credentials last as long as the session may.
    annotations.insert(labels::TIMEOUT_ANNOTATION.into(), s.timeout.as_secs().to_string());
    docs.push(yaml(&Secret { metadata: secret_meta, type_: Some("Opaque".into()), ..Default::default() }));
    let mut home_meta = meta(s, names::home_claim(&s.name), "home", url);
    if !settings.home.delete_with_session {
        gitops::annotate(home_meta.annotations.get_or_insert_with(BTreeMap::new), &gitops::KEEP);
    }
    docs.push(yaml(&PersistentVolumeClaim {
        metadata: home_meta,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), s.home_size.to_k8s())])),
                ..Default::default()
            }),
            storage_class_name: s.home_storage_class.clone().or_else(|| settings.storage_class_name.clone()),
            ..Default::default()
        }),
        ..Default::default()
    }));
    docs.push(yaml(&Service {
        metadata: meta(s, s.name.clone(), labels::COMPONENT_DESKTOP, url),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector(s)),
            ports: Some(vec![ServicePort {
                name: Some(agent::PORT_NAME.into()),
                port: AGENT_PORT,
                target_port: Some(IntOrString::String(agent::PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }));
    docs.push(yaml(&pod(s, settings, url)));
    if settings.network_policy.enabled {
        docs.push(yaml(&network_policy(s, settings, url)));
    }
    if settings.ingress.enabled {
        docs.push(yaml(&ingress(s, settings, url)));
    }
    SessionManifests { documents: docs }
}

fn namespaces(names: &[String]) -> Vec<NetworkPolicyPeer> {
    names
        .iter()
        .map(|ns| NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), ns.clone())])),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort { port: Some(IntOrString::Int(port)), protocol: Some("TCP".into()), ..Default::default() }
}

fn cidr(block: &str, except: Vec<String>) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        ip_block: Some(IPBlock { cidr: block.into(), except: (!except.is_empty()).then_some(except) }),
        ..Default::default()
    }
}

/// Who reaches the desktop (the ingress controller on the page's port, the monitoring on the
/// metrics port) and, since the desktop runs its user's code, what it reaches: DNS, and the
/// internet without cloud metadata and the cluster's private ranges, plus what the settings list.
fn network_policy(s: &ResolvedSession, settings: &Settings, url: &str) -> NetworkPolicy {
    let np = &settings.network_policy;
    let mut ingress = vec![NetworkPolicyIngressRule {
        from: Some(namespaces(&np.ingress_namespaces)),
        ports: Some(vec![tcp(AGENT_PORT)]),
    }];
    if !np.metrics_namespaces.is_empty() {
        ingress.push(NetworkPolicyIngressRule {
            from: Some(namespaces(&np.metrics_namespaces)),
            ports: Some(vec![tcp(pod::METRICS_PORT)]),
        });
    }
    let e = &np.egress;
    let mut policy_types = vec!["Ingress".to_owned()];
    let egress = e.enabled.then(|| {
        policy_types.push("Egress".into());
        let dns = NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([(
                        "kubernetes.io/metadata.name".to_owned(),
                        "kube-system".to_owned(),
                    )])),
                    ..Default::default()
                }),
                pod_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([("k8s-app".to_owned(), "kube-dns".to_owned())])),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ports: Some(vec![
                NetworkPolicyPort {
                    port: Some(IntOrString::Int(53)),
                    protocol: Some("UDP".into()),
                    ..Default::default()
                },
                tcp(53),
            ]),
        };
        let mut rules = vec![dns];
        let mut to: Vec<NetworkPolicyPeer> = Vec::new();
        if e.internet {
            let v4: Vec<String> = e.except.iter().filter(|c| !c.contains(':')).cloned().collect();
            let v6: Vec<String> = e.except.iter().filter(|c| c.contains(':')).cloned().collect();
            to.push(cidr("0.0.0.0/0", v4));
            to.push(cidr("::/0", v6));
        }
        to.extend(e.allow.iter().map(|c| cidr(c, Vec::new())));
        if !to.is_empty() {
            rules.push(NetworkPolicyEgressRule { to: Some(to), ports: None });
        }
        rules
    });
    NetworkPolicy {
        metadata: meta(s, s.name.clone(), labels::COMPONENT_DESKTOP, url),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector { match_labels: Some(selector(s)), ..Default::default() }),
            policy_types: Some(policy_types),
            ingress: Some(ingress),
            egress,
        }),
    }
}

fn ingress(s: &ResolvedSession, settings: &Settings, url: &str) -> Ingress {
    let host = crate::template::host_of(url);
    let mut meta = meta(s, s.name.clone(), labels::COMPONENT_DESKTOP, url);
    let i = &settings.ingress;
    let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
    annotations.extend(i.annotations.clone());
    let tls_secret = if let Some(issuer) = &i.cert_manager_cluster_issuer {
        annotations.insert("cert-manager.io/cluster-issuer".into(), issuer.clone());
        format!("{}-tls", s.name)
    } else {
        i.tls_secret_name.clone()
    };
    if i.tls {
        // ingress-nginx redirects plain HTTP to HTTPS and sends HSTS on TLS hosts by default;
        // the redirect is also said here so it holds behind a load balancer that ends TLS.
        annotations.insert("nginx.ingress.kubernetes.io/force-ssl-redirect".into(), "true".into());
    }
    Ingress {
        metadata: meta,
        spec: Some(IngressSpec {
            ingress_class_name: settings.ingress.class_name.clone(),
            tls: i
                .tls
                .then(|| vec![IngressTLS { hosts: host.clone().map(|h| vec![h]), secret_name: Some(tls_secret) }]),
            rules: Some(vec![IngressRule {
                host,
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: s.name.clone(),
                                port: Some(ServiceBackendPort { name: Some(agent::PORT_NAME.into()), number: None }),
                            }),
                            ..Default::default()
                        },
                    }],
                }),
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}
