//! The source side of a migration: one Job per PVC whose pod pushes it.
//!
//! A network blip is retried inside the pod (`--retries`, resuming partials); the Job
//! replaces a pod that died anyway (node lost, evicted, retries used up) a few times,
//! each one resuming where the last stopped. What another pod cannot fix fails the Job
//! at once: usage (1), protocol version (2), no space or a broken volume (11), a
//! protocol error (12), files that could not be copied (23). A refused start (5) is
//! retried: the volume may be busy with an earlier pod's session. A pod disrupted by a
//! drain or preemption does not count.

use ferry_engine::Side;
use serde_json::{json, Value};

use super::plan::PvcPair;
use super::render::{
    container, groups_env, metadata, Container, Inputs, Names, BLOCK_DEVICES, TERMINATION_LOG,
    TLS_MOUNT,
};
use super::security::{container_security, pod_security};
use super::streams;
use crate::capabilities::least_caps;

const PUSH_CONTAINER: &str = "ferry-push";
/// Source pods a Job replaces after a failure its pod's own retries did not cure.
const JOB_BACKOFF_LIMIT: u32 = 3;
/// Exit codes no new pod can change (see `ferry_engine::ExitCode`).
const PERMANENT_EXIT_CODES: [u8; 5] = [1, 2, 11, 12, 23];

pub(super) fn source_job(inputs: &Inputs<'_>, n: &Names, pair: &PvcPair) -> Value {
    let plan = inputs.plan;
    // A block-mode PVC is a device in the pod, pushed block by block.
    let mount = match pair.block {
        true => format!("{BLOCK_DEVICES}/{}", pair.src),
        false => format!("/mnt/{}", pair.src),
    };
    let mut args: Vec<String> = vec![
        "push".into(),
        mount.clone(),
        format!("ferry://{}:443/{}", plan.route_host, pair.dst),
        "--tls-dir".into(),
        TLS_MOUNT.into(),
        "--json".into(),
        "--summary-file".into(),
        TERMINATION_LOG.into(),
    ];
    if plan.cutover {
        args.push("--delete".into());
    }
    if plan.retries > 0 {
        args.extend(["--retries".into(), plan.retries.to_string()]);
    }
    args.extend(streams::push_args(plan.streams));
    let mut env: Vec<Value> = groups_env(&inputs.source_groups).into_iter().collect();
    if plan.source.proxy.is_some() {
        // The credentials stay in the Secret: the pod spec only names it.
        env.push(json!({
            "name": "HTTPS_PROXY",
            "valueFrom": {"secretKeyRef": {"name": n.proxy, "key": "HTTPS_PROXY"}},
        }));
    }
    if let Some(no_proxy) = &plan.source.no_proxy {
        env.push(json!({"name": "NO_PROXY", "value": no_proxy}));
    }
    let privileges = plan.source.privileges;
    let mut c = container(Container {
        role: PUSH_CONTAINER,
        image: &plan.image,
        args,
        env,
        mounts: [
            Some(json!({"name": "tls", "mountPath": TLS_MOUNT, "readOnly": true})),
            (!pair.block).then(|| json!({"name": "pvc", "mountPath": mount, "readOnly": true})),
        ]
        .into_iter()
        .flatten()
        .collect(),
        resources: plan.source.resources.as_ref(),
        security: container_security(privileges, &least_caps(Side::Source)),
    });
    if pair.block {
        c.insert(
            "volumeDevices".into(),
            json!([{"name": "pvc", "devicePath": mount}]),
        );
    }
    let mut meta = metadata(
        &n.push(&pair.src),
        &plan.source.namespace,
        &plan.name,
        Some("source"),
    );
    meta["annotations"] = json!({"ferry/source-pvc": pair.src, "ferry/target-pvc": pair.dst});
    let pod = json!({
        "metadata": {"labels": meta["labels"], "annotations": meta["annotations"]},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": pod_security(privileges, &inputs.source_groups),
            "containers": [c],
            "volumes": [
                {"name": "tls", "secret": {"secretName": n.client_tls}},
                {"name": "pvc", "persistentVolumeClaim": {"claimName": pair.src, "readOnly": true}},
            ],
        },
    });
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": JOB_BACKOFF_LIMIT,
            "podFailurePolicy": {"rules": [
                {"action": "FailJob", "onExitCodes": {
                    "containerName": PUSH_CONTAINER, "operator": "In",
                    "values": PERMANENT_EXIT_CODES,
                }},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            ]},
            "template": pod,
        },
    })
}
