//! SQS: receiving notifications, extending their visibility, deleting them.
//!
//! Message life cycle (each state is a distinct type of handling in the
//! daemon, see `daemon/mod.rs`):
//!
//! ```text
//! Received ──parse──▶ Test ─────────────────────────────────▶ Deleted
//!    │                Unknown / not allowed ─────────────────▶ Left (redrive → DLQ)
//!    └──▶ Objects: Processing(n pending) ──all committed──▶ Deleted
//!                              └──transient failure─────────▶ Left (redelivered)
//!                              └──poison, policy leave──────▶ Left (redrive → DLQ)
//! ```
//!
//! A message is deleted only after every object it names is committed to
//! the store (or skipped), so a crash at any point leads to redelivery, and
//! the ledger makes redelivery harmless.

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub receive_count: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    #[error("{queue}: {op} failed: {reason}")]
    Request {
        queue: String,
        op: &'static str,
        reason: String,
    },
}

/// An SQS client whose request attempts give up after `attempt_timeout`
/// (which must leave room for the long-poll wait of a receive): a stalled
/// connection must not stop the daemon from receiving for good.
pub fn sqs_client(cfg: &aws_config::SdkConfig, attempt_timeout: std::time::Duration) -> aws_sdk_sqs::Client {
    let conf = aws_sdk_sqs::config::Builder::from(cfg)
        .timeout_config(crate::sources::s3::attempt_timeouts(cfg, attempt_timeout))
        .build();
    aws_sdk_sqs::Client::from_conf(conf)
}

fn err<E: std::error::Error + ProvideErrorMetadata + 'static>(
    queue: &str,
    op: &'static str,
    e: aws_sdk_sqs::error::SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
) -> SqsError {
    SqsError::Request {
        queue: queue.to_owned(),
        op,
        reason: DisplayErrorContext(&e).to_string(),
    }
}

/// Long-polls for up to `max` messages (1..=10).
pub async fn receive(
    client: &aws_sdk_sqs::Client,
    queue: &str,
    max: i32,
    wait_secs: i32,
    visibility_secs: i32,
) -> Result<Vec<Received>, SqsError> {
    let out = client
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(max.clamp(1, 10))
        .wait_time_seconds(wait_secs)
        .visibility_timeout(visibility_secs)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .map_err(|e| err(queue, "ReceiveMessage", e))?;
    Ok(out
        .messages()
        .iter()
        .filter_map(|m| {
            Some(Received {
                message_id: m.message_id()?.to_owned(),
                receipt_handle: m.receipt_handle()?.to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
            })
        })
        .collect())
}

/// Extends a message's visibility by `secs` from now.
pub async fn extend_visibility(
    client: &aws_sdk_sqs::Client,
    queue: &str,
    receipt: &str,
    secs: i32,
) -> Result<(), SqsError> {
    client
        .change_message_visibility()
        .queue_url(queue)
        .receipt_handle(receipt)
        .visibility_timeout(secs)
        .send()
        .await
        .map_err(|e| err(queue, "ChangeMessageVisibility", e))?;
    Ok(())
}

/// Deletes messages in batches of 10. Returns the ids that failed.
pub async fn delete_batch(
    client: &aws_sdk_sqs::Client,
    queue: &str,
    items: &[(String, String)],
) -> Result<Vec<String>, SqsError> {
    let mut failed = Vec::new();
    for chunk in items.chunks(10) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, (_, receipt))| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt)
                    .build()
                    .ok()
            })
            .collect();
        let out = client
            .delete_message_batch()
            .queue_url(queue)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| err(queue, "DeleteMessageBatch", e))?;
        for f in out.failed() {
            if let Ok(i) = f.id().parse::<usize>() {
                failed.push(chunk[i].0.clone());
            }
        }
    }
    Ok(failed)
}
