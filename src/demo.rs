//! `ferry demo`: the main job on an embedded default. A target on loopback with
//! throwaway certificates, a push of a generated sample tree, the summary; then a
//! change and a second push that sends only the difference.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use ferry_engine::{ExitCode, Output, PushConfig, Route, ServeConfig};
use ferry_proto::SessionOptions;
use tokio::sync::oneshot;

pub async fn run(keep: bool) -> Result<ExitCode> {
    let base = std::env::temp_dir().join(format!("ferry-demo-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let result = demo(&base).await;
    if keep {
        eprintln!("demo files kept in {}", base.display());
    } else {
        let _ = fs::remove_dir_all(&base);
    }
    result
}

async fn demo(base: &Path) -> Result<ExitCode> {
    let (certs, src, dst) = (base.join("certs"), base.join("source"), base.join("target"));
    ferry_net::generate(&certs, &["localhost".to_string()])?;
    sample_tree(&src)?;
    fs::create_dir_all(&dst)?;

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (addr_tx, addr_rx) = oneshot::channel();
    let server = tokio::spawn(ferry_engine::serve(
        ServeConfig {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            identity: ferry_engine::ServerIdentity::Dir(certs.join("server")),
            pair_ttl: None,
            revoke: Vec::new(),
            revoked_file: None,
            volumes: vec![ferry_engine::Export {
                name: "demo".into(),
                path: dst.clone(),
                read_only: false,
            }],
            once: false,
            heartbeat: ferry_engine::DEFAULT_HEARTBEAT,
            fsync: false,
            metrics_listen: None,
            bwlimit: None,
            max_streams: ferry_engine::DEFAULT_MAX_STREAMS,
        },
        async {
            let _ = stop_rx.await;
        },
        move |addr| {
            let _ = addr_tx.send(addr);
        },
    ));
    let addr = addr_rx.await.context("the demo target did not start")?;
    let config = |options| PushConfig {
        src: src.clone(),
        route: Route {
            host: "localhost".into(),
            port: addr.port(),
            volume: "demo".into(),
            server_name: "localhost".into(),
            proxy: None,
            tls_dir: certs.join("client"),
            join: None,
            connect_timeout: std::time::Duration::from_secs(10),
        },
        options,
        output: Output::Text,
        heartbeat: ferry_engine::DEFAULT_HEARTBEAT,
        retries: 0,
        filter: Default::default(),
        progress: false,
        bwlimit: None,
        privileges: None,
        streams: ferry_engine::Streams::Auto,
    };
    eprintln!(
        "== first push: {} -> ferry://localhost:{}/demo",
        src.display(),
        addr.port()
    );
    let first = ferry_engine::push(config(SessionOptions::default()), std::future::pending()).await;
    eprintln!(
        "== change 1 MiB in the middle of big.bin, remove notes/old.txt, push again with --delete"
    );
    change_sample(&src)?;
    let second = ferry_engine::push(
        config(SessionOptions {
            delete: true,
            ..SessionOptions::default()
        }),
        std::future::pending(),
    )
    .await;
    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(first.exit.max(second.exit))
}

/// A small tree with the kinds of entries a volume holds.
fn sample_tree(src: &Path) -> Result<()> {
    fs::create_dir_all(src.join("notes"))?;
    fs::create_dir_all(src.join("db/wal"))?;
    fs::create_dir_all(src.join("empty"))?;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let big: Vec<u8> = (0..16 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    fs::write(src.join("big.bin"), &big)?;
    for i in 0..200 {
        fs::write(
            src.join(format!("notes/note-{i:03}.txt")),
            format!("note {i}\n").repeat(i + 1),
        )?;
    }
    fs::write(src.join("notes/old.txt"), "to be deleted\n")?;
    fs::write(src.join("db/wal/0001.log"), vec![7u8; 300_000])?;
    std::os::unix::fs::symlink("notes/note-001.txt", src.join("latest"))?;
    fs::hard_link(src.join("db/wal/0001.log"), src.join("db/current.log"))?;
    Ok(())
}

fn change_sample(src: &Path) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let file = fs::OpenOptions::new()
        .write(true)
        .open(src.join("big.bin"))?;
    file.write_all_at(&vec![0xa5; 1024 * 1024], 8 * 1024 * 1024)?;
    fs::remove_file(src.join("notes/old.txt"))?;
    Ok(())
}
