//! Listing an S3 Access Point (alias or ARN) or bucket with ListObjectsV2,
//! a page at a time, in key order.

use aws_sdk_s3::Client;

use crate::state::ObjectState;

#[derive(Debug, thiserror::Error)]
#[error("ListObjectsV2 on {bucket} (prefix {prefix:?}): {message}")]
pub struct ListError {
    pub bucket: String,
    pub prefix: String,
    pub message: String,
    /// Access denied or missing bucket: worth a clear message, still retried.
    pub forbidden_or_missing: bool,
}

/// An S3 client for polling: the standard AWS chain; with an endpoint
/// override (tests, local S3), path-style addressing.
pub async fn client(endpoint_url: Option<&str>) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(endpoint_url.is_some())
        .build();
    Client::from_conf(conf)
}

/// Lists `bucket`/`prefix`, keeping keys that end with one of `suffixes`
/// (all when empty), handing each page to `on_page`. Returns the number of
/// LIST requests made (pages).
pub async fn list(
    client: &Client,
    bucket: &str,
    prefix: &str,
    suffixes: &[String],
    mut on_page: impl FnMut(Vec<ObjectState>),
) -> Result<u64, ListError> {
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut req = client.list_objects_v2().bucket(bucket).prefix(prefix);
        if let Some(t) = &token {
            req = req.continuation_token(t);
        }
        let resp = req.send().await.map_err(|e| {
            use aws_sdk_s3::error::ProvideErrorMetadata;
            let code = e.code().unwrap_or_default().to_owned();
            ListError {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
                forbidden_or_missing: matches!(
                    code.as_str(),
                    "AccessDenied" | "NoSuchBucket" | "NoSuchAccessPoint" | "AllAccessDisabled"
                ),
                message: match e.message() {
                    Some(m) => format!("{code}: {m}"),
                    None => aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                },
            }
        })?;
        pages += 1;
        let page: Vec<ObjectState> = resp
            .contents()
            .iter()
            .filter_map(|o| {
                let key = o.key()?;
                if !suffixes.is_empty() && !suffixes.iter().any(|s| key.ends_with(s.as_str())) {
                    return None;
                }
                Some(ObjectState {
                    key: key.to_owned(),
                    etag: o.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    last_modified: o.last_modified().map_or(0, |t| t.secs()),
                })
            })
            .collect();
        on_page(page);
        match (resp.is_truncated(), resp.next_continuation_token()) {
            (Some(true), Some(t)) => token = Some(t.to_owned()),
            _ => return Ok(pages),
        }
    }
}
