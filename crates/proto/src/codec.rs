//! wip
use bytes::BytesMut;
use crate::{Limits, Message};
#[derive(Debug, thiserror::Error)]
pub enum CodecError { #[error("x")] X }
pub fn decode(_b: &mut BytesMut, _l: &Limits) -> Result<Option<Message>, CodecError> { todo!() }
pub fn encode(_m: &Message, _b: &mut BytesMut) { todo!() }
