//! A target device another program holds exclusively (mounted, or opened with `O_EXCL`):
//! refused with a message that says why and what to do, and left untouched.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;

use super::{BlockFixture, LoopDevice, MIB};
use crate::files::random_bytes;
use crate::util::{pull, push};

/// Opens `device` exclusively, as a mount does.
fn hold(device: &LoopDevice) -> std::fs::File {
    OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::EXCL.bits() as i32)
        .open(&device.dev)
        .expect("open the device exclusively")
}

#[test]
fn a_device_held_by_another_program_is_refused_with_what_to_do() {
    let before = random_bytes("busy", (4 * MIB) as usize);
    let fx = BlockFixture::new(4 * MIB, false, |t| t.write_at(&before, 0));
    let image = fx.image("disk.img", &random_bytes("busy source", (4 * MIB) as usize));

    let held = hold(&fx.target);
    let pushed = push(&fx.certs, &image, &fx.url()).run();
    assert_ne!(pushed.output.code, Some(0));
    assert!(
        pushed.stderr().contains("in use") && pushed.stderr().contains("unmount"),
        "{}",
        pushed.stderr()
    );
    drop(held);
    assert!(fx.target.content() == before, "a refused push wrote");

    let dest = LoopDevice::new(fx.tmp.path(), "dest.img", 4 * MIB);
    let _held = hold(&dest);
    let pulled = pull(&fx.certs, &fx.url(), &dest.dev).run();
    assert_ne!(pulled.output.code, Some(0));
    assert!(
        pulled.stderr().contains("in use") && pulled.stderr().contains("unmount"),
        "{}",
        pulled.stderr()
    );
}
