//! The migration plan `ferry manifests --plan FILE` reads: YAML (or JSON, which is YAML),
//! with Kubernetes-style camelCase keys. Unknown keys are refused so a typo is not
//! silently ignored.
//!
//! ```yaml
//! name: dvm-app                      # prefix of every object name (default: ferry)
//! image: registry.example.com/ferry:0.1.0
//! routeHost: dvm-app.apps.target.example.com
//! cutover: false                     # true: the source pods push with --delete
//! retries: 5                         # the push's --retries (default 5), with backoff
//! streams: auto                      # the push's --streams: auto (default) or 1 to 16
//! source:
//!   namespace: app
//!   privileges: least                # none (default) | least | root, per side
//!   supplementalGroups: "1000,2000"  # or [1000, 2000]
//!   proxy: http://user:p%40ss@proxy.corp:3128
//!   noProxy: .cluster.local,10.0.0.0/8
//!   resources: {requests: {cpu: 100m, memory: 128Mi}}
//! target:
//!   namespace: app
//!   supplementalGroups: [2000]
//! pvcs: [data, "logs:logs-restored"] # SRC[:DST]
//! # or, for a block-mode PVC (a VM disk): {src: vm-disk, dst: vm-disk-new, volumeMode: Block}
//! ```

use anyhow::{bail, Context, Result};
use ferry_engine::Streams;
use serde::Deserialize;
use serde_json::Value;

use crate::privileges::parse_groups;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plan {
    #[serde(default = "default_name")]
    pub name: String,
    pub image: String,
    pub route_host: String,
    #[serde(default)]
    pub cutover: bool,
    /// Sessions each source pod's push retries after a network failure (`--retries`).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Connections each source pod's push runs its session over (`--streams`).
    #[serde(default, deserialize_with = "super::streams::deserialize")]
    pub streams: Streams,
    pub source: SourceSide,
    pub target: TargetSide,
    pub pvcs: Vec<PvcSpec>,
}

/// One `pvcs` entry: `"SRC[:DST]"` (filesystem mode), or the long form with a volume mode.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PvcSpec {
    Text(String),
    Long(PvcEntry),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PvcEntry {
    pub src: String,
    /// Default: the same name as `src`.
    pub dst: Option<String>,
    #[serde(default)]
    pub volume_mode: VolumeMode,
}

/// A PVC's `volumeMode`, as Kubernetes spells it: both PVCs of a pair must have it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum VolumeMode {
    #[default]
    Filesystem,
    /// A raw block device in the pods (`volumeDevices`), moved as a block volume.
    Block,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceSide {
    pub namespace: String,
    #[serde(default)]
    pub privileges: Privileges,
    #[serde(default)]
    pub supplemental_groups: Groups,
    pub proxy: Option<String>,
    pub no_proxy: Option<String>,
    pub resources: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSide {
    pub namespace: String,
    #[serde(default)]
    pub privileges: Privileges,
    #[serde(default)]
    pub supplemental_groups: Groups,
    pub resources: Option<Value>,
}

/// How much a side's pod may do (`privileges:`). See README "Privileges of the pods".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Privileges {
    /// Restricted pod security: any non-root UID, no capabilities. Reads only what that
    /// UID (and its groups) may read; applies no owners.
    #[default]
    None,
    /// A non-root UID with exactly the capabilities the side uses, raised from the
    /// image's file capabilities (which need `allowPrivilegeEscalation: true`).
    Least,
    /// A privileged container running as root (MTC's shape).
    Root,
}

/// At most this many `retries:` (each waits up to a minute before reconnecting).
pub const MAX_RETRIES: u32 = 100;

/// MTC's comma-separated string, or a YAML list of numbers.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub enum Groups {
    #[default]
    None,
    List(Vec<u32>),
    Text(String),
}

impl Groups {
    pub fn ids(&self) -> Result<Vec<u32>> {
        match self {
            Groups::None => Ok(Vec::new()),
            Groups::List(ids) => Ok(ids.clone()),
            Groups::Text(text) => parse_groups(text),
        }
    }
}

/// One volume to move: the source PVC and the destination PVC (the Ferry volume name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvcPair {
    pub src: String,
    pub dst: String,
    /// `volumeMode: Block`: a device in both pods, synced block by block.
    pub block: bool,
}

fn default_name() -> String {
    "ferry".to_string()
}

fn default_retries() -> u32 {
    5
}

impl Plan {
    pub fn parse(text: &str) -> Result<Plan> {
        let plan: Plan = serde_norway::from_str(text)?;
        plan.validate()?;
        Ok(plan)
    }

    fn validate(&self) -> Result<()> {
        dns_label("name", &self.name)?;
        dns_label("source.namespace", &self.source.namespace)?;
        dns_label("target.namespace", &self.target.namespace)?;
        if self.image.trim().is_empty() || self.image.contains(char::is_whitespace) {
            bail!("image {:?} is not an image reference", self.image);
        }
        let host = &self.route_host;
        if host.is_empty()
            || host.len() > 253
            || !host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            bail!(
                "routeHost {host:?} is not a DNS name (no scheme or port), e.g. dvm-app.apps.example.com"
            );
        }
        if self.retries > MAX_RETRIES {
            bail!(
                "retries {} is more than {MAX_RETRIES}; a source pod that cannot reconnect \
                 after that many tries is better failed and looked at",
                self.retries
            );
        }
        if let Some(proxy) = &self.source.proxy {
            ferry_net::ProxyUrl::parse(proxy).context("source.proxy")?;
        }
        self.source
            .supplemental_groups
            .ids()
            .context("source.supplementalGroups")?;
        self.target
            .supplemental_groups
            .ids()
            .context("target.supplementalGroups")?;
        let pairs = self.pairs()?;
        if pairs.is_empty() {
            bail!("pvcs is empty; list the PVCs to move as SRC or SRC:DST");
        }
        Ok(())
    }

    /// The PVC pairs, validated; a destination appears once.
    pub fn pairs(&self) -> Result<Vec<PvcPair>> {
        let mut pairs: Vec<PvcPair> = Vec::new();
        for spec in &self.pvcs {
            let (src, dst, block) = match spec {
                PvcSpec::Text(spec) => {
                    let (src, dst) = spec.split_once(':').unwrap_or((spec, spec));
                    (src, dst, false)
                }
                PvcSpec::Long(entry) => (
                    entry.src.as_str(),
                    entry.dst.as_deref().unwrap_or(&entry.src),
                    entry.volume_mode == VolumeMode::Block,
                ),
            };
            for name in [src, dst] {
                dns_subdomain(&format!("pvcs entry {src:?}"), name)?;
            }
            if pairs.iter().any(|p| p.dst == dst) {
                bail!("pvcs: destination {dst:?} appears twice");
            }
            pairs.push(PvcPair {
                src: src.to_string(),
                dst: dst.to_string(),
                block,
            });
        }
        Ok(pairs)
    }
}

/// A Kubernetes DNS-1123 label: namespaces and the name prefix.
fn dns_label(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        bail!(
            "{what} {name:?} is not a DNS-1123 label (lowercase letters, digits, '-', at most 63)"
        );
    }
    Ok(())
}

/// A Kubernetes DNS-1123 subdomain: PVC names.
fn dns_subdomain(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| dns_label(what, part).is_ok());
    if !ok {
        bail!("{what}: {name:?} is not a PVC name (lowercase letters, digits, '-', '.')");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "image: ferry:1\nrouteHost: dvm.apps.example.com\n\
        source: {namespace: app}\ntarget: {namespace: app2}\npvcs: [data, 'logs:logs2']\n";

    #[test]
    fn parses_a_minimal_plan() {
        let plan = Plan::parse(MINIMAL).unwrap();
        assert_eq!(plan.name, "ferry");
        // Today's plans stay valid and mean what they meant: restricted pods.
        assert_eq!(plan.source.privileges, Privileges::None);
        assert_eq!(plan.target.privileges, Privileges::None);
        assert_eq!(plan.retries, 5);
        assert_eq!(
            plan.pairs().unwrap(),
            vec![
                PvcPair {
                    src: "data".into(),
                    dst: "data".into(),
                    block: false,
                },
                PvcPair {
                    src: "logs".into(),
                    dst: "logs2".into(),
                    block: false,
                }
            ]
        );
    }

    #[test]
    fn a_pvc_may_be_block_mode_in_the_long_form() {
        let text = MINIMAL.replace(
            "pvcs: [data, 'logs:logs2']",
            "pvcs: [data, {src: disk, dst: disk2, volumeMode: Block}, {src: root}]",
        );
        let pairs = Plan::parse(&text).unwrap().pairs().unwrap();
        let modes: Vec<_> = pairs
            .iter()
            .map(|p| (p.src.as_str(), p.dst.as_str(), p.block))
            .collect();
        assert_eq!(
            modes,
            [
                ("data", "data", false),
                ("disk", "disk2", true),
                ("root", "root", false)
            ]
        );
        let typo = MINIMAL.replace(
            "pvcs: [data, 'logs:logs2']",
            "pvcs: [{src: d, mode: Block}]",
        );
        assert!(Plan::parse(&typo).is_err());
    }

    #[test]
    fn groups_come_as_text_or_list() {
        let text = MINIMAL.replace(
            "{namespace: app}",
            "{namespace: app, supplementalGroups: '1000,2000'}",
        );
        let plan = Plan::parse(&text).unwrap();
        assert_eq!(
            plan.source.supplemental_groups.ids().unwrap(),
            vec![1000, 2000]
        );
        let list = MINIMAL.replace(
            "{namespace: app2}",
            "{namespace: app2, supplementalGroups: [7]}",
        );
        assert_eq!(
            Plan::parse(&list)
                .unwrap()
                .target
                .supplemental_groups
                .ids()
                .unwrap(),
            vec![7]
        );
    }

    #[test]
    fn privileges_and_retries_are_read_per_side() {
        let text = MINIMAL
            .replace("{namespace: app}", "{namespace: app, privileges: least}")
            .replace("{namespace: app2}", "{namespace: app2, privileges: root}")
            + "retries: 0\n";
        let plan = Plan::parse(&text).unwrap();
        assert_eq!(plan.source.privileges, Privileges::Least);
        assert_eq!(plan.target.privileges, Privileges::Root);
        assert_eq!(plan.retries, 0);
    }

    #[test]
    fn refuses_bad_plans() {
        for (from, to) in [
            (
                "routeHost: dvm.apps.example.com",
                "routeHost: https://dvm:443",
            ),
            ("{namespace: app}", "{namespace: App}"),
            ("{namespace: app}", "{namespace: app, proxy: 'ftp://x'}"),
            (
                "{namespace: app}",
                "{namespace: app, supplementalGroups: 'staff'}",
            ),
            ("{namespace: app}", "{namespace: app, typo: 1}"),
            ("[data, 'logs:logs2']", "[]"),
            ("[data, 'logs:logs2']", "[data, 'x:data']"),
            ("[data, 'logs:logs2']", "['Data']"),
            ("{namespace: app}", "{namespace: app, privileges: admin}"),
            ("{namespace: app}", "{namespace: app, privileges: Least}"),
            ("pvcs:", "retries: 101\npvcs:"),
            ("pvcs:", "retries: -1\npvcs:"),
        ] {
            let text = MINIMAL.replace(from, to);
            assert_ne!(text, MINIMAL);
            assert!(Plan::parse(&text).is_err(), "accepted: {text}");
        }
    }
}
