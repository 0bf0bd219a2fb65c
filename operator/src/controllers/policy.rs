//! The shared shape of `error_policy`: an invalid spec waits for a spec change, any
//! other error retries after the object's backoff.

/// The [`Action`] after a failed reconcile, logged with the object as `$field = $object`:
/// when `invalid_spec:` holds, wait for a spec change; otherwise retry after the next
/// delay of `backoff:` for the object's `key:`. `$error` has a `reason()`.
///
/// [`Action`]: kube::runtime::controller::Action
macro_rules! retry_action {
    (
        $field:ident = $object:expr,
        error: $error:expr,
        invalid_spec: $invalid_spec:expr,
        backoff: $backoff:expr,
        key: $key:expr $(,)?
    ) => {{
        let error = $error;
        if $invalid_spec {
            tracing::info!($field = %$object, %error, "waiting for a spec change");
            kube::runtime::controller::Action::await_change()
        } else {
            let wait = $backoff.next(&$key);
            tracing::warn!(
                $field = %$object,
                reason = error.reason(),
                %error,
                retry_in_ms = wait.as_millis() as u64,
                "reconcile failed"
            );
            kube::runtime::controller::Action::requeue(wait)
        }
    }};
}

pub(crate) use retry_action;
