//! What a reader of a folder sees: every YAML file at any depth, and each problem with the kind
//! callers tell apart.

use std::{fs, path::Path};

use vdi_documents::{Kind, Schemas, collect_files, read};

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

const TEMPLATE: &str =
    "apiVersion: vdi.kasm.io/v1alpha1\nkind: VDITemplate\nmetadata:\n  name: t\nspec:\n  image: example/desktop:1\n";

#[test]
fn a_folder_is_read_at_every_depth_and_each_problem_has_its_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a/b/c/template.yaml", TEMPLATE);
    write(dir.path(), "notes.txt", "not yaml: [");
    write(dir.path(), "cm.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n");
    write(dir.path(), "old.yaml", &TEMPLATE.replace("v1alpha1", "v1beta9"));
    write(dir.path(), "broken.yaml", "a: [1, 2\n");
    write(dir.path(), "typo.yaml", &TEMPLATE.replace("  image:", "  imagee:"));
    write(dir.path(), "list.yaml", "- 1\n- 2\n");
    let files = collect_files(&[dir.path().to_owned()]).expect("the folder is read");
    let names: Vec<String> =
        files.iter().map(|f| f.strip_prefix(dir.path()).expect("under the folder").display().to_string()).collect();
    assert_eq!(names, ["a/b/c/template.yaml", "broken.yaml", "cm.yml", "list.yaml", "old.yaml", "typo.yaml"]);
    let input = read(&files, &Schemas::new());
    assert_eq!(input.templates.len(), 1);
    let kind_of = |file: &str| {
        let d =
            input.diagnostics.iter().find(|d| d.file.ends_with(file)).unwrap_or_else(|| panic!("no problem in {file}"));
        (d.kind, d.pos.map(|p| p.line))
    };
    assert_eq!(kind_of("cm.yml"), (Kind::ForeignKind, Some(2)));
    assert_eq!(kind_of("old.yaml"), (Kind::UnservedVersion, Some(1)));
    assert_eq!(kind_of("broken.yaml").0, Kind::Syntax);
    assert_eq!(kind_of("typo.yaml").0, Kind::Schema);
    let typo = input.diagnostics.iter().find(|d| d.field.as_deref() == Some("spec.imagee"));
    assert_eq!(typo.map(|d| (d.kind, d.pos.map(|p| p.line))), Some((Kind::Schema, Some(6))), "{:?}", input.diagnostics);
    assert_eq!(kind_of("list.yaml").0, Kind::NotAnObject);
    assert!(!input.diagnostics.iter().any(|d| d.file.ends_with("template.yaml")), "{:?}", input.diagnostics);
}

#[test]
fn a_path_that_is_not_there_is_unreadable() {
    let err = collect_files(&["/nonexistent/vdi".into()]).expect_err("nothing there");
    assert_eq!(err.0[0].kind, Kind::Unreadable);
    assert!(err.to_string().contains("/nonexistent/vdi: cannot read"), "{err}");
}

/// The parser's own rules, as a person writing YAML for kubectl meets them: a key given twice is
/// an error at the second one (in plain words), a merge key and an anchor are expanded, `yes`
/// stays a string, and documents after an empty one keep their positions.
#[test]
fn yaml_is_read_as_kubectl_reads_it_with_located_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "dup.yaml", &TEMPLATE.replace("  name: t\n", "  name: t\n  name: u\n"));
    let anchors = "apiVersion: vdi.kasm.io/v1alpha1\nkind: VDITemplate\nmetadata:\n  name: base\n  labels: &l {team: yes}\n  annotations: *l\nspec:\n  image: example/desktop:1\n---\n---\napiVersion: vdi.kasm.io/v1alpha1\nkind: VDITemplate\nmetadata:\n  name: copy\nspec:\n  <<: {image: example/desktop:1}\n  imagee: x\n";
    write(dir.path(), "anchors.yaml", anchors);
    let files = collect_files(&[dir.path().to_owned()]).expect("the folder is read");
    let input = read(&files, &Schemas::new());
    let dup = input.diagnostics.iter().find(|d| d.file.ends_with("dup.yaml")).expect("a duplicate key is an error");
    assert_eq!((dup.kind, dup.pos.map(|p| p.line)), (Kind::Syntax, Some(5)), "{dup}");
    assert!(dup.to_string().contains("duplicate mapping key: name") && !dup.to_string().contains("Policy"), "{dup}");
    let base = input.templates.iter().find(|(t, _)| t.metadata.name.as_deref() == Some("base")).expect("base read");
    assert_eq!(base.0.metadata.labels.as_ref().and_then(|l| l.get("team")).map(String::as_str), Some("yes"));
    assert_eq!(base.0.metadata.annotations, base.0.metadata.labels, "the alias is expanded");
    // The merged copy carries the typo: it is found on its own line, past the empty document.
    let typo = input.diagnostics.iter().find(|d| d.file.ends_with("anchors.yaml")).expect("the typo is found");
    assert_eq!(
        (typo.kind, typo.field.as_deref(), typo.pos.map(|p| p.line)),
        (Kind::Schema, Some("spec.imagee"), Some(17))
    );
}
