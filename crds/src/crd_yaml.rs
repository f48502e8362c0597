//! The CustomResourceDefinitions as YAML, generated from the types. The checked-in copies under
//! `crds/` are compared with this output by a test; regenerate them with
//! `BLESS=1 cargo test -p vdi-crds` (or `vdi-render crds`).

use kube::CustomResourceExt;

use crate::{VDISession, VDITemplate};

/// `(file name, YAML)` of every CRD, in a stable order.
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        ("vdisessions.vdi.kasm.io.yaml", to_yaml(&crd("VDISession"))),
        ("vditemplates.vdi.kasm.io.yaml", to_yaml(&crd("VDITemplate"))),
    ]
}

/// The CRD of `kind` (`VDISession` or `VDITemplate`) as JSON, with int-or-string fields spelled
/// the way the API server documents them.
pub fn crd(kind: &str) -> serde_json::Value {
    let crd = match kind {
        "VDISession" => VDISession::crd(),
        _ => VDITemplate::crd(),
    };
    let mut value = serde_json::to_value(crd).unwrap_or_else(|e| unreachable!("a CRD always serializes: {e}"));
    restore_int_or_string(&mut value);
    value
}

/// kube's structural rewrite empties the `anyOf` branches of int-or-string fields (`[{}, {}]`),
/// which a JSON Schema validator reads as "anything"; put the types back (the API server accepts
/// exactly this form).
fn restore_int_or_string(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            if map.get("x-kubernetes-int-or-string") == Some(&serde_json::Value::Bool(true)) {
                map.insert("anyOf".into(), serde_json::json!([{"type": "integer"}, {"type": "string"}]));
            }
            map.values_mut().for_each(restore_int_or_string);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(restore_int_or_string),
        _ => {}
    }
}

/// The CRDs as one multi-document YAML stream.
pub fn stream() -> String {
    all().into_iter().map(|(_, y)| format!("---\n{y}")).collect()
}

fn to_yaml<T: serde::Serialize>(v: &T) -> String {
    serde_saphyr::to_string(v).unwrap_or_else(|e| unreachable!("a CRD always serializes: {e}"))
}

/// The `openAPIV3Schema` of the CRD for `kind`, as JSON, for client-side validation.
pub fn schema(kind: &str) -> Option<serde_json::Value> {
    if kind != "VDISession" && kind != "VDITemplate" {
        return None;
    }
    crd(kind).pointer("/spec/versions/0/schema/openAPIV3Schema").cloned()
}
