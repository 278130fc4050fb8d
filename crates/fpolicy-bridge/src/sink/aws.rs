//! What the SQS and EventBridge sinks share: SDK configuration from the
//! standard AWS chain, batch planning within service limits, calls in
//! flight, and error classification.

use std::future::Future;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sqs::error::ProvideErrorMetadata;

use super::{EntryFailure, SinkError};

/// Largest request (and entry) both services accept: 256 KiB.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Entries per SendMessageBatch / PutEvents call.
pub const MAX_ENTRIES: usize = 10;

/// `max_in_flight` when a `[[sink]]` leaves it out.
pub fn default_in_flight() -> usize {
    8
}

/// `max_in_flight` of a cloud sink: 1..=256.
pub fn validate_in_flight(sink: &str, max_in_flight: usize) -> Result<(), String> {
    if (1..=256).contains(&max_in_flight) {
        Ok(())
    } else {
        Err(format!("sink {sink:?}: max_in_flight must be 1..=256"))
    }
}

/// SDK configuration: credentials, region and endpoint from the standard
/// chain (environment, profile, ECS task role, IMDS; `AWS_ENDPOINT_URL`),
/// an optional per-sink endpoint, and timeouts so an unreachable service
/// fails a call instead of hanging it.
pub async fn aws_config(endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(10))
            .operation_timeout(Duration::from_secs(30))
            .build(),
    );
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// A single-threaded runtime owned by one sink's pipeline thread, created
/// there on first use: the sink's HTTP connections, timers and wake-ups
/// stay on that thread instead of bouncing between it and the server's
/// runtime (measured: fewer context switches, more events per core).
#[derive(Default)]
pub struct LocalRuntime(Option<tokio::runtime::Runtime>);

impl LocalRuntime {
    pub fn block_on<F: Future>(&mut self, f: F) -> Result<F::Output, SinkError> {
        if self.0.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| SinkError::Other(format!("cannot start the sink's runtime: {e}")))?;
            self.0 = Some(rt);
        }
        Ok(self.0.as_ref().expect("created above").block_on(f))
    }
}

/// Splits entries of the given sizes into calls of at most `MAX_ENTRIES`
/// entries and `MAX_REQUEST_BYTES` bytes. Entries that cannot fit in any
/// call are returned separately (to be rejected).
pub fn plan_calls(sizes: &[usize]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let mut calls = Vec::new();
    let mut too_large = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut bytes = 0;
    for (i, &size) in sizes.iter().enumerate() {
        if size > MAX_REQUEST_BYTES {
            too_large.push(i);
            continue;
        }
        if current.len() == MAX_ENTRIES || bytes + size > MAX_REQUEST_BYTES {
            calls.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(i);
        bytes += size;
    }
    if !current.is_empty() {
        calls.push(current);
    }
    (calls, too_large)
}

/// A delivery's entries grouped into calls.
pub struct Planned<E> {
    /// (positions in the batch, entries) per call.
    pub calls: Vec<(Vec<usize>, Vec<E>)>,
    pub positions: Vec<Vec<usize>>,
    /// Calls to keep in flight: `max(1, min(calls, api_calls_per_sec, max_in_flight))`.
    pub in_flight: usize,
}

/// Groups `entries` (each with its size and its position in the batch)
/// into calls within the service limits, rejects the ones too large for any
/// call (`too_large` is the reason) into `out`, and sizes the concurrency.
pub fn plan<E>(
    entries: Vec<E>,
    sizes: &[usize],
    index: &[usize],
    too_large: &str,
    api_calls_per_sec: f64,
    max_in_flight: usize,
    out: &mut super::Delivered,
) -> Planned<E> {
    let mut entries: Vec<Option<E>> = entries.into_iter().map(Some).collect();
    let (groups, big) = plan_calls(sizes);
    for k in big {
        out.failures
            .push((index[k], EntryFailure::Reject(too_large.to_owned())));
    }
    let calls: Vec<(Vec<usize>, Vec<E>)> = groups
        .into_iter()
        .map(|ks| {
            let batch = ks.iter().filter_map(|&k| entries[k].take()).collect();
            (ks.iter().map(|&k| index[k]).collect(), batch)
        })
        .collect();
    let positions = calls.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    let in_flight = crate::concurrency::concurrency(
        calls.len() as u64,
        api_calls_per_sec,
        1.0,
        max_in_flight as u32,
    ) as usize;
    out.in_flight = in_flight;
    Planned {
        calls,
        positions,
        in_flight,
    }
}

/// Runs `call` for every item with at most `in_flight` at once; results in
/// completion order, each with the item's position. The calls are polled
/// on the caller's thread (the sink's), not spawned: fewer cross-thread
/// wake-ups per call.
pub async fn in_flight<I, F, T>(
    items: Vec<I>,
    in_flight: usize,
    call: impl Fn(I) -> F,
) -> Vec<(usize, T)>
where
    F: Future<Output = T>,
{
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let mut running = FuturesUnordered::new();
    let mut items = items.into_iter().enumerate();
    let mut out = Vec::new();
    loop {
        while running.len() < in_flight.max(1) {
            let Some((i, item)) = items.next() else { break };
            let fut = call(item);
            running.push(async move { (i, fut.await) });
        }
        match running.next().await {
            Some(r) => out.push(r),
            None => break,
        }
    }
    out
}

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "SlowDown",
];

pub fn is_throttling_code(code: &str) -> bool {
    THROTTLING.contains(&code)
}

/// A whole-call failure: always worth retrying (network, 5xx, throttling,
/// and also a missing queue or denied access, which an operator can fix
/// while the spool holds the events).
pub fn call_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    sink: &str,
    err: &aws_sdk_sqs::error::SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
) -> SinkError {
    let code = err.code().unwrap_or_default().to_owned();
    let detail = match err.message() {
        Some(m) => format!("{code}: {m}"),
        None if !code.is_empty() => code.clone(),
        None => aws_sdk_sqs::error::DisplayErrorContext(err).to_string(),
    };
    SinkError::Transient {
        sink: sink.to_owned(),
        message: detail,
        throttled: is_throttling_code(&code),
    }
}

/// One SDK call's outcome (the SQS and EventBridge SDKs share the types).
pub type CallResult<R, E> =
    Result<R, aws_sdk_sqs::error::SdkError<E, aws_sdk_sqs::config::http::HttpResponse>>;

/// Folds the results of a delivery's calls into `out`. `entry_failures`
/// lists what a successful response reports per entry: (position in the
/// batch, failure, throttled). A call that failed as a whole retries all its
/// entries; when every call failed, the call error itself is returned.
pub fn settle_calls<R, E>(
    sink: &str,
    positions: &[Vec<usize>],
    results: Vec<(usize, CallResult<R, E>)>,
    mut out: super::Delivered,
    mut entry_failures: impl FnMut(usize, &R) -> Vec<(usize, EntryFailure, bool)>,
) -> Result<super::Delivered, SinkError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut call_failures = 0;
    let mut last_error = None;
    for (c, result) in results {
        match result {
            Ok(resp) => {
                for (i, failure, throttled) in entry_failures(c, &resp) {
                    out.throttled |= throttled;
                    out.failures.push((i, failure));
                }
            }
            Err(e) => {
                let err = call_error(sink, &e);
                out.throttled |= err.is_throttling();
                out.failures.extend(all_retry(&positions[c], &err));
                call_failures += 1;
                last_error = Some(err);
            }
        }
    }
    match last_error {
        Some(err) if call_failures == positions.len() => Err(err),
        _ => Ok(out),
    }
}

/// The failure of every entry of a call that failed as a whole.
pub fn all_retry(indices: &[usize], why: &SinkError) -> Vec<(usize, EntryFailure)> {
    indices
        .iter()
        .map(|&i| (i, EntryFailure::Retry(why.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_respect_entry_and_byte_limits() {
        let (calls, big) = plan_calls(&[100; 25]);
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
        assert!(big.is_empty());
        let (calls, big) = plan_calls(&[200 * 1024, 100 * 1024, 300 * 1024, 10]);
        assert_eq!(calls, vec![vec![0], vec![1, 3]]);
        assert_eq!(big, vec![2]);
        let (calls, _) = plan_calls(&[]);
        assert!(calls.is_empty());
    }
}
