//! The objects of one migration, as JSON values (YAML on output).
//!
//! ```text
//! target cluster: Secret server-tls, Pod target (ferry serve), Service, Route (passthrough),
//!                 NetworkPolicy (ingress on 6443, egress)
//! source cluster: Secret client-tls, Secret proxy, Job push-SRC per PVC (ferry push),
//!                 NetworkPolicy (egress)
//! ```
//!
//! Every transfer pod carries MTC's labels (`owner: directvolumemigration`,
//! `app: directvolumemigration-rsync-transfer`) so existing NetworkPolicies keep working.
//! Its security follows the side's `privileges:` (see `security.rs`); the default is
//! restricted pod security: any non-root UID, no capabilities, no privilege escalation,
//! RuntimeDefault seccomp, read-only root filesystem. The source Jobs are in `source.rs`.

use serde_json::{json, Map, Value};

use super::plan::{Plan, PvcPair};
use super::security::{container_security, pod_security};
use super::source::source_job;
use super::streams;
use crate::capabilities::least_caps;
use ferry_engine::Side;

/// The port `ferry serve` listens on inside the target pod (stunnel's in MTC).
pub const SERVE_PORT: u16 = 6443;
pub(super) const TLS_MOUNT: &str = "/etc/ferry/tls";
/// Where a block-mode PVC appears in a pod (`volumeDevices`), one device per PVC name.
pub(super) const BLOCK_DEVICES: &str = "/dev/ferry";
pub(super) const TERMINATION_LOG: &str = "/dev/termination-log";

/// Which cluster an object belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cluster {
    Source,
    Target,
}

impl Cluster {
    pub fn name(self) -> &'static str {
        match self {
            Cluster::Source => "source",
            Cluster::Target => "target",
        }
    }
}

/// One rendered object.
pub struct Object {
    pub cluster: Cluster,
    pub value: Value,
}

impl Object {
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("object")
    }

    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("unnamed")
    }
}

/// The three files of a Kubernetes TLS secret, as read from a `ferry certs` half.
pub struct TlsFiles {
    pub crt: Vec<u8>,
    pub key: Vec<u8>,
    pub ca: Vec<u8>,
}

/// Everything the renderer needs besides the plan.
pub struct Inputs<'a> {
    pub plan: &'a Plan,
    pub pairs: Vec<PvcPair>,
    pub source_groups: Vec<u32>,
    pub target_groups: Vec<u32>,
    pub server_tls: Option<TlsFiles>,
    pub client_tls: Option<TlsFiles>,
}

pub fn render(inputs: &Inputs<'_>) -> Vec<Object> {
    let plan = inputs.plan;
    let n = Names::new(&plan.name);
    let mut out = Vec::new();
    let target = |value| Object {
        cluster: Cluster::Target,
        value,
    };
    let source = |value| Object {
        cluster: Cluster::Source,
        value,
    };
    let tns = plan.target.namespace.as_str();
    let sns = plan.source.namespace.as_str();

    if let Some(tls) = &inputs.server_tls {
        out.push(target(tls_secret(&n.server_tls, tns, &plan.name, tls)));
    }
    out.push(target(target_pod(inputs, &n)));
    out.push(target(service(&n, tns, &plan.name)));
    out.push(target(route(&n, tns, &plan.name, &plan.route_host)));
    out.push(target(network_policy(
        &n.policy,
        tns,
        &plan.name,
        Cluster::Target,
    )));

    if let Some(tls) = &inputs.client_tls {
        out.push(source(tls_secret(&n.client_tls, sns, &plan.name, tls)));
    }
    if let Some(proxy) = &plan.source.proxy {
        out.push(source(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata(&n.proxy, sns, &plan.name, None),
            "type": "Opaque",
            "data": {"HTTPS_PROXY": b64(proxy.as_bytes())},
        })));
    }
    for pair in &inputs.pairs {
        out.push(source(source_job(inputs, &n, pair)));
    }
    out.push(source(network_policy(
        &n.policy,
        sns,
        &plan.name,
        Cluster::Source,
    )));
    out
}

/// Object names, all from the plan's `name`.
pub(super) struct Names {
    pub(super) target: String,
    pub(super) server_tls: String,
    pub(super) client_tls: String,
    pub(super) proxy: String,
    pub(super) policy: String,
    pub(super) prefix: String,
}

impl Names {
    fn new(prefix: &str) -> Names {
        Names {
            target: format!("{prefix}-target"),
            server_tls: format!("{prefix}-server-tls"),
            client_tls: format!("{prefix}-client-tls"),
            proxy: format!("{prefix}-proxy"),
            policy: format!("{prefix}-transfer"),
            prefix: prefix.to_string(),
        }
    }

    pub(super) fn push(&self, src: &str) -> String {
        format!("{}-push-{src}", self.prefix)
    }
}

/// MTC's transfer-pod labels plus Ferry's own.
fn labels(instance: &str, component: Option<&str>) -> Value {
    let mut labels = json!({
        "owner": "directvolumemigration",
        "app": "directvolumemigration-rsync-transfer",
        "app.kubernetes.io/name": "ferry",
        "app.kubernetes.io/instance": instance,
    });
    if let Some(component) = component {
        labels["app.kubernetes.io/component"] = json!(component);
    }
    labels
}

pub(super) fn metadata(
    name: &str,
    namespace: &str,
    instance: &str,
    component: Option<&str>,
) -> Value {
    json!({"name": name, "namespace": namespace, "labels": labels(instance, component)})
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn tls_secret(name: &str, namespace: &str, instance: &str, tls: &TlsFiles) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(name, namespace, instance, None),
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": b64(&tls.crt), "tls.key": b64(&tls.key), "ca.crt": b64(&tls.ca)},
    })
}

/// `FERRY_SUPPLEMENTAL_GROUPS`: ferry checks at start that it holds the groups the pod
/// asked for, and says so plainly if the admission policy took them away.
pub(super) fn groups_env(groups: &[u32]) -> Option<Value> {
    (!groups.is_empty()).then(|| {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        json!({"name": "FERRY_SUPPLEMENTAL_GROUPS", "value": list.join(",")})
    })
}

pub(super) struct Container<'a> {
    pub(super) role: &'a str,
    pub(super) image: &'a str,
    pub(super) args: Vec<String>,
    pub(super) env: Vec<Value>,
    pub(super) mounts: Vec<Value>,
    pub(super) resources: Option<&'a Value>,
    pub(super) security: Value,
}

pub(super) fn container(spec: Container<'_>) -> Map<String, Value> {
    let Container {
        role,
        image,
        args,
        env,
        mounts,
        resources,
        security,
    } = spec;
    let mut c = Map::new();
    c.insert("name".into(), json!(role));
    c.insert("image".into(), json!(image));
    c.insert("command".into(), json!(["/ferry"]));
    c.insert("args".into(), json!(args));
    if !env.is_empty() {
        c.insert("env".into(), json!(env));
    }
    c.insert("volumeMounts".into(), json!(mounts));
    c.insert("securityContext".into(), security);
    c.insert("terminationMessagePath".into(), json!(TERMINATION_LOG));
    c.insert(
        "terminationMessagePolicy".into(),
        json!("FallbackToLogsOnError"),
    );
    if let Some(resources) = resources {
        c.insert("resources".into(), resources.clone());
    }
    c
}

fn target_pod(inputs: &Inputs<'_>, n: &Names) -> Value {
    let plan = inputs.plan;
    let mut args: Vec<String> = [
        "serve",
        "--listen",
        &format!("0.0.0.0:{SERVE_PORT}"),
        "--tls-dir",
        TLS_MOUNT,
    ]
    .map(String::from)
    .to_vec();
    let mut mounts = vec![json!({"name": "tls", "mountPath": TLS_MOUNT, "readOnly": true})];
    let mut devices = Vec::new();
    let mut volumes = vec![json!({"name": "tls", "secret": {"secretName": n.server_tls}})];
    for (i, pair) in inputs.pairs.iter().enumerate() {
        let name = format!("pvc-{i}");
        let mount = if pair.block {
            let path = format!("{BLOCK_DEVICES}/{}", pair.dst);
            devices.push(json!({"name": name, "devicePath": path}));
            path
        } else {
            let path = format!("/mnt/{}", pair.dst);
            mounts.push(json!({"name": name, "mountPath": path}));
            path
        };
        args.extend(["--volume".to_string(), format!("{}={mount}", pair.dst)]);
        volumes.push(json!({
            "name": format!("pvc-{i}"),
            "persistentVolumeClaim": {"claimName": pair.dst},
        }));
    }
    args.extend(streams::serve_args(plan.streams));
    let privileges = plan.target.privileges;
    let mut c = container(Container {
        role: "ferry-serve",
        image: &plan.image,
        args,
        env: groups_env(&inputs.target_groups).into_iter().collect(),
        mounts,
        resources: plan.target.resources.as_ref(),
        security: container_security(privileges, &least_caps(Side::Target)),
    });
    if !devices.is_empty() {
        c.insert("volumeDevices".into(), json!(devices));
    }
    c.insert(
        "ports".into(),
        json!([{"name": "ferry", "containerPort": SERVE_PORT, "protocol": "TCP"}]),
    );
    // `ferry serve` drops a connection that never says Hello without counting it as a
    // session, so a TCP probe does not disturb `--once` or the logs' meaning.
    c.insert(
        "readinessProbe".into(),
        json!({"tcpSocket": {"port": SERVE_PORT}, "periodSeconds": 5, "failureThreshold": 3}),
    );
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata(&n.target, &plan.target.namespace, &plan.name, Some("target")),
        "spec": {
            "restartPolicy": "Always",
            "securityContext": pod_security(privileges, &inputs.target_groups),
            "containers": [c],
            "volumes": volumes,
        },
    })
}

fn selector(instance: &str) -> Value {
    json!({"app.kubernetes.io/instance": instance, "app.kubernetes.io/component": "target"})
}

fn service(n: &Names, namespace: &str, instance: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(&n.target, namespace, instance, Some("target")),
        "spec": {
            "selector": selector(instance),
            "ports": [{"name": "ferry", "port": SERVE_PORT, "targetPort": SERVE_PORT, "protocol": "TCP"}],
        },
    })
}

/// Passthrough: the router reads the SNI and forwards the raw TLS stream, so the mutual
/// TLS runs end to end between the two ferry processes.
fn route(n: &Names, namespace: &str, instance: &str, host: &str) -> Value {
    json!({
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": metadata(&n.target, namespace, instance, Some("target")),
        "spec": {
            "host": host,
            "to": {"kind": "Service", "name": n.target, "weight": 100},
            "port": {"targetPort": "ferry"},
            "tls": {"termination": "passthrough", "insecureEdgeTerminationPolicy": "None"},
            "wildcardPolicy": "None",
        },
    })
}

/// Admits the transfer pods' traffic in a namespace whose policies otherwise close it:
/// on the target, ingress to the serve port (from the router) and egress; on the
/// source, egress (DNS, the proxy, the route). Source pods accept no connections.
fn network_policy(name: &str, namespace: &str, instance: &str, side: Cluster) -> Value {
    let pods = json!({"matchLabels": {
        "owner": "directvolumemigration",
        "app": "directvolumemigration-rsync-transfer",
    }});
    let spec = match side {
        Cluster::Target => json!({
            "podSelector": pods,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": SERVE_PORT}]}],
            "egress": [{}],
        }),
        Cluster::Source => json!({
            "podSelector": pods,
            "policyTypes": ["Egress"],
            "egress": [{}],
        }),
    };
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name, namespace, instance, None),
        "spec": spec,
    })
}
