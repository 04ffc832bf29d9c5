//! The bytes of block signatures a target has sent for files whose content has not come
//! yet: at most [`Limits::signature_window`](ferry_proto::Limits::signature_window), so the
//! source need not hold more. A signature task takes its bytes before sending, and they
//! come back with the file's `FileEnd` or `FileFailed`.

use std::collections::HashMap;
use std::sync::Arc;

/// Signatures sent for files whose content has not come yet, in bytes: at most
/// [`Limits::signature_window`], so that the source need not hold more.
#[derive(Clone)]
pub(super) struct SignatureBudget {
    bytes: Arc<tokio::sync::Semaphore>,
    /// What each file's signature holds, until its `FileEnd` or `FileFailed`.
    held: Arc<std::sync::Mutex<HashMap<u64, u32>>>,
    max: usize,
}

impl SignatureBudget {
    pub(super) fn new(max: usize) -> SignatureBudget {
        SignatureBudget {
            bytes: Arc::new(tokio::sync::Semaphore::new(max)),
            held: Arc::default(),
            max,
        }
    }

    /// Waits until `len` more bytes fit, then holds them for file `index`; false if the
    /// session ended meanwhile.
    pub(super) async fn take(&self, index: u64, len: usize) -> bool {
        let n = len.min(self.max) as u32;
        match self.bytes.acquire_many(n).await {
            Ok(permit) => {
                permit.forget();
                self.held.lock().expect("budget lock").insert(index, n);
                true
            }
            Err(_) => false,
        }
    }

    /// File `index`'s content has come: its signature no longer counts.
    pub(super) fn release(&self, index: u64) {
        if let Some(n) = self.held.lock().expect("budget lock").remove(&index) {
            self.bytes.add_permits(n as usize);
        }
    }

    /// The session ended: tasks waiting for room stop waiting.
    pub(super) fn close(&self) {
        self.bytes.close();
    }
}
