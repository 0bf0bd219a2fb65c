//! The multipart form of `/files`, read as it streams in without copying the files'
//! bytes: every chunk handed out is a slice of what the HTTP layer received. (multer,
//! behind axum's `Multipart`, first copies every byte into a buffer of its own: a
//! third of the API's CPU time in a 1 GB upload.) What is copied is small: the few bytes
//! at a chunk's end that may begin a boundary, and the parts' headers. What a client
//! controls is bounded: the preamble, a part's headers and their count; a body that
//! ends inside the form is an error, never a wait.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use memchr::memmem::Finder;

/// Bytes before the first boundary that are skipped at most.
const MAX_PREAMBLE: usize = 64 << 10;
/// A part's header block.
const MAX_PART_HEAD: usize = 16 << 10;
const MAX_HEADERS: usize = 32;
/// RFC 2046 allows 70; some clients make longer ones.
const MAX_BOUNDARY: usize = 200;

/// Why the form cannot be read; the text is the 400's detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the body ended inside the form")]
    Incomplete,
    #[error("no boundary within the first {MAX_PREAMBLE} bytes")]
    PreambleTooLong,
    #[error("a part's headers are longer than {MAX_PART_HEAD} bytes")]
    HeadTooLong,
    #[error("a part's headers are malformed: {0}")]
    BadHead(String),
    #[error("the body could not be read: {0}")]
    Body(String),
}

/// The `boundary` of a `multipart/form-data` content type, or `None` for any other.
pub fn boundary(content_type: &str) -> Option<String> {
    let (essence, parameters_text) = content_type.split_once(';')?;
    if !essence.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let value = parameters(parameters_text)
        .into_iter()
        .find_map(|(key, value)| key.eq_ignore_ascii_case("boundary").then_some(value))?;
    let usable = !value.is_empty()
        && value.len() <= MAX_BOUNDARY
        && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    usable.then_some(value)
}

/// What a part's `Content-Disposition` says of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartHead {
    pub name: Option<String>,
    pub file_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Preamble,
    Head,
    Body,
    Done,
}

/// Reads the parts of a form from `body`, a stream of the request's bytes.
pub struct FormReader<S> {
    body: S,
    body_ended: bool,
    /// `\r\n--{boundary}`, which ends every part's bytes (and the preamble).
    delimiter: Finder<'static>,
    phase: Phase,
    /// Received and not yet read, in order.
    input: VecDeque<Bytes>,
    /// The end of the last piece, which may be the beginning of a delimiter.
    carry: Vec<u8>,
    /// The delimiter was found after the data just returned.
    at_delimiter: bool,
}

impl<S> std::fmt::Debug for FormReader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormReader")
            .field("phase", &self.phase)
            .field("body_ended", &self.body_ended)
            .finish_non_exhaustive()
    }
}

impl<S, E> FormReader<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    pub fn new(body: S, boundary: &str) -> Self {
        let delimiter = Finder::new(format!("\r\n--{boundary}").as_bytes()).into_owned();
        Self {
            body,
            body_ended: false,
            delimiter,
            phase: Phase::Preamble,
            input: VecDeque::new(),
            // The first boundary has no line break before it: one is made up, so that
            // every delimiter looks the same.
            carry: b"\r\n".to_vec(),
            at_delimiter: false,
        }
    }

    /// The next part's head, after the rest of the current part; `None` after the last.
    pub async fn next_part(&mut self) -> Result<Option<PartHead>, FormError> {
        loop {
            match self.phase {
                Phase::Done => return Ok(None),
                Phase::Preamble => {
                    let mut skipped = 0;
                    while let Some(data) = self.data().await? {
                        skipped += data.len();
                        if skipped > MAX_PREAMBLE {
                            return Err(FormError::PreambleTooLong);
                        }
                    }
                    self.phase = Phase::Head;
                }
                Phase::Body => {
                    while self.data().await?.is_some() {}
                    self.phase = Phase::Head;
                }
                Phase::Head => {
                    let head = self.read_head().await?;
                    self.phase = if head.is_some() { Phase::Body } else { Phase::Done };
                    return Ok(head);
                }
            }
        }
    }

    /// The current part's next bytes; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, FormError> {
        if self.phase != Phase::Body {
            return Ok(None);
        }
        let data = self.data().await?;
        if data.is_none() {
            self.phase = Phase::Head;
        }
        Ok(data)
    }

    /// Reads and drops what is left of the body, up to `max_bytes`.
    pub async fn drain(&mut self, max_bytes: u64) {
        let mut dropped: u64 = 0;
        while let Ok(Some(piece)) = self.next_input().await {
            dropped += piece.len() as u64;
            if dropped > max_bytes {
                return;
            }
        }
    }

    async fn next_input(&mut self) -> Result<Option<Bytes>, FormError> {
        if let Some(piece) = self.input.pop_front() {
            return Ok(Some(piece));
        }
        while !self.body_ended {
            match self.body.next().await {
                Some(Ok(piece)) if piece.is_empty() => {}
                Some(Ok(piece)) => return Ok(Some(piece)),
                Some(Err(error)) => return Err(FormError::Body(error.to_string())),
                None => self.body_ended = true,
            }
        }
        Ok(None)
    }

    /// The next bytes before the delimiter; `None` once it is reached (and passed).
    async fn data(&mut self) -> Result<Option<Bytes>, FormError> {
        if std::mem::take(&mut self.at_delimiter) {
            return Ok(None);
        }
        let delimiter_len = self.delimiter.needle().len();
        loop {
            let Some(piece) = self.next_input().await? else {
                return Err(FormError::Incomplete);
            };
            if !self.carry.is_empty() {
                // A delimiter may begin in the carried bytes and end in this piece: look
                // in the two joined, as far as a delimiter starting in the carry reaches.
                let mut window = std::mem::take(&mut self.carry);
                let carried = window.len();
                let taken = piece.len().min(delimiter_len);
                window.extend_from_slice(&piece[..taken]);
                match self.delimiter.find(&window) {
                    Some(at) if at < carried => {
                        let rest = piece.slice(at + delimiter_len - carried..);
                        if !rest.is_empty() {
                            self.input.push_front(rest);
                        }
                        window.truncate(at);
                        return Ok(self.before_delimiter(Bytes::from(window)));
                    }
                    // The whole piece is in the window: what may still begin a delimiter
                    // is carried on, the rest is data.
                    _ if taken == piece.len() && taken < delimiter_len => {
                        let keep = partial_delimiter_at_end(&window, self.delimiter.needle());
                        self.carry = window.split_off(window.len() - keep);
                        if !window.is_empty() {
                            return Ok(Some(Bytes::from(window)));
                        }
                        continue;
                    }
                    // No delimiter begins in the carried bytes: they are data.
                    _ => {
                        window.truncate(carried);
                        self.input.push_front(piece);
                        return Ok(Some(Bytes::from(window)));
                    }
                }
            }
            match self.delimiter.find(&piece) {
                Some(at) => {
                    let rest = piece.slice(at + delimiter_len..);
                    if !rest.is_empty() {
                        self.input.push_front(rest);
                    }
                    return Ok(self.before_delimiter(piece.slice(..at)));
                }
                None => {
                    let keep = partial_delimiter_at_end(&piece, self.delimiter.needle());
                    self.carry.extend_from_slice(&piece[piece.len() - keep..]);
                    if keep < piece.len() {
                        return Ok(Some(piece.slice(..piece.len() - keep)));
                    }
                }
            }
        }
    }

    /// `data`, the last bytes before a delimiter: `None` at once when there are none.
    fn before_delimiter(&mut self, data: Bytes) -> Option<Bytes> {
        if data.is_empty() {
            return None;
        }
        self.at_delimiter = true;
        Some(data)
    }

    /// After a delimiter: `--` (the form's end) or a part's header block. Only the
    /// block is copied; what follows it goes back to the input as it came.
    async fn read_head(&mut self) -> Result<Option<PartHead>, FormError> {
        let mut head = BytesMut::new();
        loop {
            let Some(piece) = self.next_input().await? else {
                return Err(FormError::Incomplete);
            };
            let before = head.len();
            let taken = piece.len().min(MAX_PART_HEAD - before);
            head.extend_from_slice(&piece[..taken]);
            if head.starts_with(b"--") {
                return Ok(None);
            }
            // The empty line may begin in the bytes taken before.
            let from = before.saturating_sub(3);
            if let Some(found) = memchr::memmem::find(&head[from..], b"\r\n\r\n") {
                let end = from + found + 4;
                let rest = piece.slice(end - before..);
                if !rest.is_empty() {
                    self.input.push_front(rest);
                }
                return parse_head(&head[..end]).map(Some);
            }
            if head.len() >= MAX_PART_HEAD {
                return Err(FormError::HeadTooLong);
            }
        }
    }
}

/// How many of `data`'s last bytes are the beginning of `delimiter` (which begins with
/// `\r`, the only byte worth looking for).
fn partial_delimiter_at_end(data: &[u8], delimiter: &[u8]) -> usize {
    let from = data.len().saturating_sub(delimiter.len() - 1);
    (from..data.len())
        .find(|&start| data[start] == b'\r' && delimiter.starts_with(&data[start..]))
        .map_or(0, |start| data.len() - start)
}

/// A header block: optional padding, the boundary line's end, the headers, an empty line.
fn parse_head(block: &[u8]) -> Result<PartHead, FormError> {
    let padding = block.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    let Some(lines) = block[padding..].strip_prefix(b"\r\n") else {
        return Err(FormError::BadHead("a boundary is not alone on its line".to_owned()));
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(lines, &mut headers) {
        Ok(httparse::Status::Complete((_, parsed))) => Ok(parsed
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case("content-disposition"))
            .map(|header| content_disposition(header.value))
            .unwrap_or_default()),
        Ok(httparse::Status::Partial) => Err(FormError::BadHead("incomplete".to_owned())),
        Err(error) => Err(FormError::BadHead(error.to_string())),
    }
}

/// `form-data; name="files"; filename="a.csv"`: the first `name` and `filename`.
fn content_disposition(value: &[u8]) -> PartHead {
    let text = String::from_utf8_lossy(value);
    let mut head = PartHead::default();
    let Some((_, parameters_text)) = text.split_once(';') else {
        return head;
    };
    for (key, value) in parameters(parameters_text) {
        if key.eq_ignore_ascii_case("name") {
            head.name.get_or_insert(value);
        } else if key.eq_ignore_ascii_case("filename") {
            head.file_name.get_or_insert(value);
        }
    }
    head
}

/// `key=value; key="quoted \" value"` pairs, in order.
fn parameters(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ';').is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && *c != ';') {
            key.push(c);
        }
        if chars.next_if_eq(&'=').is_none() {
            // A parameter without a value, or the end.
            if chars.peek().is_none() {
                return pairs;
            }
            continue;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
            while chars.next_if(|c| *c != ';').is_some() {}
        } else {
            value = chars.by_ref().take_while(|c| *c != ';').collect::<String>().trim().to_owned();
        }
        pairs.push((key.trim().to_owned(), value));
    }
}

#[cfg(test)]
mod tests;
