//! Format detection from the first bytes.
use super::{PacketSource, ReadError};
use std::io::BufRead;

pub(super) fn open<'a, R: BufRead + 'a>(
    reader: R,
) -> Result<Box<dyn PacketSource + 'a>, ReadError> {
    let _ = reader;
    Err(ReadError::Empty)
}
