//! The patch for a session Pod, written straight from what `vdi_crds::pod::ensure` appended.
//! `ensure` never removes or replaces anything (its contract): it appends volumes, mounts and
//! variables and inserts resource limits. So the lengths and keys taken before it runs ([`Shape`])
//! are all that is needed to say what it added, as `add` operations on the Pod's own paths; no
//! copy of the Pod is kept, the request is not read again and nothing is diffed. A Pod that
//! needs nothing pays only for the shape (a few integers per container).

use std::collections::BTreeMap;

use json_patch::{AddOperation, Patch, PatchOperation, jsonptr::PointerBuf};
use k8s_openapi::{
    api::core::v1::{Container, Pod, ResourceRequirements},
    apimachinery::pkg::api::resource::Quantity,
};
use serde::Serialize;
use serde_json::Value;

/// What `ensure` may append to, as it was before: lengths, and the keys of resource maps.
#[derive(Debug, Default)]
pub struct Shape {
    volumes: Option<usize>,
    containers: Vec<ContainerShape>,
}

#[derive(Debug, Default)]
struct ContainerShape {
    env: Option<usize>,
    mounts: Option<usize>,
    /// `None` when the container had no `resources`.
    resources: Option<ResourcesShape>,
}

#[derive(Debug, Default)]
struct ResourcesShape {
    limits: Option<Vec<String>>,
    requests: Option<Vec<String>>,
}

fn keys(map: &Option<BTreeMap<String, Quantity>>) -> Option<Vec<String>> {
    map.as_ref().map(|m| m.keys().cloned().collect())
}

impl Shape {
    /// The shape of `pod` now, before `ensure` runs.
    pub fn of(pod: &Pod) -> Self {
        let Some(spec) = pod.spec.as_ref() else { return Self::default() };
        let container = |c: &Container| ContainerShape {
            env: c.env.as_ref().map(Vec::len),
            mounts: c.volume_mounts.as_ref().map(Vec::len),
            resources: c
                .resources
                .as_ref()
                .map(|r| ResourcesShape { limits: keys(&r.limits), requests: keys(&r.requests) }),
        };
        Self {
            volumes: spec.volumes.as_ref().map(Vec::len),
            containers: spec.containers.iter().map(container).collect(),
        }
    }

    /// The operations that turn a Pod of this shape into `after`, given that only appends and
    /// inserts happened in between.
    pub fn additions(&self, after: &Pod) -> Patch {
        let mut ops = Ops(Vec::new());
        let Some(spec) = after.spec.as_ref() else { return Patch(ops.0) };
        ops.list(PointerBuf::from_tokens(["spec", "volumes"]), self.volumes, spec.volumes.as_deref());
        for (i, (before, c)) in self.containers.iter().zip(&spec.containers).enumerate() {
            let at = |field: &str| PointerBuf::from_tokens(["spec", "containers", &i.to_string(), field]);
            ops.list(at("env"), before.env, c.env.as_deref());
            ops.list(at("volumeMounts"), before.mounts, c.volume_mounts.as_deref());
            ops.resources(at("resources"), before.resources.as_ref(), c.resources.as_ref());
        }
        Patch(ops.0)
    }
}

struct Ops(Vec<PatchOperation>);

impl Ops {
    fn add<T: Serialize + ?Sized>(&mut self, path: PointerBuf, value: &T) {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.0.push(PatchOperation::Add(AddOperation { path, value }));
    }

    /// A list that had `before` elements (`None`: no list): the whole list when it is new, else
    /// each element past the old end, appended with `-`.
    fn list<T: Serialize>(&mut self, path: PointerBuf, before: Option<usize>, after: Option<&[T]>) {
        match (before, after) {
            (None, Some(all)) => self.add(path, all),
            (Some(n), Some(all)) if all.len() > n => {
                let end = path.with_trailing_token("-");
                for item in &all[n..] {
                    self.add(end.clone(), item);
                }
            }
            _ => {}
        }
    }

    fn resources(&mut self, path: PointerBuf, before: Option<&ResourcesShape>, after: Option<&ResourceRequirements>) {
        let Some(after) = after else { return };
        let Some(before) = before else { return self.add(path, after) };
        self.map(path.with_trailing_token("limits"), before.limits.as_deref(), after.limits.as_ref());
        self.map(path.with_trailing_token("requests"), before.requests.as_deref(), after.requests.as_ref());
    }

    fn map(&mut self, path: PointerBuf, before: Option<&[String]>, after: Option<&BTreeMap<String, Quantity>>) {
        let Some(after) = after else { return };
        let Some(before) = before else { return self.add(path, after) };
        for (key, value) in after.iter().filter(|(k, _)| !before.contains(k)) {
            self.add(path.with_trailing_token(key.as_str()), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{EnvVar, PodSpec, Volume, VolumeMount};
    use proptest::prelude::*;
    use vdi_crds::pod::{self, PodNeeds};

    use super::*;

    fn env(names: &[&'static str]) -> Vec<EnvVar> {
        names.iter().map(|n| EnvVar { name: (*n).into(), value: Some("v".into()), ..Default::default() }).collect()
    }

    prop_compose! {
        fn container(desktop: bool)(
            env_names in prop::option::of(prop::collection::vec(
                prop::sample::select(vec!["A", "B", "DISPLAY", pod::PASSWORD_ENV, "PULSE_SERVER"]), 0..12)),
            mounts in prop::option::of(prop::collection::vec(
                prop::sample::select(vec!["/data", pod::SHM_PATH, pod::DRI_PATH]), 0..3)),
            resources in prop::option::of((
                prop::option::of(prop::collection::btree_set(
                    prop::sample::select(vec!["cpu", "memory", "nvidia.com/gpu"]), 0..3)),
                prop::option::of(Just(["cpu"])),
            )),
        ) -> Container {
            Container {
                name: if desktop { pod::DESKTOP_CONTAINER.into() } else { "sidecar".into() },
                env: env_names.map(|n| env(&n)),
                volume_mounts: mounts.map(|m| m.iter().enumerate().map(|(i, p)| VolumeMount {
                    name: format!("m{i}"), mount_path: (*p).into(), ..Default::default()
                }).collect()),
                resources: resources.map(|(limits, requests)| ResourceRequirements {
                    limits: limits.map(|l| l.into_iter().map(|k| (k.to_owned(), Quantity("1".into()))).collect()),
                    requests: requests.map(|r| r.iter().map(|k| ((*k).to_owned(), Quantity("1".into()))).collect()),
                    ..Default::default()
                }),
                ..Default::default()
            }
        }
    }

    prop_compose! {
        fn session_pod()(
            sidecar_first in any::<bool>(),
            sidecar in prop::option::of(container(false)),
            desktop in container(true),
            volumes in prop::option::of(prop::collection::vec(prop::sample::select(vec!["data", "dshm"]), 0..3)),
        ) -> Pod {
            let mut containers = vec![desktop];
            if let Some(s) = sidecar {
                if sidecar_first { containers.insert(0, s) } else { containers.push(s) }
            }
            let volumes = volumes.map(|v| v.iter().map(|n| Volume { name: (*n).into(), ..Default::default() }).collect());
            Pod { spec: Some(PodSpec { containers, volumes, ..Default::default() }), ..Default::default() }
        }
    }

    proptest! {
        /// Applied to the Pod as the API server holds it, the additions give exactly the Pod
        /// `ensure` made, and nothing else, whatever the Pod had.
        #[test]
        fn the_additions_are_exactly_what_ensure_added(before in session_pod(), gpu in 0u32..3) {
            let needs = PodNeeds { session: "s".into(), gpu, gpu_resource: "nvidia.com/gpu".into() };
            let mut after = before.clone();
            let shape = Shape::of(&before);
            let changed = pod::ensure(&mut after, &needs);
            let patch = shape.additions(&after);
            prop_assert_eq!(changed, !patch.0.is_empty(), "{}", serde_json::to_string(&patch).unwrap_or_default());
            let mut doc = serde_json::to_value(&before).expect("a Pod serializes");
            json_patch::patch(&mut doc, &patch).expect("the patch applies");
            prop_assert_eq!(doc, serde_json::to_value(&after).expect("a Pod serializes"));
        }
    }

    #[test]
    fn a_limit_named_with_a_slash_is_one_token() {
        let c = Container {
            resources: Some(ResourceRequirements { limits: Some(BTreeMap::new()), ..Default::default() }),
            ..Default::default()
        };
        let before = Pod { spec: Some(PodSpec { containers: vec![c], ..Default::default() }), ..Default::default() };
        let shape = Shape::of(&before);
        let mut after = before.clone();
        if let Some(l) =
            after.spec.as_mut().and_then(|s| s.containers[0].resources.as_mut()).and_then(|r| r.limits.as_mut())
        {
            l.insert("nvidia.com/gpu".into(), Quantity("1".into()));
        }
        let patch = serde_json::to_value(shape.additions(&after)).expect("a patch serializes");
        assert_eq!(
            patch,
            serde_json::json!([{"op": "add", "path": "/spec/containers/0/resources/limits/nvidia.com~1gpu", "value": "1"}])
        );
    }
}
