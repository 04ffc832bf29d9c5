//! `ferry pull ferry://HOST:PORT/VOLUME DEVICE_OR_IMAGE`: the pull of a block volume into
//! a block device or a disk image (an existing regular file, resized to the volume's
//! size). The client loop is `client::block`; this side's part is the block target role.

use std::future::Future;
use std::path::PathBuf;

use ferry_tree::Device;
use tokio::io::ReadHalf;

use super::PullConfig;
use crate::block;
use crate::client::block::{run_block, BlockClient, BlockSide};
use crate::client::connect::SessionStream;
use crate::error::EngineError;
use crate::framed::{FrameReader, FrameSender};
use crate::report::block::BlockOutcome;
use crate::report::progress::Progress;
use crate::report::summary::Summary;

/// Runs the pull into `config.dest`, a device or image, to the end.
pub async fn pull_block(config: PullConfig, shutdown: impl Future<Output = ()>) -> Summary {
    let client = BlockClient {
        route: &config.route,
        options: ferry_proto::SessionOptions {
            block: true,
            pull: true,
            probe: false,
            ..config.options
        },
        output: config.output.clone(),
        heartbeat: config.heartbeat,
        retries: config.retries,
        progress: config.progress,
        bwlimit: config.bwlimit,
        from: format!(
            "ferry://{}:{}/{}",
            config.route.host, config.route.port, config.route.volume
        ),
        to: config.dest.display().to_string(),
        privileges: config.privileges.as_ref(),
    };
    let target = Target {
        path: config.dest.clone(),
        dry_run: config.options.dry_run,
    };
    run_block(client, target, shutdown).await
}

struct Target {
    path: PathBuf,
    dry_run: bool,
}

impl BlockSide for Target {
    async fn run(
        &self,
        reader: &mut FrameReader<ReadHalf<SessionStream>>,
        tx: FrameSender,
        progress: &Progress,
    ) -> Result<BlockOutcome, EngineError> {
        let device = Device::open_write(&self.path).map_err(|e| {
            EngineError::usage(format!(
                "cannot open the destination to write it in place: {e}"
            ))
        })?;
        block::target::run(device, reader, tx, Some(progress), self.dry_run).await
    }
}
