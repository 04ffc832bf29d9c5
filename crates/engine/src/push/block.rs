//! `ferry push DEVICE_OR_IMAGE ferry://HOST:PORT/VOLUME`: the push of a block device or a
//! disk image onto a block volume. The client loop is `client::block`; this side's part
//! is the block source role.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_tree::Device;
use tokio::io::ReadHalf;

use super::PushConfig;
use crate::block;
use crate::client::block::{run_block, BlockClient, BlockSide};
use crate::client::connect::SessionStream;
use crate::error::EngineError;
use crate::framed::{FrameReader, FrameSender};
use crate::report::block::BlockOutcome;
use crate::report::progress::Progress;
use crate::report::summary::Summary;

/// Runs the push of `config.src`, a device or image, to the end.
pub async fn push_block(config: PushConfig, shutdown: impl Future<Output = ()>) -> Summary {
    let client = BlockClient {
        route: &config.route,
        options: ferry_proto::SessionOptions {
            block: true,
            ..config.options
        },
        output: config.output.clone(),
        heartbeat: config.heartbeat,
        retries: config.retries,
        progress: config.progress,
        bwlimit: config.bwlimit,
        from: config.src.display().to_string(),
        to: format!(
            "ferry://{}:{}/{}",
            config.route.host, config.route.port, config.route.volume
        ),
        privileges: config.privileges.as_ref(),
    };
    run_block(
        client,
        Source {
            path: config.src.clone(),
            dry_run: config.options.dry_run,
        },
        shutdown,
    )
    .await
}

struct Source {
    path: PathBuf,
    dry_run: bool,
}

impl BlockSide for Source {
    async fn run(
        &self,
        reader: &mut FrameReader<ReadHalf<SessionStream>>,
        tx: FrameSender,
        progress: &Progress,
    ) -> Result<BlockOutcome, EngineError> {
        let device = Device::open_read(&self.path)
            .map_err(|e| EngineError::usage(format!("cannot read the source: {e}")))?;
        let limits = ferry_proto::Limits::default();
        block::source::run(
            Arc::new(device),
            &limits,
            reader,
            tx,
            Some(progress),
            self.dry_run,
        )
        .await
    }
}
