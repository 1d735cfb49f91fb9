//! Every shipped topology (`lab/topologies/*/*.clab.yml`) parses, is playable by the
//! namespace runner, has its README and bind sources, and every wgrd config in it passes
//! `wgrd check`. No root needed.

use std::path::{Path, PathBuf};
use wgrd_lab::Topology;

fn topologies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies")
}

/// Every `<dir>/<name>/<name>.clab.yml`.
fn shipped() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(topologies_dir())
        .expect("lab/topologies")
        .flatten()
        .map(|e| e.path())
        .filter_map(|dir| {
            let name = dir.file_name()?.to_str()?.to_string();
            let f = dir.join(format!("{name}.clab.yml"));
            f.is_file().then_some(f)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_expected_topologies_are_shipped() {
    let names: Vec<String> = shipped()
        .iter()
        .map(|f| Topology::load(f).expect("parses").name)
        .collect();
    for want in ["mesh4", "hub-spoke", "interop", "site-gateway"] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
}

#[test]
fn every_shipped_topology_parses_and_is_complete() {
    for file in shipped() {
        let t = Topology::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let dir = file.parent().unwrap();
        assert_eq!(
            dir.file_name().unwrap().to_str().unwrap(),
            t.name,
            "{}: the lab name matches its directory",
            file.display()
        );
        assert!(
            t.warnings.is_empty(),
            "{}: {:?}",
            file.display(),
            t.warnings
        );
        assert!(dir.join("README.md").is_file(), "{}: README.md", t.name);
        assert!(!t.links.is_empty(), "{}: no links", t.name);
        for node in &t.nodes {
            assert_eq!(
                node.image.as_deref(),
                Some("wgrd-lab:latest"),
                "{}/{}: image built by lab/Dockerfile",
                t.name,
                node.name
            );
            for b in &node.binds {
                assert!(
                    b.host.exists(),
                    "{}/{}: bind source {} missing",
                    t.name,
                    node.name,
                    b.host.display()
                );
            }
            // Every link endpoint's node exists (checked by the parser) and every node is
            // linked to something.
            assert!(
                t.links
                    .iter()
                    .any(|l| l.a.node == node.name || l.b.node == node.name),
                "{}/{}: not linked",
                t.name,
                node.name
            );
        }
    }
}

#[test]
fn every_shipped_wgrd_config_passes_wgrd_check() {
    let wgrd = wgrd_tests::wgrd::wgrd_bin().expect("wgrd binary");
    let mut checked = 0;
    for file in shipped() {
        let t = Topology::load(&file).unwrap();
        for node in &t.nodes {
            for b in &node.binds {
                let conf = b.host.join("wgrd.toml");
                if !conf.is_file() {
                    continue;
                }
                let out = std::process::Command::new(&wgrd)
                    .args(["check", "-c"])
                    .arg(&conf)
                    .output()
                    .expect("run wgrd check");
                assert!(
                    out.status.success(),
                    "{}: {}",
                    conf.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 8, "only {checked} wgrd configs found");
}
