//! The one retry helper: transient cluster errors (connection dropped, server busy) are tried
//! again with exponential backoff and jitter; anything else is returned at once.

use std::future::Future;
use std::time::Duration;

use crate::milvus::ClusterError;

/// Attempts before giving up.
const ATTEMPTS: u32 = 5;
/// The first pause; each next one doubles.
const FIRST_PAUSE: Duration = Duration::from_millis(200);

/// Runs `call` until it succeeds, fails for good, or has failed transiently [`ATTEMPTS`] times.
pub async fn retry_transient<T, F, Fut>(mut call: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClusterError>>,
{
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                tracing::warn!(attempt, "transient cluster error, retrying: {e}");
                tokio::time::sleep(pause + jitter(pause)).await;
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Up to half of `pause`: enough to keep workers from retrying in step.
fn jitter(pause: Duration) -> Duration {
    pause.mul_f64(super::sample::unit() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milvus::Role;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn err(transient: bool) -> ClusterError {
        ClusterError::Call {
            role: Role::Target,
            operation: "insert".into(),
            detail: "x".into(),
            transient,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_then_succeeds() {
        let calls = AtomicU32::new(0);
        let r = retry_transient(|| async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(err(true))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_on_permanent_errors_at_once_and_on_transient_after_limit() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry_transient(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(err(false))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        calls.store(0, Ordering::SeqCst);
        let r: Result<(), _> = retry_transient(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(err(true))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);
    }
}
