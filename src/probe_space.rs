//! `ferry probe URL --source DIR`: the `space` hop, after the hops to the volume. A dry
//! run of `ferry push DIR URL` (nothing is transferred or changed): the target plans the
//! listing against its volume and counts what the push would need of it, exactly as the
//! pre-flight space check of a real push does, and the `Done` of the dry run says it
//! beside the volume's free space. Costs a scan of DIR and a plan at the target.

use std::path::Path;
use std::sync::Arc;

use ferry_engine::{Event, EventSink, ExitCode, Hop, Output, PushConfig, Route, Summary, Verdict};
use ferry_proto::SessionOptions;

/// Runs the dry run and judges its summary.
pub async fn space_hop(route: Route, src: &Path, delete: bool) -> (Hop, ExitCode) {
    if !src.is_dir() {
        let hop = failed(format!(
            "--source {} is not a directory; give the directory you would push",
            src.display()
        ));
        return (hop, ExitCode::Usage);
    }
    let config = PushConfig {
        src: src.to_path_buf(),
        route,
        options: SessionOptions {
            dry_run: true,
            delete,
            ..SessionOptions::default()
        },
        output: Output::Sink(Arc::new(Silent)),
        heartbeat: ferry_engine::DEFAULT_HEARTBEAT,
        retries: 0,
        progress: false,
        bwlimit: None,
        filter: crate::filters::default_filter(),
        privileges: None,
        streams: ferry_engine::Streams::Fixed(1),
    };
    let summary = ferry_engine::push(config, std::future::pending()).await;
    verdict(&summary, delete)
}

/// The hop when an earlier one failed.
pub fn not_reached() -> Hop {
    Hop {
        name: "space",
        verdict: Verdict::Skipped("not reached".into()),
    }
}

fn verdict(s: &Summary, delete: bool) -> (Hop, ExitCode) {
    if let Some(error) = &s.error {
        return (failed(format!("the dry run failed: {error}")), s.exit);
    }
    let need = format!(
        "a push of {} files ({} bytes) needs {} bytes and {} inodes of the volume",
        s.files_total, s.bytes_total, s.space_needed, s.inodes_needed
    );
    if s.space_free == 0 {
        let hop = ok(format!(
            "{need}; the target could not read its free space, so a push is not checked"
        ));
        return (hop, ExitCode::Ok);
    }
    let free = format!(
        "it has {} bytes free ({} more reserved for root) and {} inodes",
        s.space_free, s.space_reserved, s.inodes_free
    );
    if s.space_short {
        let hop = failed(format!(
            "{need}; {free}: a push would stop with exit 11. Free space on the target \
             volume or grow it (the PVC){}",
            if delete {
                ""
            } else {
                "; what push --delete would free is counted only with --delete"
            }
        ));
        return (hop, ExitCode::FileIo);
    }
    (ok(format!("{need}; {free}")), ExitCode::Ok)
}

fn ok(text: String) -> Hop {
    Hop {
        name: "space",
        verdict: Verdict::Ok(text),
    }
}

fn failed(text: String) -> Hop {
    Hop {
        name: "space",
        verdict: Verdict::Failed(text),
    }
}

/// The dry run's own events are not shown: the hop says what matters.
struct Silent;

impl EventSink for Silent {
    fn event(&self, _: &Event<'_>) {}
}
