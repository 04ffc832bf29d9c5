//! `ferry manifests`: the objects of one migration parse as Kubernetes YAML and say what
//! the transfer pods need: MTC's labels, supplemental groups, restricted security, secret
//! references instead of credentials, and a passthrough route.

use std::fs;

use serde::Deserialize;
use serde_json::Value;
use tempfile::TempDir;

use crate::util::{ferry, run_guarded, Certs};

pub(super) const PLAN: &str = r#"
name: dvm-app
image: registry.example.com/ferry:0.1.0
routeHost: dvm-app.apps.target.example.com
cutover: true
source:
  namespace: shop
  supplementalGroups: "1000,2000"
  proxy: http://user:s3cret@proxy.corp:3128
  noProxy: .cluster.local,10.0.0.0/8
  resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 512Mi}}
target:
  namespace: shop-new
  supplementalGroups: [2000]
pvcs: [data, "logs:logs-restored"]
"#;

/// Every document of a YAML stream, as JSON values.
pub(super) fn parse_stream(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("a YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

fn render(tmp: &TempDir, extra: &[&str]) -> crate::util::Output {
    render_plan(tmp, PLAN, extra)
}

pub(super) fn render_plan(tmp: &TempDir, text: &str, extra: &[&str]) -> crate::util::Output {
    let plan = tmp.path().join("plan.yaml");
    fs::write(&plan, text).unwrap();
    let mut cmd = ferry();
    cmd.arg("manifests").arg("--plan").arg(&plan).args(extra);
    run_guarded(&mut cmd, "ferry manifests")
}

pub(super) fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among {objects:#?}"))
}

/// Every pod the objects run: Pods, and the pod templates of Jobs.
fn pods(objects: &[Value]) -> Vec<&Value> {
    objects
        .iter()
        .filter_map(|o| match o["kind"].as_str() {
            Some("Pod") => Some(o),
            Some("Job") => Some(&o["spec"]["template"]),
            _ => None,
        })
        .collect()
}

fn env<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
}

#[test]
fn manifests_describe_a_restricted_migration() {
    let tmp = TempDir::new().unwrap();
    let certs = Certs::with_names(&["dvm-app.apps.target.example.com"]);
    let certs_dir = certs.server_dir().parent().unwrap().to_path_buf();
    let out = render(&tmp, &["--certs", certs_dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.dump());
    let objects = parse_stream(&out.stdout);
    let kinds: Vec<(&str, &str)> = objects
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds.len(), 10, "{kinds:?}");
    for o in &objects {
        assert!(o["apiVersion"].is_string(), "{o}");
    }

    // Labels MTC's NetworkPolicies select on, on every pod.
    let pods = pods(&objects);
    assert_eq!(pods.len(), 3);
    for pod in pods {
        let labels = &pod["metadata"]["labels"];
        assert_eq!(labels["owner"], "directvolumemigration", "{pod}");
        assert_eq!(
            labels["app"], "directvolumemigration-rsync-transfer",
            "{pod}"
        );
        // Restricted security.
        let spec = &pod["spec"];
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            spec["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert!(
            spec["securityContext"].get("runAsUser").is_none(),
            "arbitrary UID"
        );
        let c = &spec["containers"][0];
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(
            c["securityContext"]["capabilities"]["drop"],
            serde_json::json!(["ALL"])
        );
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["runAsNonRoot"], true);
        assert_eq!(c["image"], "registry.example.com/ferry:0.1.0");
    }

    // Target: groups, volumes, readiness on the serve port, TLS from its Secret.
    let target = find(&objects, "Pod", "dvm-app-target");
    assert_eq!(target["metadata"]["namespace"], "shop-new");
    assert_eq!(
        target["spec"]["securityContext"]["supplementalGroups"],
        serde_json::json!([2000])
    );
    let serve = &target["spec"]["containers"][0];
    assert_eq!(
        env(serve, "FERRY_SUPPLEMENTAL_GROUPS").unwrap()["value"],
        "2000"
    );
    let args: Vec<&str> = serve["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "serve");
    assert!(args.contains(&"data=/mnt/data"), "{args:?}");
    assert!(!args.contains(&"--max-streams"), "{args:?}");
    assert!(
        args.contains(&"logs-restored=/mnt/logs-restored"),
        "{args:?}"
    );
    assert_eq!(serve["readinessProbe"]["tcpSocket"]["port"], 6443);
    let volumes = target["spec"]["volumes"].as_array().unwrap();
    assert!(volumes
        .iter()
        .any(|v| v["secret"]["secretName"] == "dvm-app-server-tls"));
    assert!(volumes
        .iter()
        .any(|v| v["persistentVolumeClaim"]["claimName"] == "logs-restored"));

    // Service and passthrough Route with the route host.
    let service = find(&objects, "Service", "dvm-app-target");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], 6443);
    for (k, v) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&target["metadata"]["labels"][k], v, "selector {k}");
    }
    let route = find(&objects, "Route", "dvm-app-target");
    assert_eq!(route["apiVersion"], "route.openshift.io/v1");
    assert_eq!(route["spec"]["host"], "dvm-app.apps.target.example.com");
    assert_eq!(route["spec"]["tls"]["termination"], "passthrough");
    assert_eq!(route["spec"]["to"]["name"], "dvm-app-target");

    // Source pods: one Job per PVC, proxy from a Secret, summary as termination message.
    let job = find(&objects, "Job", "dvm-app-push-logs");
    assert_eq!(job["metadata"]["namespace"], "shop");
    assert_eq!(job["metadata"]["annotations"]["ferry/source-pvc"], "logs");
    // A blip is retried in the pod (--retries, default 5); a lost pod is replaced a
    // few times; what no new pod can fix (usage, no space, per-file errors) fails it.
    assert_eq!(job["spec"]["backoffLimit"], 3);
    let fail = &job["spec"]["podFailurePolicy"]["rules"][0];
    assert_eq!(fail["action"], "FailJob");
    assert_eq!(fail["onExitCodes"]["containerName"], "ferry-push");
    assert_eq!(
        fail["onExitCodes"]["values"],
        serde_json::json!([1, 2, 11, 12, 23])
    );
    let push = &job["spec"]["template"];
    assert_eq!(push["spec"]["restartPolicy"], "Never");
    assert_eq!(
        push["spec"]["securityContext"]["supplementalGroups"],
        serde_json::json!([1000, 2000])
    );
    let c = &push["spec"]["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        &args[..3],
        [
            "push",
            "/mnt/logs",
            "ferry://dvm-app.apps.target.example.com:443/logs-restored"
        ]
    );
    assert!(args
        .windows(2)
        .any(|w| w == ["--summary-file", "/dev/termination-log"]));
    assert!(args.contains(&"--delete"), "cutover pushes with --delete");
    assert!(args.windows(2).any(|w| w == ["--retries", "5"]), "{args:?}");
    assert!(!args.contains(&"--streams"), "no streams: auto, {args:?}");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
    let proxy = env(c, "HTTPS_PROXY").unwrap();
    assert!(
        proxy.get("value").is_none(),
        "proxy credentials in the pod spec: {proxy}"
    );
    assert_eq!(proxy["valueFrom"]["secretKeyRef"]["name"], "dvm-app-proxy");
    assert_eq!(proxy["valueFrom"]["secretKeyRef"]["key"], "HTTPS_PROXY");
    assert_eq!(
        env(c, "NO_PROXY").unwrap()["value"],
        ".cluster.local,10.0.0.0/8"
    );
    assert_eq!(
        env(c, "FERRY_SUPPLEMENTAL_GROUPS").unwrap()["value"],
        "1000,2000"
    );
    let src_volumes = push["spec"]["volumes"].as_array().unwrap();
    assert!(src_volumes
        .iter()
        .any(|v| v["persistentVolumeClaim"]["claimName"] == "logs"));
    assert!(src_volumes
        .iter()
        .any(|v| v["secret"]["secretName"] == "dvm-app-client-tls"));
    find(&objects, "Job", "dvm-app-push-data");
    // The credentials appear only inside the proxy Secret, encoded.
    assert!(!out.stdout.contains("s3cret"), "credentials in clear text");
    let secret = find(&objects, "Secret", "dvm-app-proxy");
    assert_eq!(secret["metadata"]["namespace"], "shop");
    assert!(secret["data"]["HTTPS_PROXY"].is_string());

    // TLS Secrets carry the `ferry certs` files.
    let server_tls = find(&objects, "Secret", "dvm-app-server-tls");
    assert_eq!(server_tls["type"], "kubernetes.io/tls");
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        assert!(
            server_tls["data"][key]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{key}"
        );
    }
    assert_eq!(
        find(&objects, "Secret", "dvm-app-client-tls")["metadata"]["namespace"],
        "shop"
    );

    // NetworkPolicies admit the transfer pods on both sides.
    let policies: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "NetworkPolicy")
        .collect();
    assert_eq!(policies.len(), 2);
    for policy in &policies {
        let selected = &policy["spec"]["podSelector"]["matchLabels"];
        assert_eq!(selected["owner"], "directvolumemigration");
        assert_eq!(selected["app"], "directvolumemigration-rsync-transfer");
        assert_eq!(policy["spec"]["egress"], serde_json::json!([{}]));
    }
    let target_policy = policies
        .iter()
        .find(|p| p["metadata"]["namespace"] == "shop-new")
        .unwrap();
    assert_eq!(
        target_policy["spec"]["ingress"][0]["ports"][0]["port"],
        6443
    );
}

#[test]
fn manifests_can_be_written_one_file_per_object() {
    let tmp = TempDir::new().unwrap();
    let out_dir = tmp.path().join("out");
    let out = render(&tmp, &["--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.dump());
    // Without --certs there are no TLS Secrets, and a note says so.
    assert!(out.stderr.contains("no --certs given"), "{}", out.dump());
    let mut files: Vec<String> = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 8, "{files:?}");
    assert!(
        files.contains(&"03-target-route-dvm-app-target.yaml".to_string()),
        "{files:?}"
    );
    for file in &files {
        let docs = parse_stream(&fs::read_to_string(out_dir.join(file)).unwrap());
        assert_eq!(docs.len(), 1, "{file}");
        assert!(docs[0]["kind"].is_string(), "{file}");
    }
}

/// The proxy Secret holds the proxy password and the TLS Secrets the keys: their files
/// are the owner's alone, even where an older copy was readable by everyone.
#[test]
fn secret_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new().unwrap();
    let certs = Certs::new();
    let out_dir = tmp.path().join("out");
    let certs_dir = certs.server_dir().parent().unwrap().to_path_buf();
    let args = [
        "--out",
        out_dir.to_str().unwrap(),
        "--certs",
        certs_dir.to_str().unwrap(),
    ];
    let out = render(&tmp, &args);
    assert_eq!(out.code, Some(0), "{}", out.dump());
    let files = || {
        fs::read_dir(&out_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect::<Vec<_>>()
    };
    for file in files() {
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = render(&tmp, &args);
    assert_eq!(out.code, Some(0), "{}", out.dump());
    let mut secrets = 0;
    for file in files() {
        let kind = parse_stream(&fs::read_to_string(&file).unwrap())[0]["kind"].clone();
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        if kind == "Secret" {
            secrets += 1;
            assert_eq!(mode, 0o600, "{}", file.display());
        } else {
            assert_eq!(mode & 0o044, 0o044, "{}: {mode:o}", file.display());
        }
    }
    assert_eq!(secrets, 3, "the proxy Secret and two TLS Secrets");
}

#[test]
fn a_bad_plan_is_a_usage_error_that_names_the_field() {
    let tmp = TempDir::new().unwrap();
    let plan = tmp.path().join("plan.yaml");
    fs::write(&plan, PLAN.replace("routeHost:", "routHost:")).unwrap();
    let out = run_guarded(
        ferry().arg("manifests").arg("--plan").arg(&plan),
        "ferry manifests",
    );
    assert_eq!(out.code, Some(1), "{}", out.dump());
    assert!(out.stderr.contains("routHost"), "{}", out.dump());
}

#[test]
fn a_block_mode_pvc_is_a_device_in_both_pods_and_the_push_sends_the_device() {
    let tmp = TempDir::new().unwrap();
    let plan = PLAN.replace(
        r#"pvcs: [data, "logs:logs-restored"]"#,
        "pvcs: [data, {src: disk, dst: disk-new, volumeMode: Block}]",
    );
    let out = render_plan(&tmp, &plan, &[]);
    assert_eq!(out.code, Some(0), "{}", out.dump());
    let objects = parse_stream(&out.stdout);

    let job = find(&objects, "Job", "dvm-app-push-disk");
    let push = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(push["args"][1], "/dev/ferry/disk", "{push}");
    assert_eq!(
        push["volumeDevices"],
        serde_json::json!([{"name": "pvc", "devicePath": "/dev/ferry/disk"}])
    );
    let mounts = push["volumeMounts"].as_array().unwrap();
    assert!(mounts.iter().all(|m| m["name"] != "pvc"), "{push}");

    let target = find(&objects, "Pod", "dvm-app-target");
    let serve = &target["spec"]["containers"][0];
    let args: Vec<&str> = serve["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"disk-new=/dev/ferry/disk-new"), "{args:?}");
    assert!(args.contains(&"data=/mnt/data"), "{args:?}");
    assert_eq!(
        serve["volumeDevices"],
        serde_json::json!([{"name": "pvc-1", "devicePath": "/dev/ferry/disk-new"}])
    );
    // The filesystem-mode PVC beside it is still mounted.
    let mounts = serve["volumeMounts"].as_array().unwrap();
    assert!(
        mounts.iter().any(|m| m["mountPath"] == "/mnt/data"),
        "{serve}"
    );
    assert!(mounts.iter().all(|m| m["name"] != "pvc-1"), "{serve}");
}
