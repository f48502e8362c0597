//! The web client's logic (signalling, pacing, keys, pointer, clipboard, overlay), unit-tested with
//! Node's own test runner on the very modules the agent serves.

use std::process::Command;

#[test]
fn the_web_clients_modules_pass_their_unit_tests() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let out = Command::new("node")
        .args(["--test", "test/"])
        .current_dir(&dir)
        .output()
        .expect("node runs (scripts/install-test-deps installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    // Every module has tests, and they ran.
    let pass = text.lines().find_map(|l| l.strip_prefix("# pass ")).and_then(|n| n.trim().parse::<u32>().ok());
    assert!(pass.is_some_and(|n| n >= 20), "{text}");
}

/// Every module the page imports is one the agent serves, and every served one is imported.
#[test]
fn the_agent_serves_exactly_the_modules_the_page_imports() {
    let served: Vec<&str> = vdi_agent::http::CLIENT_MODULES.iter().map(|(n, _)| *n).collect();
    let mut imported = vec!["main.js".to_owned()];
    for (_, body) in vdi_agent::http::CLIENT_MODULES {
        for line in body.lines().filter(|l| l.starts_with("import ")) {
            let name = line.rsplit("\"./").next().and_then(|r| r.split('"').next()).expect("an import names its file");
            imported.push(name.to_owned());
        }
    }
    imported.sort();
    imported.dedup();
    let mut served_sorted = served.clone();
    served_sorted.sort();
    assert_eq!(imported, served_sorted);
    let on_disk = std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/js"))
        .expect("static/js")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .count();
    assert_eq!(on_disk, served.len(), "a module in static/js that the agent does not serve");
}
