//! Readers of uploaded files: sheet names, headers and rows of workbooks (calamine),
//! CSV with delimiter sniffing (csv), and the first bytes of text files. Streamed, so
//! that validating a file costs what the rule needs, not what the file holds.

mod cell;

pub use cell::Cell;
