//! Admission decisions from AdmissionReviews shaped exactly as the API server sends them (uid,
//! kind, resource, requestKind, userInfo, object, oldObject, dryRun, options), called in-process
//! through the router; patches are applied to the request's object and the result checked.

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use base64::Engine;
use serde_json::{Value, json};
use tower::ServiceExt;
use vdi_crds::{VDITemplate, VDITemplateSpec};
use vdi_webhook::{AppState, Metrics, Templates, app};

fn state() -> AppState {
    let mut t = VDITemplate::new(
        "ubuntu-desktop",
        VDITemplateSpec {
            // The image of the captured review's Pod (fixtures/pod-create.json).
            image: "ghcr.io/vdi/ubuntu-desktop:24.04-1".into(),
            display_name: None,
            description: None,
            resources: Some(vdi_crds::TemplateResources {
                default_gpu: Some(1),
                max_gpu: Some(2),
                default_memory: Some("8Gi".parse().expect("q")),
                max_memory: Some("32Gi".parse().expect("q")),
                default_cpu: Some("4".parse().expect("q")),
            }),
            env: vec![],
            home: None,
        },
    );
    t.metadata.name = Some("ubuntu-desktop".into());
    AppState {
        templates: Templates::fixed([t]),
        metrics: std::sync::Arc::new(Metrics::new()),
        gpu_resource: vdi_crds::pod::GPU_RESOURCE.into(),
        turn_secret: None,
        gitops_accounts: None,
    }
}

/// The state with the example templates (what the rendered examples name).
fn examples_state() -> AppState {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut st = state();
    st.templates = Templates::from_files(&[root.join("examples/templates")]).expect("example templates");
    st
}

async fn post_to(state: AppState, path: &str, review: &Value) -> Value {
    let (status, body) = call(state, path, serde_json::to_vec(review).expect("json")).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).expect("review json");
    v["response"].clone()
}

/// A review in the API server's shape around `object`.
fn review(op: &str, group: &str, kind: &str, resource: &str, object: Value, old: Value, dry_run: bool) -> Value {
    let version = if group.is_empty() { "v1" } else { "v1alpha1" };
    let name = object.pointer("/metadata/name").or(old.pointer("/metadata/name")).cloned().unwrap_or(json!(""));
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "b5f0a6a2-2c1b-4d7e-9b3f-1f2e3d4c5b6a",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": name,
            "namespace": "team",
            "operation": op,
            "userInfo": {"username": "jane@example.com", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": dry_run,
            "options": {"kind": if op == "CREATE" { "CreateOptions" } else { "UpdateOptions" }, "apiVersion": "meta.k8s.io/v1"}
        }
    })
}

async fn call(state: AppState, path: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let res = app(state)
        .oneshot(
            Request::post(path).header("content-type", "application/json").body(Body::from(body)).expect("request"),
        )
        .await
        .expect("infallible");
    let status = res.status();
    (status, to_bytes(res.into_body(), usize::MAX).await.expect("body").to_vec())
}

/// Sends a review; returns the response object.
async fn post(path: &str, review: &Value) -> Value {
    let (status, body) = call(state(), path, serde_json::to_vec(review).expect("json")).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).expect("review json");
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    assert_eq!(v["response"]["uid"], review["request"]["uid"]);
    v["response"].clone()
}

/// The object after the response's patch (the object itself when there is none).
fn patched(response: &Value, object: &Value) -> Value {
    let mut doc = object.clone();
    if let Some(p) = response["patch"].as_str() {
        assert_eq!(response["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD.decode(p).expect("base64 patch");
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("RFC 6902 patch");
        json_patch::patch(&mut doc, &patch).expect("patch applies to the request's object");
    }
    doc
}

fn fixture_pod() -> Value {
    let review: Value = serde_json::from_str(include_str!("fixtures/pod-create.json")).expect("fixture");
    review["request"]["object"].clone()
}

#[tokio::test]
async fn bare_session_pod_gets_everything_once() {
    let review: Value = serde_json::from_str(include_str!("fixtures/pod-create.json")).expect("fixture");
    let object = review["request"]["object"].clone();
    let response = post("/mutate", &review).await;
    assert_eq!(response["allowed"], true);
    let pod = patched(&response, &object);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], "1", "{response}\n{pod}");
    let mounts: Vec<_> = c["volumeMounts"].as_array().expect("mounts").iter().map(|m| m["mountPath"].clone()).collect();
    assert_eq!(mounts, [json!("/dev/shm"), json!("/dev/dri")]);
    let shm = pod["spec"]["volumes"].as_array().expect("vols").iter().find(|v| v["name"] == "dshm").expect("dshm");
    assert_eq!(shm["emptyDir"], json!({"medium": "Memory", "sizeLimit": "2Gi"}));
    let env = c["env"].as_array().expect("env");
    let pw = env.iter().find(|e| e["name"] == "SELKIES_BASIC_AUTH_PASSWORD").expect("password env");
    assert_eq!(pw["valueFrom"]["secretKeyRef"], json!({"name": "alice-auth", "key": "password", "optional": false}));
    assert!(env.iter().any(|e| e["name"] == "DISPLAY" && e["value"] == ":0"));
    assert!(env.iter().any(|e| e["name"] == "PULSE_SERVER"));
    // Fields this build does not model survive (the patch touches only what it adds).
    assert_eq!(pod["metadata"]["managedFields"], object["metadata"]["managedFields"]);
    assert_eq!(pod["spec"]["tolerations"], object["spec"]["tolerations"]);

    // Second pass (reinvocationPolicy: IfNeeded): nothing more.
    let mut again = review.clone();
    again["request"]["object"] = pod;
    let response = post("/mutate", &again).await;
    assert!(response.get("patch").is_none_or(Value::is_null), "{response}");
    // And the mutated Pod validates.
    assert_eq!(post("/validate", &again).await["allowed"], true);
}

/// The patch touches only what the injections add, at the right places, whatever the Pod
/// already has: ten variables of its own (indices past 9), no volumes at all, and a field this
/// build does not know, which must survive.
#[tokio::test]
async fn the_patch_appends_at_the_pods_own_indices_and_keeps_unknown_fields() {
    let mut review: Value = serde_json::from_str(include_str!("fixtures/pod-create.json")).expect("fixture");
    let object = &mut review["request"]["object"];
    object["spec"]["containers"][0]["env"] =
        Value::Array((0..10).map(|i| json!({"name": format!("MY_VAR_{i}"), "value": i.to_string()})).collect());
    object["spec"]["containers"][0]["futureField"] = json!({"kept": true});
    object["spec"].as_object_mut().expect("spec").remove("volumes");
    let object = object.clone();
    let response = post("/mutate", &review).await;
    let pod = patched(&response, &object);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["futureField"], json!({"kept": true}), "{response}");
    let names: Vec<&str> = c["env"].as_array().expect("env").iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(&names[..10], (0..10).map(|i| format!("MY_VAR_{i}")).collect::<Vec<_>>().as_slice());
    assert!(names.contains(&"SELKIES_BASIC_AUTH_PASSWORD") && names.contains(&"DISPLAY"), "{names:?}");
    let volumes: Vec<&str> =
        pod["spec"]["volumes"].as_array().expect("volumes added").iter().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(volumes, ["dshm", "dri"]);
    // Applied once more, nothing changes.
    let mut again = review.clone();
    again["request"]["object"] = pod;
    assert!(post("/mutate", &again).await.get("patch").is_none_or(Value::is_null));
}

/// The review with the request's keys in `order` (serde_json's own maps sort them, so `kind`
/// always precedes `object` otherwise).
fn reordered(review: &Value, order: &[&str]) -> Vec<u8> {
    let request = review["request"].as_object().expect("request");
    let mut keys: Vec<&String> = request.keys().collect();
    keys.sort_by_key(|k| order.iter().position(|o| o == k).unwrap_or(usize::MAX));
    let fields: Vec<String> = keys.iter().map(|k| format!("{}:{}", json!(k), request[k.as_str()])).collect();
    format!(r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{{}}}}}"#, fields.join(","))
        .into_bytes()
}

#[tokio::test]
async fn key_order_does_not_change_the_answer() {
    // The Pod is parsed with the review when `kind` comes first (as the API server sends it) and
    // from the raw object otherwise; both must answer alike, patched or not.
    let bare: Value = serde_json::from_str(include_str!("fixtures/pod-create.json")).expect("fixture");
    let mut complete = bare.clone();
    complete["request"]["object"] = patched(&post("/mutate", &bare).await, &bare["request"]["object"]);
    let mut unsafe_pod = bare.clone();
    unsafe_pod["request"]["object"]["spec"]["hostNetwork"] = json!(true);
    for review in [bare, complete, unsafe_pod] {
        for path in ["/mutate", "/validate"] {
            let kind_first = call(state(), path, reordered(&review, &["kind", "object"])).await;
            let object_first = call(state(), path, reordered(&review, &["object", "kind"])).await;
            assert_eq!(kind_first.0, StatusCode::OK);
            let a: Value = serde_json::from_slice(&kind_first.1).expect("json");
            let b: Value = serde_json::from_slice(&object_first.1).expect("json");
            assert_eq!(a, b, "{path}");
        }
    }
}

#[tokio::test]
async fn every_rendered_example_pod_passes_with_an_empty_patch() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sessions = vdi_render::render(
        &[root.join("examples/sessions"), root.join("examples/templates")],
        &vdi_render::Settings::default(),
    )
    .expect("examples render")
    .sessions;
    assert!(!sessions.is_empty());
    for s in &sessions {
        for v in serde_saphyr::from_multiple::<Value>(&s.yaml).expect("yaml") {
            if v["kind"] == "Pod" {
                let r = review("CREATE", "", "Pod", "pods", v.clone(), Value::Null, false);
                let response = post_to(examples_state(), "/mutate", &r).await;
                assert_eq!(response["allowed"], true);
                assert!(response.get("patch").is_none_or(Value::is_null), "{}/{}: {response}", s.namespace, s.name);
                let validated = post_to(examples_state(), "/validate", &r).await;
                assert_eq!(validated["allowed"], true, "{}: {validated}", s.name);
            }
        }
    }
}

/// The renderer and the webhook take the same GPU resource name: with `nvidia.com/gpu.shared` on
/// both sides a rendered Pod still passes unchanged, and VDISessions the renderer emits need no
/// defaulting either.
#[tokio::test]
async fn rendered_objects_pass_unchanged_with_a_renamed_gpu_resource() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut settings = vdi_render::Settings::default();
    settings.gpu.resource_name = "nvidia.com/gpu.shared".into();
    let rendered = vdi_render::render(&[root.join("examples/sessions"), root.join("examples/templates")], &settings)
        .expect("examples render");
    let mut shared = examples_state();
    shared.gpu_resource = "nvidia.com/gpu.shared".into();
    let mut seen = (0, 0);
    for s in &rendered.sessions {
        for v in serde_saphyr::from_multiple::<Value>(&s.yaml).expect("yaml") {
            let r = match v["kind"].as_str() {
                Some("Pod") => {
                    seen.0 += 1;
                    review("CREATE", "", "Pod", "pods", v.clone(), Value::Null, false)
                }
                Some("VDISession") => {
                    seen.1 += 1;
                    review("CREATE", "vdi.kasm.io", "VDISession", "vdisessions", v.clone(), Value::Null, false)
                }
                _ => continue,
            };
            let (status, body) = call(shared.clone(), "/mutate", serde_json::to_vec(&r).expect("json")).await;
            assert_eq!(status, StatusCode::OK);
            let response: Value = serde_json::from_slice(&body).expect("json");
            let response = &response["response"];
            assert_eq!(response["allowed"], true, "{}/{}: {response}", s.namespace, s.name);
            assert!(
                response.get("patch").is_none_or(Value::is_null),
                "{}/{} {}: {response}",
                s.namespace,
                s.name,
                v["kind"]
            );
        }
    }
    assert_eq!(seen, (5, 5));
}

/// A session Pod without the renderer's GPU annotation and without a GPU limit gets its
/// template's default, never a built-in one: a CPU template's Pod, or one naming no known
/// template, gets no GPU and no /dev/dri.
#[tokio::test]
async fn a_pod_without_the_gpu_annotation_gets_its_templates_default_not_a_gpu() {
    let mut cpu = VDITemplate::new(
        "office",
        VDITemplateSpec {
            image: "img:1".into(),
            display_name: None,
            description: None,
            resources: Some(vdi_crds::TemplateResources { default_gpu: Some(0), ..Default::default() }),
            env: vec![],
            home: None,
        },
    );
    cpu.metadata.name = Some("office".into());
    let mut with_cpu = state();
    with_cpu.templates = Templates::fixed([cpu]);
    for template in ["office", "no-such-template"] {
        let mut pod = fixture_pod();
        pod["metadata"]["annotations"] = json!({});
        pod["metadata"]["labels"]["vdi.kasm.io/template"] = json!(template);
        let r = review("CREATE", "", "Pod", "pods", pod.clone(), Value::Null, false);
        let (status, body) = call(with_cpu.clone(), "/mutate", serde_json::to_vec(&r).expect("json")).await;
        assert_eq!(status, StatusCode::OK);
        let response: Value = serde_json::from_slice(&body).expect("json");
        let out = patched(&response["response"], &pod);
        assert!(out["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"].is_null(), "{template}: {out}");
        assert!(!out.to_string().contains("/dev/dri"), "{template}");
    }
    // A GPU template's default still applies.
    let mut pod = fixture_pod();
    pod["metadata"]["annotations"] = json!({});
    let out =
        patched(&post("/mutate", &review("CREATE", "", "Pod", "pods", pod.clone(), Value::Null, false)).await, &pod);
    assert_eq!(out["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"], "1");
}

/// Nobody chooses a session password: a Secret created with one not in the generated form is
/// refused, and an update may not change it.
#[tokio::test]
async fn chosen_or_changed_passwords_are_refused() {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for weak in ["a", "hunter2", "correct horse battery staple"] {
        let object = secret(Some(json!({"password": b64(weak)})));
        let denied = post("/validate", &review("CREATE", "", "Secret", "secrets", object, Value::Null, false)).await;
        assert_eq!(denied["allowed"], false, "{weak}");
        assert!(denied["status"]["message"].as_str().unwrap_or("").contains("160 random bits"), "{denied}");
        let mut string_data = secret(None);
        string_data["stringData"] = json!({"password": weak});
        let denied =
            post("/validate", &review("CREATE", "", "Secret", "secrets", string_data, Value::Null, false)).await;
        assert_eq!(denied["allowed"], false, "stringData {weak}");
    }
    let object = secret(None);
    let generated = patched(
        &post("/mutate", &review("CREATE", "", "Secret", "secrets", object.clone(), Value::Null, false)).await,
        &object,
    );
    let ok = post("/validate", &review("CREATE", "", "Secret", "secrets", generated.clone(), Value::Null, false)).await;
    assert_eq!(ok["allowed"], true, "the generated one is kept: {ok}");
    let mut changed = generated.clone();
    changed["data"]["password"] = json!(b64("a"));
    let denied = post("/validate", &review("UPDATE", "", "Secret", "secrets", changed, generated.clone(), false)).await;
    assert_eq!(denied["allowed"], false);
    assert!(denied["status"]["message"].as_str().unwrap_or("").contains("cannot be changed"), "{denied}");
    let same = post("/validate", &review("UPDATE", "", "Secret", "secrets", generated.clone(), generated, false)).await;
    assert_eq!(same["allowed"], true, "an update that keeps it passes");
}

/// A review's `kind` is any caller's text: /metrics keeps a fixed set of labels whatever arrives.
#[tokio::test]
async fn junk_kinds_do_not_grow_the_metrics() {
    let st = state();
    for i in 0..25 {
        let mut r = review("CREATE", "", "Pod", "pods", fixture_pod(), Value::Null, false);
        r["request"]["kind"]["kind"] = json!(format!("Junk{i}{}", "x".repeat(1000)));
        let (status, _) = call(st.clone(), "/validate", serde_json::to_vec(&r).expect("json")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let res = app(st).oneshot(Request::get("/metrics").body(Body::empty()).expect("request")).await.expect("response");
    let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.expect("body");
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains("Junk"), "no caller-chosen label");
    assert!(text.contains(r#"kind="other""#), "{text}");
    assert!(text.len() < 16 * 1024, "{} bytes", text.len());
}

/// The ways around the rules a review found, each refused: a Pod without the session label in a
/// session namespace (privileged, `hostPath: /`), a privileged ephemeral container added to a
/// session Pod (`kubectl debug --profile=sysadmin`), the other baseline escapes, and a Pod that
/// carries another session's label to get its password and its traffic.
#[tokio::test]
async fn pods_cannot_escape_the_rules_or_impersonate_a_session() {
    let deny = |v: &Value, says: &str| {
        assert_eq!(v["allowed"], false, "{v}");
        let msg = v["status"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(says), "`{msg}` should say `{says}`");
    };
    let unlabelled = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "miner", "namespace": "team"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}],
                 "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}
    });
    let v = post("/validate", &review("CREATE", "", "Pod", "pods", unlabelled, Value::Null, false)).await;
    deny(&v, "unsafe Pod in a session namespace");
    deny(&v, "must not be privileged");
    deny(&v, "mounts host path /");

    let pod = fixture_pod();
    let mut debugged = pod.clone();
    debugged["spec"]["ephemeralContainers"] =
        json!([{"name": "debugger", "image": "busybox", "securityContext": {"privileged": true}}]);
    let mut r = review("UPDATE", "", "Pod", "pods", debugged, pod.clone(), false);
    r["request"]["subResource"] = json!("ephemeralcontainers");
    deny(&post("/validate", &r).await, "spec.ephemeralContainers[0]");

    for (field, value, says) in [
        ("hostPort", json!([{"containerPort": 22, "hostPort": 22}]), "port of the host"),
        ("seccomp", json!({"seccompProfile": {"type": "Unconfined"}}), "Unconfined"),
        ("procMount", json!({"procMount": "Unmasked"}), "unmask /proc"),
        ("escalation", json!({"allowPrivilegeEscalation": true}), "privilege escalation"),
        ("root", json!({"runAsUser": 0}), "must not run as root"),
        ("caps", json!({"capabilities": {"add": ["SYS_ADMIN"]}}), "SYS_ADMIN"),
    ] {
        let mut p = pod.clone();
        if field == "hostPort" {
            p["spec"]["containers"][0]["ports"] = value;
        } else {
            p["spec"]["containers"][0]["securityContext"] = value;
        }
        deny(&post("/validate", &review("CREATE", "", "Pod", "pods", p, Value::Null, false)).await, says);
    }
    let mut sysctl = pod.clone();
    sysctl["spec"]["securityContext"] = json!({"sysctls": [{"name": "kernel.core_pattern", "value": "|/x"}]});
    deny(
        &post("/validate", &review("CREATE", "", "Pod", "pods", sysctl, Value::Null, false)).await,
        "kernel.core_pattern",
    );

    let mut impostor = pod.clone();
    impostor["metadata"]["name"] = json!("mallory");
    deny(
        &post("/validate", &review("CREATE", "", "Pod", "pods", impostor, Value::Null, false)).await,
        "only session alice's own Pod",
    );
    let mut other_image = pod.clone();
    other_image["spec"]["containers"][0]["image"] = json!("evil.example/keylogger:1");
    deny(
        &post("/validate", &review("CREATE", "", "Pod", "pods", other_image, Value::Null, false)).await,
        "must run its template's image",
    );
    let v = post("/validate", &review("CREATE", "", "Pod", "pods", pod, Value::Null, false)).await;
    assert_eq!(v["allowed"], true, "the session's own Pod passes: {v}");
}

#[tokio::test]
async fn cpu_only_pod_gets_no_gpu_and_no_dri() {
    let mut pod = fixture_pod();
    pod["metadata"]["annotations"]["vdi.kasm.io/gpu"] = json!("0");
    let response = post("/mutate", &review("CREATE", "", "Pod", "pods", pod.clone(), Value::Null, false)).await;
    let out = patched(&response, &pod);
    assert!(out["spec"]["containers"][0]["resources"]["limits"].is_null());
    assert!(!out.to_string().contains("/dev/dri"));
}

#[tokio::test]
async fn pods_without_the_session_label_and_unknown_kinds_pass_unchanged() {
    let mut pod = fixture_pod();
    pod["metadata"]["labels"] = json!({"app": "other"});
    for (path, r) in [
        ("/mutate", review("CREATE", "", "Pod", "pods", pod.clone(), Value::Null, false)),
        (
            "/mutate",
            review(
                "CREATE",
                "",
                "ConfigMap",
                "configmaps",
                json!({"metadata": {"name": "x"}, "data": {}}),
                Value::Null,
                false,
            ),
        ),
        (
            "/validate",
            review(
                "CREATE",
                "apps",
                "Deployment",
                "deployments",
                json!({"metadata": {"name": "x"}, "spec": "nonsense"}),
                Value::Null,
                false,
            ),
        ),
    ] {
        let response = post(path, &r).await;
        assert_eq!(response["allowed"], true);
        assert!(response.get("patch").is_none_or(Value::is_null));
        assert!(response.get("warnings").is_none(), "nothing odd: {response}");
    }
    // Validated, the unlabelled Pod in a session namespace is allowed, and whoever applied it is
    // told (kubectl prints admission warnings) that it is no session's.
    let response = post("/validate", &review("CREATE", "", "Pod", "pods", pod, Value::Null, false)).await;
    assert_eq!(response["allowed"], true);
    let warnings = response["warnings"].as_array().map(Vec::len);
    assert_eq!(warnings, Some(1), "{response}");
    assert!(response["warnings"][0].as_str().is_some_and(|w| w.contains("no session's")), "{response}");
}

fn secret(data: Option<Value>) -> Value {
    let mut s = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "alice-auth", "namespace": "team", "labels": {"vdi.kasm.io/session": "alice", "app.kubernetes.io/component": "auth"}}
    });
    if let Some(d) = data {
        s["data"] = d;
    }
    s
}

#[tokio::test]
async fn secret_gets_a_random_typable_password_once() {
    let object = secret(None);
    let r = review("CREATE", "", "Secret", "secrets", object.clone(), Value::Null, false);
    let response = post("/mutate", &r).await;
    let filled = patched(&response, &object);
    let encoded = filled["data"]["password"].as_str().expect("password set");
    let password =
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).expect("b64")).expect("utf8");
    let symbols = password.chars().filter(|c| *c != '-').count();
    assert!(symbols * 5 >= 128, "at least 128 bits: {symbols} base32 symbols");
    assert!(password.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    let other = patched(&post("/mutate", &r).await, &object);
    assert_ne!(other["data"]["password"], filled["data"]["password"], "each Secret gets its own");

    // Present already: never replaced.
    let kept = secret(Some(json!({"password": "aHVudGVyMg=="})));
    let response = post("/mutate", &review("CREATE", "", "Secret", "secrets", kept.clone(), Value::Null, false)).await;
    assert!(response.get("patch").is_none_or(Value::is_null));
    // An update that drops it is refused, and not silently refilled.
    let drop = review("UPDATE", "", "Secret", "secrets", secret(None), kept, false);
    assert!(post("/mutate", &drop).await.get("patch").is_none_or(Value::is_null));
    let denied = post("/validate", &drop).await;
    assert_eq!(denied["allowed"], false);
    assert!(denied["status"]["message"].as_str().expect("message").contains("removes `password`"));
}

/// With the TURN shared secret (which only the webhook holds), each session Secret gets its own
/// TURN REST pair, valid until the session's deadline and accepted by coturn's recipe; an
/// existing pair is never replaced.
#[tokio::test]
async fn secret_gets_its_own_turn_credentials_until_the_sessions_deadline() {
    let mut with_turn = state();
    with_turn.turn_secret = Some(std::sync::Arc::new(vdi_webhook::mutate::TurnSecret(b"platform-secret".to_vec())));
    let mut object = secret(None);
    object["metadata"]["annotations"] =
        json!({"vdi.kasm.io/timeout-seconds": "36000", "vdi.kasm.io/user": "alice@example.com"});
    let ask = |object: Value, old: Value, op: &'static str| {
        let state = with_turn.clone();
        async move {
            let r = review(op, "", "Secret", "secrets", object, old, false);
            let (status, body) = call(state, "/mutate", serde_json::to_vec(&r).expect("json")).await;
            assert_eq!(status, StatusCode::OK);
            let v: Value = serde_json::from_slice(&body).expect("json");
            v["response"].clone()
        }
    };
    let filled = patched(&ask(object.clone(), Value::Null, "CREATE").await, &object);
    let decode = |v: &Value| {
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v.as_str().expect("set")).expect("b64"))
            .expect("utf8")
    };
    let username = decode(&filled["data"]["turn-username"]);
    let password = decode(&filled["data"]["turn-password"]);
    assert!(filled["data"]["password"].is_string(), "the session password too");
    let (expiry, user) = username.split_once(':').expect("EXPIRY:USER");
    assert_eq!(user, "alice@example.com");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let expiry: u64 = expiry.parse().expect("unix time");
    assert!((now + 36_000 - 5..=now + 36_000 + 5).contains(&expiry), "valid for the session's 10h: {expiry} vs {now}");
    let expected = vdi_crds::turn::mint(
        b"platform-secret",
        "alice@example.com",
        expiry - 36_000,
        std::time::Duration::from_secs(36_000),
    );
    assert_eq!((username.as_str(), password.as_str()), (expected.username.as_str(), expected.password.as_str()));
    assert!(!filled.to_string().contains("platform-secret"), "the shared secret itself is never written");

    // A Secret that has its pair keeps it, on create and on update.
    let response = ask(filled.clone(), Value::Null, "CREATE").await;
    assert!(response.get("patch").is_none_or(Value::is_null), "{response}");
    let response = ask(filled.clone(), filled.clone(), "UPDATE").await;
    assert!(response.get("patch").is_none_or(Value::is_null), "{response}");
    // Without a shared secret (no TURN server), no pair.
    let plain = patched(
        &post("/mutate", &review("CREATE", "", "Secret", "secrets", object.clone(), Value::Null, false)).await,
        &object,
    );
    assert!(plain["data"].get("turn-username").is_none());
}

/// Anyone who may create a VDISession could name any `spec.user`: with the binding (the
/// binary's default), a person creates desktops only for themselves, the GitOps controller for
/// anybody.
#[tokio::test]
async fn a_person_may_create_a_session_only_for_themselves() {
    let mut bound = state();
    bound.gitops_accounts =
        Some(std::sync::Arc::new(vec!["system:serviceaccount:argocd:argocd-application-controller".into()]));
    let as_user = |who: &str, object: Value| {
        let mut r = review("CREATE", "vdi.kasm.io", "VDISession", "vdisessions", object, Value::Null, false);
        r["request"]["userInfo"]["username"] = json!(who);
        r
    };
    let for_bob = session("bob@example.com", "ubuntu-desktop", Value::Null, None);
    let denied = post_to(bound.clone(), "/validate", &as_user("jane@example.com", for_bob.clone())).await;
    assert_eq!(denied["allowed"], false, "{denied}");
    let msg = denied["status"]["message"].as_str().unwrap_or("");
    assert!(msg.contains("only for themselves") && msg.contains("jane@example.com"), "{msg}");
    let own = session("Jane@Example.com", "ubuntu-desktop", Value::Null, None);
    assert_eq!(post_to(bound.clone(), "/validate", &as_user("jane@example.com", own)).await["allowed"], true);
    let gitops = as_user("system:serviceaccount:argocd:argocd-application-controller", for_bob.clone());
    assert_eq!(post_to(bound.clone(), "/validate", &gitops).await["allowed"], true, "git may name anybody");
    let other_sa = as_user("system:serviceaccount:ci:deployer", for_bob);
    assert_eq!(post_to(bound, "/validate", &other_sa).await["allowed"], false, "another account may not");
}

fn session(user: &str, template: &str, resources: Value, timeout: Option<&str>) -> Value {
    let mut s = json!({
        "apiVersion": "vdi.kasm.io/v1alpha1", "kind": "VDISession",
        "metadata": {"name": "alice", "namespace": "team", "uid": "0d8f", "generation": 1},
        "spec": {"user": user, "template": template}
    });
    if !resources.is_null() {
        s["spec"]["resources"] = resources;
    }
    if let Some(t) = timeout {
        s["spec"]["timeout"] = json!(t);
    }
    s
}

fn session_review(op: &str, object: Value, old: Value) -> Value {
    review(op, "vdi.kasm.io", "VDISession", "vdisessions", object, old, false)
}

#[tokio::test]
async fn session_defaults_come_from_the_template_else_builtin() {
    let object = session("alice@example.com", "ubuntu-desktop", json!({"gpu": 2}), None);
    let out = patched(&post("/mutate", &session_review("CREATE", object.clone(), Value::Null)).await, &object);
    assert_eq!(out["spec"]["resources"], json!({"gpu": 2, "memory": "8Gi", "cpu": "4"}));
    assert_eq!(out["spec"]["timeout"], "8h");
    assert_eq!(out["metadata"]["uid"], "0d8f");

    let unknown = session("alice@example.com", "nope", Value::Null, Some("2h"));
    let out = patched(&post("/mutate", &session_review("CREATE", unknown.clone(), Value::Null)).await, &unknown);
    assert_eq!(out["spec"]["resources"], json!({"gpu": 1, "memory": "4Gi", "cpu": "2"}));
    assert_eq!(out["spec"]["timeout"], "2h");
}

async fn denial(r: &Value) -> String {
    let response = post("/validate", r).await;
    assert_eq!(response["allowed"], false, "{response}");
    response["status"]["message"].as_str().unwrap_or("").to_owned()
}

#[tokio::test]
async fn invalid_sessions_are_denied_with_a_clear_message() {
    let ok = session("alice@example.com", "ubuntu-desktop", json!({"gpu": 2}), Some("10h"));
    assert_eq!(post("/validate", &session_review("CREATE", ok.clone(), Value::Null)).await["allowed"], true);
    let cases = [
        (session("alice@example.com", "nope", Value::Null, None), "no VDITemplate named `nope`"),
        (session("alice@example.com", "ubuntu-desktop", json!({"gpu": 3}), None), "allows at most 2"),
        (session("alice@example.com", "ubuntu-desktop", json!({"memory": "64Gi"}), None), "out of bounds"),
        (session("alice@example.com", "ubuntu-desktop", json!({"memory": "64Mi"}), None), "out of bounds"),
        (session("alice@example.com", "ubuntu-desktop", Value::Null, Some("200h")), "168h"),
        // Non-ASCII once panicked the duration parser's dependency mid-review.
        (session("alice@example.com", "ubuntu-desktop", Value::Null, Some("0\u{a980}h")), "is not a duration"),
    ];
    for (object, want) in cases {
        let msg = denial(&session_review("CREATE", object, Value::Null)).await;
        assert!(msg.contains(want), "{want} in {msg}");
    }
    let msg =
        denial(&session_review("UPDATE", session("bob@example.com", "ubuntu-desktop", Value::Null, None), ok.clone()))
            .await;
    assert!(msg.contains("spec.user cannot change"), "{msg}");
    let mut other = ok.clone();
    other["spec"]["template"] = json!("office");
    let msg = denial(&session_review("UPDATE", other, ok)).await;
    assert!(msg.contains("spec.template cannot change"), "{msg}");
}

#[tokio::test]
async fn unsafe_session_pods_are_denied() {
    type Edit = fn(&mut Value);
    let mutations: [(&str, Edit); 5] = [
        ("must not be privileged", |p| p["spec"]["containers"][0]["securityContext"] = json!({"privileged": true})),
        ("adds capability SYS_ADMIN", |p| {
            p["spec"]["containers"][0]["securityContext"] = json!({"capabilities": {"add": ["SYS_ADMIN"]}})
        }),
        ("mounts host path /var/run/docker.sock", |p| {
            p["spec"]["volumes"] = json!([{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}])
        }),
        ("literal value", |p| {
            p["spec"]["containers"][0]["env"] = json!([{"name": "SELKIES_BASIC_AUTH_PASSWORD", "value": "hunter2"}])
        }),
        ("host's namespaces", |p| p["spec"]["hostPID"] = json!(true)),
    ];
    for (want, mutate) in mutations {
        let mut pod = fixture_pod();
        mutate(&mut pod);
        let msg = denial(&review("CREATE", "", "Pod", "pods", pod, Value::Null, false)).await;
        assert!(msg.contains(want), "{want} in {msg}");
        assert!(!msg.contains("hunter2"), "never echo a password");
    }
}

#[tokio::test]
async fn dry_run_is_answered_like_a_real_request() {
    let pod = fixture_pod();
    let real = post("/mutate", &review("CREATE", "", "Pod", "pods", pod.clone(), Value::Null, false)).await;
    let dry = post("/mutate", &review("CREATE", "", "Pod", "pods", pod, Value::Null, true)).await;
    assert_eq!(real, dry);
    let bad = session("alice@example.com", "nope", Value::Null, None);
    let mut dry_review = session_review("CREATE", bad.clone(), Value::Null);
    dry_review["request"]["dryRun"] = json!(true);
    assert_eq!(
        post("/validate", &session_review("CREATE", bad, Value::Null)).await,
        post("/validate", &dry_review).await
    );
}

#[tokio::test]
async fn malformed_bodies_get_400_and_oversized_413() {
    let valid: Value = serde_json::from_str(include_str!("fixtures/pod-create.json")).expect("fixture");
    let mut v1beta1 = valid.clone();
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let mut no_uid = valid.clone();
    no_uid["request"].as_object_mut().expect("request").remove("uid");
    let mut wrong_kind = valid.clone();
    wrong_kind["kind"] = json!("Pod");
    let mut bad_request = valid.clone();
    bad_request["request"]["operation"] = json!(42);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not json at all".to_vec(), "not JSON"),
        (b"".to_vec(), "not JSON"),
        (b"[]".to_vec(), "expected kind AdmissionReview"),
        (serde_json::to_vec(&wrong_kind).expect("json"), "expected kind AdmissionReview"),
        (serde_json::to_vec(&v1beta1).expect("json"), "admission.k8s.io/v1"),
        (serde_json::to_vec(&no_uid).expect("json"), "request.uid is missing"),
        (serde_json::to_vec(&bad_request).expect("json"), "not a valid AdmissionReview"),
    ];
    for (body, want) in cases {
        for path in ["/mutate", "/validate"] {
            let (status, text) = call(state(), path, body.clone()).await;
            let text = String::from_utf8_lossy(&text);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{want}: {text}");
            assert!(text.contains(want), "{want} in {text}");
        }
    }
    let (status, _) = call(state(), "/mutate", vec![b' '; vdi_webhook::MAX_BODY + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // A review the API server needs answered, about an object that does not parse.
    let mut unparsable = valid.clone();
    unparsable["request"]["object"]["spec"]["containers"] = json!("desktop");
    for path in ["/mutate", "/validate"] {
        let response = post(path, &unparsable).await;
        assert_eq!(response["allowed"], false);
        assert!(response["status"]["message"].as_str().expect("msg").contains("does not parse"), "{response}");
    }
}

#[tokio::test]
async fn metrics_count_requests_by_kind_operation_and_result() {
    let s = state();
    let r = serde_json::to_vec(&serde_json::from_str::<Value>(include_str!("fixtures/pod-create.json")).expect("f"))
        .expect("j");
    let _ = call(s.clone(), "/mutate", r).await;
    let _ = call(s.clone(), "/validate", b"{".to_vec()).await;
    let res = app(s).oneshot(Request::get("/metrics").body(Body::empty()).expect("req")).await.expect("ok");
    assert_eq!(res.status(), StatusCode::OK);
    let body = to_bytes(res.into_body(), usize::MAX).await.expect("body");
    for path in ["/healthz", "/readyz"] {
        let res = app(state()).oneshot(Request::get(path).body(Body::empty()).expect("req")).await.expect("ok");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains(r#"vdi_webhook_admission_requests_total{endpoint="mutate",kind="Pod",operation="CREATE",result="patched"} 1"#), "{text}");
    assert!(text.contains(r#"result="error""#), "{text}");
    assert!(text.contains("vdi_webhook_admission_duration_seconds_bucket"), "{text}");
    assert!(text.contains("vdi_webhook_certificate_expiry_timestamp_seconds"), "{text}");
}

/// Reviews are POSTs to their two paths; anything else is answered as a web server would.
#[tokio::test]
async fn other_methods_and_paths_are_refused() {
    for (method, path, want) in [
        ("GET", "/mutate", StatusCode::METHOD_NOT_ALLOWED),
        ("PUT", "/validate", StatusCode::METHOD_NOT_ALLOWED),
        ("POST", "/healthz", StatusCode::METHOD_NOT_ALLOWED),
        ("POST", "/mutate/", StatusCode::NOT_FOUND),
        ("GET", "/nothing", StatusCode::NOT_FOUND),
    ] {
        let req = Request::builder().method(method).uri(path).body(Body::empty()).expect("request");
        let res = app(state()).oneshot(req).await.expect("infallible");
        assert_eq!(res.status(), want, "{method} {path}");
    }
}

type Chunks = futures::channel::mpsc::Sender<Result<axum::body::Bytes, std::io::Error>>;

/// A review request whose body comes from the returned sender, `first` already sent.
fn stalled_review(
    service: &vdi_webhook::service::Admission,
    first: Vec<u8>,
) -> (Chunks, tokio::task::JoinHandle<Result<axum::response::Response, std::convert::Infallible>>) {
    let (mut tx, body) = futures::channel::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
    tx.try_send(Ok(first.into())).expect("first chunk");
    let req = Request::post("/mutate").body(Body::from_stream(body)).expect("request");
    (tx, tokio::spawn(service.clone().oneshot(req)))
}

/// Bodies that stop coming are answered 408 once the request's time is up, and until then they
/// keep no review waiting: a hundred stalled senders (a slow-loris crowd) and a real review,
/// answered at once.
#[tokio::test(start_paused = true)]
async fn stalled_bodies_time_out_and_keep_no_review_waiting() {
    let service = app(state());
    let stalled: Vec<_> = (0..100).map(|_| stalled_review(&service, b"{".to_vec())).collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let valid = include_bytes!("fixtures/pod-create.json").to_vec();
    let next = Request::post("/mutate").body(Body::from(valid.clone())).expect("request");
    let next = tokio::spawn(service.clone().oneshot(next));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(next.is_finished(), "a review waited behind stalled bodies");
    assert_eq!(next.await.expect("joined").expect("infallible").status(), StatusCode::OK);
    assert!(stalled.iter().all(|(_, answer)| !answer.is_finished()), "a stalled body was answered early");
    for (_tx, answer) in stalled {
        let res = answer.await.expect("joined").expect("infallible");
        assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
    }
}

/// The bytes bodies hold together are bounded: bodies that fill the budget make the next review
/// wait until their time is up, and it is answered then.
#[tokio::test(start_paused = true)]
async fn bodies_that_fill_the_byte_budget_make_the_next_review_wait() {
    let service = app(state());
    let per_body = vdi_webhook::MAX_BODY - 1;
    let held: Vec<_> = (0..vdi_webhook::MAX_BODY_BYTES_IN_FLIGHT / per_body)
        .map(|_| stalled_review(&service, vec![b' '; per_body]))
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let valid = include_bytes!("fixtures/pod-create.json").to_vec();
    let next = Request::post("/mutate").body(Body::from(valid)).expect("request");
    let next = tokio::spawn(service.clone().oneshot(next));
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(!next.is_finished(), "a review got past the budget of body bytes");
    for (_tx, answer) in held {
        assert_eq!(answer.await.expect("joined").expect("infallible").status(), StatusCode::REQUEST_TIMEOUT);
    }
    assert_eq!(next.await.expect("joined").expect("infallible").status(), StatusCode::OK);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Arbitrary bytes: never a panic, never a 5xx.
        #[test]
        fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..2048), validate in any::<bool>()) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("rt");
            let (status, _) = rt.block_on(call(state(), if validate { "/validate" } else { "/mutate" }, body));
            prop_assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{status}");
        }

        /// Arbitrary JSON in the object of a session Pod, Secret or VDISession review.
        #[test]
        fn arbitrary_objects(spec in arb_json(), kind in 0usize..3, validate in any::<bool>()) {
            let (group, k, res) = [("", "Pod", "pods"), ("", "Secret", "secrets"), ("vdi.kasm.io", "VDISession", "vdisessions")][kind];
            let object = json!({"metadata": {"name": "a", "labels": {"vdi.kasm.io/session": "a", "app.kubernetes.io/component": "auth"}}, "spec": spec.clone(), "data": spec});
            let r = review("CREATE", group, k, res, object, Value::Null, false);
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("rt");
            let (status, body) = rt.block_on(call(state(), if validate { "/validate" } else { "/mutate" }, serde_json::to_vec(&r).expect("json")));
            prop_assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{status}: {}", String::from_utf8_lossy(&body));
        }
    }
}

/// The benchmark's two bodies stay what `scripts/bench-webhook` says they are: a session Pod the
/// renderer completed (no patch) and one that still needs injections (a patch).
#[tokio::test]
async fn the_benchmark_bodies_are_a_complete_pod_and_one_that_needs_injections() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches");
    for (file, patched) in [("pod-review-complete.json", false), ("pod-review.json", true)] {
        let review: Value = serde_json::from_slice(&std::fs::read(root.join(file)).expect("body")).expect("JSON");
        let response = call(examples_state(), "/mutate", serde_json::to_vec(&review).expect("JSON")).await;
        let answer: Value = serde_json::from_slice(&response.1).expect("an AdmissionReview");
        assert_eq!(answer["response"]["allowed"], true, "{file}: {answer}");
        assert_eq!(answer["response"].get("patch").is_some(), patched, "{file}: {answer}");
    }
}
