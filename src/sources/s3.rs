//! S3 access through the AWS SDK: client construction from the standard
//! credential chain, and streaming `GetObject` with a size cap.
//!
//! The region comes from the chain unless given; `endpoint_url` (or
//! `AWS_ENDPOINT_URL`) points the clients at an S3-compatible store or at a
//! test server, usually with path-style addressing.

use std::time::Duration;

#[cfg(feature = "full")]
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// Time limit on one attempt of an AWS request by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// Region; `None` takes it from the standard chain.
    pub region: Option<String>,
    /// Endpoint override for S3 and SQS (S3-compatible stores, tests).
    pub endpoint_url: Option<String>,
    /// Path-style S3 addressing (`endpoint/bucket/key`).
    pub force_path_style: bool,
    /// Time limit on one attempt of a request, up to its response headers
    /// ([`DEFAULT_REQUEST_TIMEOUT`] when `None`). Without one, a connection
    /// that stalls before answering holds its caller forever; with it, the
    /// SDK retries and then reports a transient error. A body that stalls
    /// once it has begun is cut by the SDK's stalled-stream protection.
    pub request_timeout: Option<Duration>,
}

impl AwsOptions {
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT)
    }
}

/// The SDK's timeouts (connect timeout and the like) with a per-attempt
/// limit of `attempt`.
#[cfg(feature = "full")]
pub fn attempt_timeouts(cfg: &aws_config::SdkConfig, attempt: Duration) -> aws_sdk_s3::config::timeout::TimeoutConfig {
    let mut tc = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(attempt)
        .build();
    if let Some(base) = cfg.timeout_config() {
        tc.take_defaults_from(base);
    }
    tc
}

/// Why an S3 request failed. Every variant names the object or bucket.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("{uri}: no such object")]
    NoSuchKey { uri: String },
    #[error("{uri}: access denied")]
    AccessDenied { uri: String },
    #[error("{uri}: object is {size} bytes, over the cap of {limit} bytes")]
    TooLarge { uri: String, size: u64, limit: u64 },
    /// Throttling, 5xx, timeouts, connection errors: worth retrying.
    #[error("{uri}: transient S3 error: {reason}")]
    Transient { uri: String, reason: String },
    #[error("{uri}: S3 error: {reason}")]
    Other { uri: String, reason: String },
}

impl S3Error {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, S3Error::Transient { .. })
    }

    pub fn class(&self) -> &'static str {
        match self {
            S3Error::NoSuchKey { .. } => "no_such_key",
            S3Error::AccessDenied { .. } => "access_denied",
            S3Error::TooLarge { .. } => "too_large",
            S3Error::Transient { .. } => "transient",
            S3Error::Other { .. } => "s3",
        }
    }
}

#[cfg(feature = "full")]
/// Loads the shared SDK configuration (credentials, region, endpoint).
pub async fn sdk_config(opts: &AwsOptions) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = &opts.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(u) = &opts.endpoint_url {
        loader = loader.endpoint_url(u.clone());
    }
    loader.load().await
}

#[cfg(feature = "full")]
/// An S3 client honouring the path-style option and the request timeout.
pub fn s3_client(cfg: &aws_config::SdkConfig, opts: &AwsOptions) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(cfg)
        .force_path_style(opts.force_path_style)
        .timeout_config(attempt_timeouts(cfg, opts.request_timeout()))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

#[cfg(feature = "full")]
fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    uri: &str,
    e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> S3Error {
    let uri = uri.to_owned();
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => S3Error::Transient {
            uri,
            reason: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
        },
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or_default();
            match (status, code) {
                (404, _) | (_, "NoSuchKey") => S3Error::NoSuchKey { uri },
                (403, _) | (_, "AccessDenied") => S3Error::AccessDenied { uri },
                (429, _) | (500..=599, _) | (_, "SlowDown" | "Throttling" | "RequestTimeout" | "InternalError") => {
                    S3Error::Transient {
                        uri,
                        reason: format!("HTTP {status} {code}"),
                    }
                }
                _ => S3Error::Other {
                    uri,
                    reason: format!("HTTP {status} {code}: {}", se.err().message().unwrap_or_default()),
                },
            }
        }
        _ => S3Error::Other {
            uri,
            reason: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
        },
    }
}

/// A fetched object: its stored bytes and identity.
#[derive(Debug)]
pub struct Fetched {
    pub etag: String,
    pub size: u64,
}

#[cfg(feature = "full")]
/// Starts a GetObject and returns its body as a stream, refusing objects
/// whose stored size (from the header) exceeds `limit`.
pub async fn open_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    limit: u64,
) -> Result<(aws_sdk_s3::primitives::ByteStream, Fetched), S3Error> {
    let uri = format!("s3://{bucket}/{key}");
    let resp = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| classify(&uri, e))?;
    let size = resp.content_length().unwrap_or(0).max(0) as u64;
    if size > limit {
        return Err(S3Error::TooLarge { uri, size, limit });
    }
    let etag = resp.e_tag().unwrap_or_default().trim_matches('"').to_owned();
    Ok((resp.body, Fetched { etag, size }))
}

#[cfg(feature = "full")]
/// Streams `s3://bucket/key` into `out` (cleared first), refusing objects
/// whose stored size exceeds `limit` (checked from the header and while
/// streaming, so a lying header cannot make memory grow past it).
pub async fn get_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    limit: u64,
    out: &mut Vec<u8>,
) -> Result<Fetched, S3Error> {
    let uri = format!("s3://{bucket}/{key}");
    out.clear();
    let (mut body, Fetched { etag, .. }) = open_object(client, bucket, key, limit).await?;
    while let Some(chunk) = body.try_next().await.map_err(|e| S3Error::Transient {
        uri: uri.clone(),
        reason: format!("reading the body: {e}"),
    })? {
        if (out.len() + chunk.len()) as u64 > limit {
            out.clear();
            return Err(S3Error::TooLarge {
                uri,
                size: (out.len() + chunk.len()) as u64,
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        etag,
        size: out.len() as u64,
    })
}
