//! `ferry manifests --plan FILE [--certs DIR] [--out DIR]`: the Kubernetes objects of one
//! direct volume migration, rendered from a small plan.
//!
//! ```text
//! plan.yaml ─▶ Plan (validated) ─┐
//! certs/{server,client} ─────────┴─▶ render ─▶ YAML stream on stdout | one file per object
//! ```

mod plan;
mod render;
mod security;
mod source;
mod streams;

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::args::ManifestsArgs;
use plan::Plan;
use render::{Inputs, Object, TlsFiles};

pub fn run(args: &ManifestsArgs) -> Result<()> {
    let text = fs::read_to_string(&args.plan)
        .with_context(|| format!("reading the plan {}", args.plan.display()))?;
    let plan = Plan::parse(&text).with_context(|| format!("plan {}", args.plan.display()))?;
    let (server_tls, client_tls) = match &args.certs {
        Some(dir) => (
            Some(read_tls(&dir.join("server"))?),
            Some(read_tls(&dir.join("client"))?),
        ),
        None => {
            eprintln!(
                "ferry: no --certs given: create Secrets {0}-server-tls (target) and \
                 {0}-client-tls (source) with tls.crt, tls.key and ca.crt yourself",
                plan.name
            );
            (None, None)
        }
    };
    let inputs = Inputs {
        pairs: plan.pairs()?,
        source_groups: plan.source.supplemental_groups.ids()?,
        target_groups: plan.target.supplemental_groups.ids()?,
        plan: &plan,
        server_tls,
        client_tls,
    };
    let objects = render::render(&inputs);
    match &args.out {
        Some(dir) => write_files(dir, &objects),
        None => {
            let mut out = std::io::stdout().lock();
            for object in &objects {
                out.write_all(document(object)?.as_bytes())?;
            }
            out.flush()?;
            Ok(())
        }
    }
}

/// One YAML document, with a comment saying where to apply it.
fn document(object: &Object) -> Result<String> {
    let yaml = serde_norway::to_string(&object.value)?;
    Ok(format!(
        "---\n# apply to the {} cluster\n{yaml}",
        object.cluster.name()
    ))
}

/// `DIR/NN-CLUSTER-KIND-NAME.yaml`, numbered in apply order.
fn write_files(dir: &Path, objects: &[Object]) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (i, object) in objects.iter().enumerate() {
        let file = dir.join(format!(
            "{:02}-{}-{}-{}.yaml",
            i + 1,
            object.cluster.name(),
            object.kind().to_ascii_lowercase(),
            object.name()
        ));
        write_file(&file, &document(object)?, object.kind() == "Secret")
            .with_context(|| format!("writing {}", file.display()))?;
        println!("{}", file.display());
    }
    Ok(())
}

/// A Secret (TLS keys, the proxy URL with its password) is readable by its owner only,
/// also when it replaces an older file; other objects get the usual umask.
fn write_file(path: &Path, text: &str, secret: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    if secret {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())
}

fn read_tls(dir: &Path) -> Result<TlsFiles> {
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read(&path).with_context(|| {
            format!(
                "reading {} (--certs takes the directory `ferry certs --out` wrote)",
                path.display()
            )
        })
    };
    Ok(TlsFiles {
        crt: read("tls.crt")?,
        key: read("tls.key")?,
        ca: read("ca.crt")?,
    })
}
