//! The generated CRDs are what the API server needs: valid CustomResourceDefinitions
//! (kubernetes-validate --strict), every field documented so `kubectl explain` helps, the
//! validation the DESIGN asks for present in the schema, and the examples valid against it.

use std::process::Command;

use vdi_e2e::{repo, run, text, tool};

fn fields_without_description(path: &str, v: &serde_json::Value, out: &mut Vec<String>) {
    let Some(props) = v.get("properties").and_then(|p| p.as_object()) else {
        return;
    };
    for (name, schema) in props {
        let here = format!("{path}.{name}");
        if schema.get("description").and_then(|d| d.as_str()).is_none_or(str::is_empty) {
            out.push(here.clone());
        }
        fields_without_description(&here, schema, out);
        if let Some(items) = schema.get("items") {
            fields_without_description(&format!("{here}[]"), items, out);
        }
    }
}

#[test]
fn crds_are_valid_documented_and_validating() {
    let files = ["crds/vdisessions.vdi.kasm.io.yaml", "crds/vditemplates.vdi.kasm.io.yaml"].map(|f| repo().join(f));
    let v = run(Command::new(tool("kubernetes-validate")).args(["--strict", "--quiet"]).args(&files));
    assert!(v.status.success(), "{:?}", text(&v));
    for kind in ["VDISession", "VDITemplate"] {
        let schema = vdi_crds::crd_yaml::schema(kind).expect("schema");
        let mut missing = Vec::new();
        fields_without_description(kind, &schema["properties"]["spec"], &mut missing);
        assert!(missing.is_empty(), "fields without a description (kubectl explain shows nothing): {missing:?}");
    }
    let session = serde_json::to_string(&vdi_crds::crd_yaml::crd("VDISession")).expect("json");
    for needle in [
        r#""pattern":"^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$""#,
        r#""minimum":0"#,
        r#""enum":["Pending","Creating","Running","Terminating","Failed"]"#,
        r#""rule":"duration(self) <= duration('168h')""#,
        r#""rule":"self == oldSelf""#,
        r#""x-kubernetes-int-or-string":true"#,
        r#""shortNames":["vdi"]"#,
        r#""jsonPath":".status.url""#,
    ] {
        assert!(session.contains(needle), "VDISession CRD lacks {needle}");
    }
    let template = serde_json::to_string(&vdi_crds::crd_yaml::crd("VDITemplate")).expect("json");
    assert!(template.contains(r#""scope":"Cluster""#));
    assert!(template.contains("self.defaultGPU <= self.maxGPU"));
}
