//! The child's output: a sequence of frames, `[tag: u8][length: u32 LE][payload]`, the
//! last one the outcome. Frames let documents stream while the file is read, and let the
//! parent count and bound every byte it takes.

use std::io::{self, Read, Write};

/// A document for a collection: `[collection length: u16 LE][collection][BSON]`.
pub const DOCUMENT: u8 = b'D';
/// Bytes for the caller's output as they are (the `process` command's JSON lines).
pub const OUTPUT: u8 = b'O';
/// The outcome, JSON; always the last frame.
pub const OUTCOME: u8 = b'R';

/// No frame is larger: a MongoDB document is at most 16 MiB, output is chunked.
pub const MAX_FRAME_BYTES: usize = 32 << 20;

pub fn write(out: &mut impl Write, tag: u8, payload: &[u8]) -> io::Result<()> {
    let length = u32::try_from(payload.len())
        .ok()
        .filter(|length| *length as usize <= MAX_FRAME_BYTES)
        .ok_or_else(|| io::Error::other(format!("a frame of {} bytes", payload.len())))?;
    out.write_all(&[tag])?;
    out.write_all(&length.to_le_bytes())?;
    out.write_all(payload)
}

/// Reads the next frame into `payload`; `None` at the end of the stream.
pub fn read(input: &mut impl Read, payload: &mut Vec<u8>) -> io::Result<Option<u8>> {
    let mut head = [0_u8; 5];
    match input.read_exact(&mut head[..1]) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    input.read_exact(&mut head[1..])?;
    let length = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if length > MAX_FRAME_BYTES {
        return Err(io::Error::other(format!("a frame of {length} bytes")));
    }
    payload.clear();
    payload.resize(length, 0);
    input.read_exact(payload)?;
    Ok(Some(head[0]))
}

/// A document frame's payload.
pub fn document_payload(collection: &str, bson: &[u8], payload: &mut Vec<u8>) -> io::Result<()> {
    let length = u16::try_from(collection.len())
        .map_err(|_| io::Error::other("a collection name longer than 64 KiB"))?;
    payload.clear();
    payload.extend_from_slice(&length.to_le_bytes());
    payload.extend_from_slice(collection.as_bytes());
    payload.extend_from_slice(bson);
    Ok(())
}

/// Splits a document frame's payload into the collection and the BSON bytes.
pub fn split_document(payload: &[u8]) -> Option<(&str, &[u8])> {
    let (length, rest) = payload.split_first_chunk::<2>()?;
    let length = usize::from(u16::from_le_bytes(*length));
    let collection = std::str::from_utf8(rest.get(..length)?).ok()?;
    Some((collection, rest.get(length..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut stream = Vec::new();
        write(&mut stream, OUTPUT, b"line\n").unwrap();
        let mut document = Vec::new();
        document_payload("Data", b"\x05\x00\x00\x00\x00", &mut document).unwrap();
        write(&mut stream, DOCUMENT, &document).unwrap();
        let mut reader = stream.as_slice();
        let mut payload = Vec::new();
        assert_eq!(read(&mut reader, &mut payload).unwrap(), Some(OUTPUT));
        assert_eq!(payload, b"line\n");
        assert_eq!(read(&mut reader, &mut payload).unwrap(), Some(DOCUMENT));
        assert_eq!(split_document(&payload), Some(("Data", &b"\x05\x00\x00\x00\x00"[..])));
        assert_eq!(read(&mut reader, &mut payload).unwrap(), None);
    }

    #[test]
    fn a_cut_or_oversized_frame_is_an_error() {
        let mut stream = Vec::new();
        write(&mut stream, OUTPUT, b"abcdef").unwrap();
        let mut cut = &stream[..stream.len() - 1];
        assert!(read(&mut cut, &mut Vec::new()).is_err());
        let huge = [OUTPUT, 0xff, 0xff, 0xff, 0xff];
        assert!(read(&mut &huge[..], &mut Vec::new()).is_err());
        assert_eq!(split_document(b"\x09\x00Da"), None);
    }
}
