//! Every shape `ferry manifests` renders (privileges none, least and root; a block-mode
//! PVC pair; retries; streams) passes strict validation against the Kubernetes API's own
//! OpenAPI schemas (`kubernetes-validate --strict`, the schemas of the named Kubernetes
//! versions, bundled in the package that `.ci/run` installs): no unknown field, no
//! missing required one, every type right. The OpenShift Route has no schema there and
//! is checked by the manifests tests instead.

use std::process::Command;

use tempfile::TempDir;

use super::manifests::{render_plan, PLAN};

/// The oldest Kubernetes the rendered Jobs fit (podFailurePolicy as 1.30 defines it:
/// OpenShift 4.17), and the newest schema the validator bundles.
const VERSIONS: &[&str] = &["1.30.0", "1.37.0"];

fn plans() -> Vec<(&'static str, String)> {
    let sides = |privileges: &str| {
        PLAN.replace(
            "  namespace: shop\n",
            &format!("  namespace: shop\n  privileges: {privileges}\n"),
        )
        .replace(
            "  namespace: shop-new\n",
            &format!("  namespace: shop-new\n  privileges: {privileges}\n"),
        )
    };
    vec![
        ("none", PLAN.to_string()),
        (
            "least",
            sides("least").replace("cutover: true\n", "cutover: true\nretries: 2\n"),
        ),
        (
            "root",
            sides("root").replace(
                "cutover: true\n",
                "cutover: true\nretries: 0\nstreams: 12\n",
            ),
        ),
        (
            "block",
            PLAN.replace(
                r#"pvcs: [data, "logs:logs-restored"]"#,
                "pvcs: [data, {src: disk, dst: disk-new, volumeMode: Block}]",
            ),
        ),
    ]
}

#[test]
fn every_rendered_shape_passes_strict_kubernetes_schema_validation() {
    for (shape, plan) in plans() {
        let tmp = TempDir::new().unwrap();
        let out = render_plan(&tmp, &plan, &[]);
        assert_eq!(out.code, Some(0), "{shape}: {}", out.dump());
        let rendered = tmp.path().join("rendered.yaml");
        std::fs::write(&rendered, &out.stdout).unwrap();
        for version in VERSIONS {
            let check = Command::new("python3")
                .args(["-m", "kubernetes_validate", "--strict", "--no-warn", "-k"])
                .arg(version)
                .arg(&rendered)
                .output()
                .expect("python3");
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
            assert!(
                !said.contains("No module named kubernetes_validate"),
                "the schema validator is missing: `python3 -m pip install kubernetes-validate` \
                 (bash .ci/run installs it)"
            );
            assert!(
                check.status.success(),
                "{shape} pods against Kubernetes {version}:\n{said}\n{}",
                out.stdout
            );
        }
    }
}
