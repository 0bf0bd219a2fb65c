//! `#[serde(default = "...")]` needs a function path; the small ones shared by several
//! kinds live here. schemars also writes each value into the schema's `default`, so the
//! apiserver fills them in and `kubectl get -o yaml` shows the effective value.

use crate::DEFAULT_COLLECTION;

pub(crate) fn yes() -> bool {
    true
}

pub(crate) fn collection() -> String {
    DEFAULT_COLLECTION.to_owned()
}

pub(crate) fn collections() -> Vec<String> {
    vec![DEFAULT_COLLECTION.to_owned()]
}

// `skip_serializing_if` for optional blocks (validation, worker, ...): a block equal to
// its default is left out, and schemars then writes no `default` for it either, so the
// apiserver does not add whole blocks the user never wrote. The fields inside a block
// keep their own defaults.
pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
