//! The CRD YAML checked in under `crds/` must match the types. Regenerate with
//! `BLESS=1 cargo test -p vdi-crds --test crd_yaml_current`.

use std::path::Path;

#[test]
fn checked_in_crds_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var_os("BLESS").is_some();
    for (file, yaml) in vdi_crds::crd_yaml::all() {
        let path = dir.join(file);
        if bless {
            std::fs::write(&path, &yaml).expect("write CRD");
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == yaml,
            "{} is out of date with the types in crds/src; regenerate with `BLESS=1 cargo test -p vdi-crds --test crd_yaml_current`",
            path.display()
        );
    }
}
