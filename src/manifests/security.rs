//! The security context of a transfer pod, from its side's `privileges:`.
//!
//! ```text
//! none  (default) restricted: any non-root UID, drop ALL, no privilege escalation
//! least           UID 1001, drop ALL + add exactly the side's capabilities, which the
//!                 image's file capabilities (`/ferry` is `+p` for them) make permitted and
//!                 ferry raises to effective at start; that needs privilege escalation
//!                 allowed (no_new_privs would ignore file capabilities)
//! root            a privileged container running as root (MTC's shape)
//! ```
//!
//! Kubernetes gives a non-root container's process none of `capabilities.add` in its
//! permitted or effective set (only the bounding set; ambient capabilities are not in
//! the pod API), so `least` cannot work through the pod spec alone: the capabilities
//! reach the process through the binary's file capabilities, bounded by `add`.

use serde_json::{json, Value};

use super::plan::Privileges;

/// The image's non-root user (container/Containerfile: `USER 1001:0`).
pub const IMAGE_UID: u32 = 1001;

/// Pod-level security context.
pub fn pod_security(privileges: Privileges, groups: &[u32]) -> Value {
    let mut sc = match privileges {
        Privileges::None => json!({"runAsNonRoot": true}),
        Privileges::Least => json!({"runAsNonRoot": true, "runAsUser": IMAGE_UID}),
        Privileges::Root => json!({"runAsUser": 0}),
    };
    sc["seccompProfile"] = json!({"type": "RuntimeDefault"});
    if !groups.is_empty() {
        sc["supplementalGroups"] = json!(groups);
    }
    sc
}

/// Container-level security context; `add` is what the side uses (`least` only).
pub fn container_security(privileges: Privileges, add: &[String]) -> Value {
    match privileges {
        Privileges::None => json!({
            "runAsNonRoot": true,
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": true,
            "seccompProfile": {"type": "RuntimeDefault"},
        }),
        Privileges::Least => json!({
            "runAsNonRoot": true,
            "runAsUser": IMAGE_UID,
            "allowPrivilegeEscalation": true,
            "capabilities": {"drop": ["ALL"], "add": add},
            "readOnlyRootFilesystem": true,
            "seccompProfile": {"type": "RuntimeDefault"},
        }),
        Privileges::Root => json!({
            "runAsUser": 0,
            "privileged": true,
            "allowPrivilegeEscalation": true,
            "readOnlyRootFilesystem": true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_renders_its_shape() {
        let add = vec!["DAC_READ_SEARCH".to_string()];
        let none = container_security(Privileges::None, &add);
        assert_eq!(none["allowPrivilegeEscalation"], false);
        assert!(none["capabilities"].get("add").is_none());
        let least = container_security(Privileges::Least, &add);
        assert_eq!(least["capabilities"]["add"], json!(["DAC_READ_SEARCH"]));
        assert_eq!(least["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(least["runAsUser"], IMAGE_UID);
        assert_eq!(least["allowPrivilegeEscalation"], true);
        let root = container_security(Privileges::Root, &add);
        assert_eq!(root["privileged"], true);
        assert_eq!(pod_security(Privileges::Root, &[])["runAsUser"], 0);
        assert!(pod_security(Privileges::None, &[])
            .get("runAsUser")
            .is_none());
        assert_eq!(
            pod_security(Privileges::Least, &[7])["supplementalGroups"],
            json!([7])
        );
    }
}
