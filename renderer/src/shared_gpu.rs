//! Time-sliced GPUs with `failRequestsGreaterThanOne`: the node refuses a Pod that asks for more
//! than one shared GPU, so the Pod would never start. The renderer says so instead, naming the
//! session or template that asks.

use vdi_crds::{FieldErrors, VDITemplate};

use crate::settings::Settings;

/// Whether `gpu` GPUs cannot be granted with the cluster's GPU sharing.
pub fn too_many(gpu: u32, settings: &Settings) -> bool {
    gpu > 1 && settings.gpu.time_slicing.as_ref().is_some_and(|t| t.fail_requests_greater_than_one)
}

/// Why `gpu` GPUs cannot be granted.
pub fn message(gpu: u32) -> String {
    format!(
        "asks for {gpu} GPUs, but the cluster time-slices GPUs with failRequestsGreaterThanOne (settings gpu.timeSlicing): a Pod may have at most 1, so this desktop would never start"
    )
}

/// A template whose default or bound asks for more GPUs than a shared GPU can give.
pub fn check_template(template: &VDITemplate, settings: &Settings) -> FieldErrors {
    let mut errs = FieldErrors::default();
    let Some(r) = &template.spec.resources else { return errs };
    for (field, value) in [("spec.resources.defaultGPU", r.default_gpu), ("spec.resources.maxGPU", r.max_gpu)] {
        if let Some(g) = value.and_then(|g| u32::try_from(g).ok()).filter(|g| too_many(*g, settings)) {
            errs.push(field, message(g).replacen("asks for", "allows", 1));
        }
    }
    errs
}
