//! Every phase vdi-status can report, derived from Pods in the exact shapes the scheduler and the
//! kubelet write (tests/fixtures/pods), with the sentence a person reads in `kubectl get vdi`.

use k8s_openapi::api::core::v1::Pod;
use vdi_crds::{Phase, VDISession, VDISessionSpec};
use vdi_webhook::status::derive;

fn pod(name: &str) -> Pod {
    let path = format!("{}/../tests/fixtures/pods/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn session() -> VDISession {
    let mut s = VDISession::new(
        "eve",
        VDISessionSpec {
            user: "eve@example.com".into(),
            template: "ubuntu-desktop".into(),
            resources: None,
            timeout: Some("8h".parse().expect("duration")),
        },
    );
    s.metadata.namespace = Some("vdi".into());
    s.metadata.generation = Some(3);
    s.metadata.creation_timestamp = serde_json::from_str("\"2026-11-30T08:59:59Z\"").ok();
    s
}

fn check(pod_name: Option<&str>, phase: Phase, reason: &str, message: &str) -> vdi_crds::VDISessionStatus {
    let p = pod_name.map(pod);
    let status = derive(&session(), p.as_ref());
    assert_eq!(status.phase, Some(phase), "{pod_name:?}: {status:?}");
    let ready = &status.conditions[0];
    assert_eq!((ready.type_.as_str(), ready.reason.as_str()), ("Ready", reason), "{pod_name:?}");
    assert_eq!(ready.status, if phase == Phase::Running { "True" } else { "False" });
    let shown = status.message.clone().unwrap_or_default();
    assert!(shown.contains(message), "{pod_name:?}: `{shown}` should say `{message}`");
    assert_eq!(status.observed_generation, Some(3));
    assert_eq!(ready.observed_generation, Some(3));
    assert_eq!(status.url.is_some(), phase == Phase::Running, "{pod_name:?}: the URL only once Running");
    assert_eq!(status.start_time.is_some(), phase == Phase::Running);
    status
}

#[test]
fn no_pod_yet_is_pending() {
    check(None, Phase::Pending, "PodMissing", "waiting for the desktop's Pod");
    check(Some("pending-new"), Phase::Pending, "Scheduling", "waiting for the scheduler");
}

#[test]
fn the_schedulers_reason_is_shown() {
    check(
        Some("pending-unschedulable"),
        Phase::Pending,
        "Unschedulable",
        "0/3 nodes are available: 3 Insufficient nvidia.com/gpu",
    );
}

#[test]
fn starting_and_pull_failures_are_creating() {
    check(Some("creating-containers"), Phase::Creating, "ContainerCreating", "starting");
    let s = check(
        Some("creating-image-pull-backoff"),
        Phase::Creating,
        "ImagePullBackOff",
        "cannot pull image ghcr.io/vdi/vdi-desktop:0.1.0 (ImagePullBackOff)",
    );
    assert!(s.message.unwrap_or_default().contains("not found"), "the registry's reason is kept");
    check(Some("running-agent-not-ready"), Phase::Creating, "AgentNotReady", "waiting for its agent");
}

#[test]
fn a_ready_agent_is_running_with_its_url_and_start_time() {
    let s = check(Some("running-ready"), Phase::Running, "Running", "ready");
    assert_eq!(s.url.as_deref(), Some("https://eve-vdi.vdi.example.com"));
    let started = serde_json::to_value(&s.start_time).expect("json");
    assert_eq!(started, "2026-11-30T09:00:06Z", "the Pod's own Ready time, not the writer's clock");
}

#[test]
fn deletion_is_terminating() {
    check(Some("terminating"), Phase::Terminating, "Terminating", "shutting down");
}

#[test]
fn ended_pods_fail_with_a_sentence() {
    check(Some("failed-deadline-exceeded"), Phase::Failed, "DeadlineExceeded", "ran for its 8h limit");
    check(
        Some("failed-evicted"),
        Phase::Failed,
        "Evicted",
        "evicted by its node: The node was low on resource: ephemeral-storage",
    );
    check(
        Some("failed-oomkilled"),
        Phase::Failed,
        "OOMKilled",
        "ran out of memory: the desktop used its whole limit of 4Gi",
    );
    let s = check(
        Some("failed-agent-message"),
        Phase::Failed,
        "AgentFailed",
        "the desktop agent stopped: no video encoder works",
    );
    assert!(!s.message.unwrap_or_default().ends_with('\n'));
}

#[test]
fn the_same_pod_gives_the_same_status_and_ready_keeps_its_transition_time() {
    for name in ["pending-unschedulable", "running-ready", "failed-oomkilled"] {
        assert_eq!(derive(&session(), Some(&pod(name))), derive(&session(), Some(&pod(name))), "{name}");
    }
    // Ready stays False from Creating to Failed: its transition time is the first one.
    let mut s = session();
    s.status = Some(derive(&s, Some(&pod("creating-containers"))));
    let before = s.status.as_ref().map(|st| st.conditions[0].last_transition_time.clone());
    let failed = derive(&s, Some(&pod("failed-agent-message")));
    assert_eq!(Some(failed.conditions[0].last_transition_time.clone()), before);
    // Ready turns True: a new transition time, the Pod's.
    let running = derive(&s, Some(&pod("running-ready")));
    assert_ne!(Some(running.conditions[0].last_transition_time.clone()), before);
}
