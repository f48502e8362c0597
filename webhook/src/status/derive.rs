//! What a session's status is, from its Pod as the scheduler and the kubelet describe it: a pure
//! function, so that a restarted writer, or two replicas, compute the same status. Times come
//! from the Pod's own timestamps (never the writer's clock), for the same reason.

use k8s_openapi::{
    api::core::v1::{ContainerStatus, Pod, PodCondition},
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
};
use vdi_crds::{Phase, VDISession, VDISessionStatus, labels};

/// Type of the condition vdi-status owns.
pub const READY: &str = "Ready";

/// What the Pod shows, before it becomes a status.
#[derive(Debug, Clone, PartialEq)]
struct Observed {
    phase: Phase,
    /// CamelCase reason of the Ready condition.
    reason: &'static str,
    message: String,
    /// When the Pod entered this state, by its own clock.
    since: Option<Time>,
}

fn condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a PodCondition> {
    pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

fn containers(pod: &Pod) -> &[ContainerStatus] {
    pod.status.as_ref().and_then(|s| s.container_statuses.as_deref()).unwrap_or_default()
}

fn pod_time(pod: &Pod) -> Option<Time> {
    condition(pod, "Ready")
        .and_then(|c| c.last_transition_time.clone())
        .or_else(|| pod.metadata.creation_timestamp.clone())
}

/// The memory limit of the Pod's first container, as written (`4Gi`).
fn memory_limit(pod: &Pod) -> Option<String> {
    let c = pod.spec.as_ref()?.containers.first()?;
    Some(c.resources.as_ref()?.limits.as_ref()?.get("memory")?.0.clone())
}

fn timeout_of(session: &VDISession, pod: &Pod) -> String {
    match (&session.spec.timeout, pod.spec.as_ref().and_then(|s| s.active_deadline_seconds)) {
        (Some(t), _) => t.to_string(),
        (None, Some(secs)) => format!("{secs}s"),
        (None, None) => vdi_crds::defaults::DEFAULT_TIMEOUT.to_owned(),
    }
}

/// Why an ended Pod ended, as a sentence a person understands.
fn ended(session: &VDISession, pod: &Pod) -> Observed {
    let status = pod.status.clone().unwrap_or_default();
    let since = pod_time(pod);
    let failed = |reason, message: String| Observed { phase: Phase::Failed, reason, message, since: since.clone() };
    match status.reason.as_deref() {
        Some("DeadlineExceeded") => {
            return failed(
                "DeadlineExceeded",
                format!("ran for its {} limit and was stopped", timeout_of(session, pod)),
            );
        }
        Some("Evicted") => {
            let why = status.message.unwrap_or_default();
            return failed("Evicted", format!("evicted by its node: {}", why.trim()).trim_end_matches(": ").to_owned());
        }
        _ => {}
    }
    let terminated = containers(pod).iter().find_map(|c| c.state.as_ref()?.terminated.as_ref());
    if let Some(t) = terminated {
        let since = t.finished_at.clone().or(since);
        let failed = |reason, message| Observed { phase: Phase::Failed, reason, message, since: since.clone() };
        if t.reason.as_deref() == Some("OOMKilled") {
            let limit = memory_limit(pod).map_or_else(String::new, |l| format!(" of {l}"));
            return failed(
                "OOMKilled",
                format!("ran out of memory: the desktop used its whole limit{limit} (OOMKilled)"),
            );
        }
        if let Some(msg) = t.message.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            return failed("AgentFailed", format!("the desktop agent stopped: {msg}"));
        }
        let reason = t.reason.as_deref().unwrap_or("exited");
        return failed("Exited", format!("the desktop exited with code {} ({reason})", t.exit_code));
    }
    let message = status.message.filter(|m| !m.is_empty()).unwrap_or_else(|| "the desktop's Pod ended".into());
    failed("PodEnded", message)
}

/// A container that is waiting, and why, as a sentence.
fn waiting(pod: &Pod) -> Option<(&'static str, String)> {
    for c in containers(pod) {
        let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) else { continue };
        let detail = w.message.clone().unwrap_or_default();
        let with = |s: String| if detail.is_empty() { s } else { format!("{s}: {detail}") };
        return Some(match w.reason.as_deref() {
            Some("ImagePullBackOff") => {
                ("ImagePullBackOff", with(format!("cannot pull image {} (ImagePullBackOff)", c.image)))
            }
            Some("ErrImagePull") => ("ErrImagePull", with(format!("cannot pull image {} (ErrImagePull)", c.image))),
            Some("InvalidImageName") => ("InvalidImageName", with(format!("image name {} is invalid", c.image))),
            Some("CrashLoopBackOff") => {
                let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
                let why = last
                    .and_then(|t| t.message.clone().filter(|m| !m.trim().is_empty()).or_else(|| t.reason.clone()))
                    .map_or_else(String::new, |m| format!(", last: {}", m.trim()));
                ("CrashLoopBackOff", format!("the desktop keeps crashing ({} restarts{why})", c.restart_count))
            }
            Some("CreateContainerConfigError") => {
                ("CreateContainerConfigError", with("cannot start the desktop".into()))
            }
            _ => continue,
        });
    }
    None
}

fn observe(session: &VDISession, pod: Option<&Pod>) -> Observed {
    let Some(pod) = pod else {
        return Observed {
            phase: Phase::Pending,
            reason: "PodMissing",
            message: "waiting for the desktop's Pod to be created".into(),
            since: session.metadata.creation_timestamp.clone(),
        };
    };
    if let Some(deleted) = &pod.metadata.deletion_timestamp {
        return Observed {
            phase: Phase::Terminating,
            reason: "Terminating",
            message: "the desktop is shutting down".into(),
            since: Some(deleted.clone()),
        };
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    if matches!(phase, "Failed" | "Succeeded") {
        return ended(session, pod);
    }
    let scheduled = condition(pod, "PodScheduled");
    if let Some(c) = scheduled.filter(|c| c.status == "False") {
        return Observed {
            phase: Phase::Pending,
            reason: if c.reason.as_deref() == Some("Unschedulable") { "Unschedulable" } else { "Scheduling" },
            message: c.message.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| "waiting for a node".into()),
            since: c.last_transition_time.clone(),
        };
    }
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_ref());
    if scheduled.is_none() && node.is_none() {
        return Observed {
            phase: Phase::Pending,
            reason: "Scheduling",
            message: "waiting for the scheduler to place the desktop".into(),
            since: pod.metadata.creation_timestamp.clone(),
        };
    }
    let ready = condition(pod, "Ready");
    if phase == "Running" && ready.is_some_and(|c| c.status == "True") {
        return Observed {
            phase: Phase::Running,
            reason: "Running",
            message: "the desktop is ready".into(),
            since: ready.and_then(|c| c.last_transition_time.clone()),
        };
    }
    let since =
        scheduled.and_then(|c| c.last_transition_time.clone()).or_else(|| pod.metadata.creation_timestamp.clone());
    let (reason, message) = waiting(pod).unwrap_or_else(|| {
        if phase == "Running" {
            ("AgentNotReady", "the desktop is starting; waiting for its agent to be ready".into())
        } else {
            ("ContainerCreating", "the desktop's containers are starting".into())
        }
    });
    Observed { phase: Phase::Creating, reason, message, since }
}

/// The status `session` should have, given its Pod (`None`: none exists). Against the status the
/// session has now, the Ready condition keeps its lastTransitionTime while its status holds.
pub fn derive(session: &VDISession, pod: Option<&Pod>) -> VDISessionStatus {
    let o = observe(session, pod);
    let running = o.phase == Phase::Running;
    let previous = session.status.as_ref();
    let ready_status = if running { "True" } else { "False" };
    let kept = previous
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == READY))
        .filter(|c| c.status == ready_status)
        .map(|c| c.last_transition_time.clone());
    let url = pod
        .and_then(|p| p.metadata.annotations.as_ref()?.get(labels::URL_ANNOTATION).cloned())
        .or_else(|| session.metadata.annotations.as_ref()?.get(labels::URL_ANNOTATION).cloned());
    let fallback = || o.since.clone().or_else(|| session.metadata.creation_timestamp.clone());
    let transition = kept.or_else(fallback).unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    VDISessionStatus {
        phase: Some(o.phase),
        url: url.filter(|_| running),
        message: Some(o.message.clone()),
        start_time: if running { o.since.clone().or_else(|| Some(transition.clone())) } else { None },
        observed_generation: session.metadata.generation,
        conditions: vec![Condition {
            type_: READY.into(),
            status: ready_status.into(),
            reason: o.reason.into(),
            message: o.message,
            last_transition_time: transition,
            observed_generation: session.metadata.generation,
        }],
    }
}
