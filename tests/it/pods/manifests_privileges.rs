//! `ferry manifests` with `privileges:` per side: `least` pods carry exactly the
//! capabilities the capability tests gave ferry, `root` is the privileged shape, and
//! the default stays restricted; every security field is one the Kubernetes API has.

use serde_json::Value;
use tempfile::TempDir;

use super::manifests::{find, parse_stream, render_plan, PLAN};

/// The fields of the Kubernetes API objects a `least` or `root` pod adds, as the API
/// defines them (core/v1 SecurityContext and PodSecurityContext, batch/v1 JobSpec): a
/// misspelt field would be dropped by a lenient apply and refused by a strict one.
const CONTAINER_SECURITY_FIELDS: &[&str] = &[
    "allowPrivilegeEscalation",
    "appArmorProfile",
    "capabilities",
    "privileged",
    "procMount",
    "readOnlyRootFilesystem",
    "runAsGroup",
    "runAsNonRoot",
    "runAsUser",
    "seLinuxOptions",
    "seccompProfile",
    "windowsOptions",
];
const POD_SECURITY_FIELDS: &[&str] = &[
    "appArmorProfile",
    "fsGroup",
    "fsGroupChangePolicy",
    "runAsGroup",
    "runAsNonRoot",
    "runAsUser",
    "seLinuxOptions",
    "seccompProfile",
    "supplementalGroups",
    "supplementalGroupsPolicy",
    "sysctls",
    "windowsOptions",
];

fn assert_fields(value: &Value, allowed: &[&str]) {
    for key in value.as_object().expect("an object").keys() {
        assert!(
            allowed.contains(&key.as_str()),
            "unknown field {key} in {value}"
        );
    }
}

#[test]
fn least_pods_carry_exactly_the_capabilities_each_side_needs() {
    let tmp = TempDir::new().unwrap();
    let plan = PLAN
        .replace(
            "  namespace: shop\n",
            "  namespace: shop\n  privileges: least\n",
        )
        .replace(
            "  namespace: shop-new\n",
            "  namespace: shop-new\n  privileges: least\n",
        )
        .replace("cutover: true\n", "cutover: true\nretries: 2\n");
    let out = render_plan(&tmp, &plan, &[]);
    assert_eq!(out.code, Some(0), "{}", out.dump());
    let objects = parse_stream(&out.stdout);
    let upper = |caps: &str| -> Value {
        caps.split(',')
            .map(|c| c.to_ascii_uppercase())
            .collect::<Vec<_>>()
            .into()
    };
    let target = find(&objects, "Pod", "dvm-app-target");
    let job = find(&objects, "Job", "dvm-app-push-data");
    for (pod, caps) in [
        (target, upper(super::TARGET_CAPS)),
        (&job["spec"]["template"], upper(super::SOURCE_CAPS)),
    ] {
        let pod_sc = &pod["spec"]["securityContext"];
        assert_fields(pod_sc, POD_SECURITY_FIELDS);
        assert_eq!(pod_sc["runAsNonRoot"], true);
        assert_eq!(pod_sc["runAsUser"], 1001);
        let sc = &pod["spec"]["containers"][0]["securityContext"];
        assert_fields(sc, CONTAINER_SECURITY_FIELDS);
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
        // Exactly what the capability tests gave ferry (pods::capabilities), sorted
        // as the kernel numbers them.
        let mut want: Vec<&str> = caps
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let mut got: Vec<&str> = sc["capabilities"]["add"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "{sc}");
        // File capabilities only count without no_new_privs.
        assert_eq!(sc["allowPrivilegeEscalation"], true);
        assert_eq!(sc["runAsUser"], 1001);
        assert!(sc.get("privileged").is_none(), "{sc}");
    }
    let args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap();
    assert!(
        args.windows(2).any(|w| w[0] == "--retries" && w[1] == "2"),
        "{args:?}"
    );

    // root: MTC's privileged shape; retries: 0 pushes without --retries.
    let plan = PLAN
        .replace(
            "  namespace: shop\n",
            "  namespace: shop\n  privileges: root\n",
        )
        .replace("cutover: true\n", "cutover: true\nretries: 0\n");
    let out = render_plan(&tmp, &plan, &[]);
    assert_eq!(out.code, Some(0), "{}", out.dump());
    let objects = parse_stream(&out.stdout);
    let pod = &find(&objects, "Job", "dvm-app-push-data")["spec"]["template"];
    let sc = &pod["spec"]["containers"][0]["securityContext"];
    assert_fields(sc, CONTAINER_SECURITY_FIELDS);
    assert_eq!(sc["privileged"], true);
    assert_eq!(sc["runAsUser"], 0);
    assert_eq!(pod["spec"]["securityContext"]["runAsUser"], 0);
    let args = pod["spec"]["containers"][0]["args"].as_array().unwrap();
    assert!(!args.iter().any(|a| a == "--retries"), "{args:?}");
    // The other side keeps the default, restricted.
    let target = find(&objects, "Pod", "dvm-app-target");
    let sc = &target["spec"]["containers"][0]["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert!(sc["capabilities"].get("add").is_none(), "{sc}");
}
