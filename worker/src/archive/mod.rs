//! Placeholder: built in issue 4.
