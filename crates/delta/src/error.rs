//! The crate's one error type.

/// Why a signature or a delta was refused.
///
/// Both variants mean "this input is unusable", never "try again": on the target a bad
/// delta fails the file (the engine may ask for it whole), on the source a bad signature
/// means sending the file whole.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// A block signature broke the format or the limits (usually the peer's).
    #[error("invalid block signature: {reason}")]
    BadSignature {
        /// What was wrong, with the offending numbers.
        reason: String,
    },
    /// A delta broke the format, pointed outside the basis, or would not produce exactly
    /// the promised number of bytes.
    #[error("invalid delta: {reason}")]
    BadDelta {
        /// What was wrong, with the offending numbers.
        reason: String,
    },
}

impl DeltaError {
    pub(crate) fn signature(reason: impl Into<String>) -> Self {
        DeltaError::BadSignature {
            reason: reason.into(),
        }
    }

    pub(crate) fn delta(reason: impl Into<String>) -> Self {
        DeltaError::BadDelta {
            reason: reason.into(),
        }
    }
}
