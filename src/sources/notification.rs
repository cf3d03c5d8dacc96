//! SQS message bodies → the S3 objects they announce.
//!
//! Understood shapes (nested SNS wrapping is unwrapped first):
//! * S3 event notifications (`Records[].s3.bucket.name/object.key`); keys are
//!   URL-encoded with `+` for a space, and are decoded here;
//! * SNS envelopes (`Type: Notification`, `Message` holding any shape);
//! * EventBridge "Object Created" events (`detail.bucket.name`,
//!   `detail.object.key`; EventBridge keys are not URL-encoded);
//! * CloudTrail's own SNS notification (`s3Bucket`, `s3ObjectKey: [...]`);
//! * `s3:TestEvent`, which announces nothing.
//!
//! Anything else is [`NotificationError::Unknown`], so that the caller can
//! leave the message to the queue's redrive policy instead of deleting it.
//!
//! Bodies are untrusted input (anyone allowed to send to the queue, or to
//! write a bucket that notifies it, shapes them): a bucket name that S3
//! could not have issued is refused here, and keys are only ever used as
//! S3 keys, never as local paths. Which buckets are accepted at all is the
//! daemon's `allowed_buckets`.

use serde_json::Value;

/// One announced object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    pub size: Option<u64>,
    pub etag: Option<String>,
}

impl ObjectRef {
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// What a message body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Objects to process (at least one).
    Objects(Vec<ObjectRef>),
    /// `s3:TestEvent`, sent when a notification configuration is set.
    Test,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("message body is not JSON: {0}")]
    NotJson(String),
    #[error("unrecognised message body: {0}")]
    Unknown(String),
    #[error("invalid bucket name {0:?}")]
    InvalidBucket(String),
    #[error("invalid object key {0:?} (S3 keys are 1 to 1024 bytes)")]
    InvalidKey(String),
}

impl NotificationError {
    /// Stable failure class, as stored in the `failures` table.
    pub fn class(&self) -> &'static str {
        match self {
            NotificationError::NotJson(_) => "notification_not_json",
            NotificationError::Unknown(_) => "notification_unknown",
            NotificationError::InvalidBucket(_) => "notification_invalid_bucket",
            NotificationError::InvalidKey(_) => "notification_invalid_key",
        }
    }
}

/// Whether S3 could have issued this bucket name: 3 to 63 characters
/// (up to 255 for legacy us-east-1 buckets, which also allowed upper case and
/// `_`), letters, digits, `.`, `-` and `_`, starting and ending with a letter
/// or digit, without `..`. Anything else (a `/`, spaces, control characters)
/// cannot name a bucket and would only confuse request building and logs.
pub fn valid_bucket_name(b: &str) -> bool {
    let bytes = b.as_bytes();
    (3..=255).contains(&bytes.len())
        && bytes
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !b.contains("..")
}

/// Whether `k` can be an S3 object key: 1 to 1024 bytes of UTF-8.
pub fn valid_key(k: &str) -> bool {
    (1..=1024).contains(&k.len())
}

/// Decodes an S3 event key: `+` is a space, then percent-decoding.
pub fn decode_s3_key(key: &str) -> String {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses one SQS message body.
pub fn parse(body: &str) -> Result<Notification, NotificationError> {
    let v: Value = serde_json::from_str(body).map_err(|e| NotificationError::NotJson(e.to_string()))?;
    let n = parse_value(&v, 0)?;
    if let Notification::Objects(objs) = &n {
        if let Some(o) = objs.iter().find(|o| !valid_bucket_name(&o.bucket)) {
            return Err(NotificationError::InvalidBucket(o.bucket.clone()));
        }
        // An empty key (which fuzzing showed a CloudTrail notification can
        // carry) names no object; S3 would refuse it only after a request.
        if let Some(o) = objs.iter().find(|o| !valid_key(&o.key)) {
            let mut shown = o.key.clone();
            shown.truncate(shown.floor_char_boundary(100));
            return Err(NotificationError::InvalidKey(shown));
        }
    }
    Ok(n)
}

fn parse_value(v: &Value, depth: usize) -> Result<Notification, NotificationError> {
    let unknown = |why: &str| Err(NotificationError::Unknown(why.to_owned()));
    if depth > 4 {
        return unknown("envelopes nested more than 4 deep");
    }
    let Some(obj) = v.as_object() else {
        return unknown("not a JSON object");
    };
    // SNS envelope: the payload is a JSON document in a string.
    if obj.get("Type").and_then(Value::as_str) == Some("Notification") {
        let Some(msg) = obj.get("Message").and_then(Value::as_str) else {
            return unknown("SNS notification without a Message string");
        };
        let inner: Value =
            serde_json::from_str(msg).map_err(|e| NotificationError::NotJson(format!("SNS Message: {e}")))?;
        return parse_value(&inner, depth + 1);
    }
    if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Notification::Test);
    }
    // CloudTrail's notification of a delivered log file.
    if let (Some(bucket), Some(keys)) = (obj.get("s3Bucket").and_then(Value::as_str), obj.get("s3ObjectKey")) {
        let keys: Vec<&str> = match keys {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            Value::String(s) => vec![s.as_str()],
            _ => Vec::new(),
        };
        if keys.is_empty() {
            return unknown("CloudTrail notification without s3ObjectKey");
        }
        return Ok(Notification::Objects(
            keys.into_iter()
                .map(|k| ObjectRef {
                    bucket: bucket.to_owned(),
                    key: k.to_owned(),
                    size: None,
                    etag: None,
                })
                .collect(),
        ));
    }
    // EventBridge.
    if obj.get("source").and_then(Value::as_str) == Some("aws.s3") {
        if obj.get("detail-type").and_then(Value::as_str) != Some("Object Created") {
            return unknown("EventBridge S3 event that is not \"Object Created\"");
        }
        let d = obj.get("detail");
        let bucket = d.and_then(|d| d.pointer("/bucket/name")).and_then(Value::as_str);
        let key = d.and_then(|d| d.pointer("/object/key")).and_then(Value::as_str);
        return match (bucket, key) {
            (Some(b), Some(k)) => Ok(Notification::Objects(vec![ObjectRef {
                bucket: b.to_owned(),
                key: k.to_owned(),
                size: d.and_then(|d| d.pointer("/object/size")).and_then(Value::as_u64),
                etag: d
                    .and_then(|d| d.pointer("/object/etag"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }])),
            _ => unknown("EventBridge Object Created event without detail.bucket.name/detail.object.key"),
        };
    }
    // S3 event notification.
    if let Some(records) = obj.get("Records").and_then(Value::as_array) {
        let mut out = Vec::new();
        for r in records {
            let created = r
                .get("eventName")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with("ObjectCreated:"));
            let bucket = r.pointer("/s3/bucket/name").and_then(Value::as_str);
            let key = r.pointer("/s3/object/key").and_then(Value::as_str);
            match (bucket, key) {
                (Some(b), Some(k)) if created => out.push(ObjectRef {
                    bucket: b.to_owned(),
                    key: decode_s3_key(k),
                    size: r.pointer("/s3/object/size").and_then(Value::as_u64),
                    etag: r.pointer("/s3/object/eTag").and_then(Value::as_str).map(str::to_owned),
                }),
                (Some(_), Some(_)) => {}
                _ => return unknown("S3 event record without s3.bucket.name/s3.object.key"),
            }
        }
        if out.is_empty() {
            return unknown("S3 event notification with no ObjectCreated record");
        }
        return Ok(Notification::Objects(out));
    }
    unknown("none of: S3 event, SNS envelope, EventBridge Object Created, CloudTrail notification, s3:TestEvent")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bucket: &str, key: &str) -> ObjectRef {
        ObjectRef {
            bucket: bucket.into(),
            key: key.into(),
            size: None,
            etag: None,
        }
    }

    #[test]
    fn s3_event_keys_are_url_decoded_and_plus_is_space() {
        // moto encodes `/` as %2F; AWS leaves it.
        let body = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","eventTime":"2026-10-05T12:00:00.000000","s3":{"bucket":{"name":"trail"},"object":{"key":"AWSLogs%2F111122223333%2FCloudTrail%2Fa+b%2Bc.json.gz","size":123,"eTag":"abc"}}}]}"#;
        assert_eq!(
            parse(body).unwrap(),
            Notification::Objects(vec![ObjectRef {
                bucket: "trail".into(),
                key: "AWSLogs/111122223333/CloudTrail/a b+c.json.gz".into(),
                size: Some(123),
                etag: Some("abc".into()),
            }])
        );
    }

    #[test]
    fn empty_or_oversized_keys_and_impossible_bucket_names_are_refused() {
        // Regression (fuzzing): `{"s3Bucket": "abb_bil","s3ObjectKey": ["", "s"]}`
        // was accepted, with an empty key to fetch.
        assert_eq!(
            parse(r#"{"s3Bucket": "abb_bil","s3ObjectKey": ["", "s"]}"#),
            Err(NotificationError::InvalidKey(String::new()))
        );
        let long = "k".repeat(1025);
        let body = serde_json::json!({"s3Bucket": "trail", "s3ObjectKey": [long]}).to_string();
        assert!(matches!(parse(&body), Err(NotificationError::InvalidKey(k)) if k.len() == 100));
        for bad in [
            "",
            "ab",
            "trail/../other",
            "Trail ",
            "-trail",
            "trail-",
            "a..b",
            r"tr\u0000ail",
        ] {
            let body = format!(r#"{{"s3Bucket": "{bad}", "s3ObjectKey": ["k"]}}"#);
            assert!(
                matches!(parse(&body), Err(NotificationError::InvalidBucket(_))),
                "{bad:?} accepted"
            );
        }
        for good in ["trail", "my.trail-bucket-2026", "Legacy_Bucket"] {
            assert!(valid_bucket_name(good), "{good}");
        }
    }

    #[test]
    fn test_event_is_recognised() {
        let body = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-10-05T12:00:00Z","Bucket":"trail","RequestId":"x","HostId":"y"}"#;
        assert_eq!(parse(body).unwrap(), Notification::Test);
    }

    #[test]
    fn sns_wrapped_shapes_unwrap() {
        let inner = r#"{"s3Bucket":"trail","s3ObjectKey":["AWSLogs/1/CloudTrail/us-east-1/2026/10/05/a.json.gz","AWSLogs/1/CloudTrail/us-east-1/2026/10/05/b.json.gz"]}"#;
        let body = serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": inner}).to_string();
        assert_eq!(
            parse(&body).unwrap(),
            Notification::Objects(vec![
                one("trail", "AWSLogs/1/CloudTrail/us-east-1/2026/10/05/a.json.gz"),
                one("trail", "AWSLogs/1/CloudTrail/us-east-1/2026/10/05/b.json.gz"),
            ])
        );
        let s3 = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"trail"},"object":{"key":"k%3D1"}}}]}"#;
        let body = serde_json::json!({"Type": "Notification", "Message": s3}).to_string();
        assert_eq!(parse(&body).unwrap(), Notification::Objects(vec![one("trail", "k=1")]));
    }

    #[test]
    fn eventbridge_object_created() {
        let body = r#"{"version":"0","detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"trail"},"object":{"key":"AWSLogs/1/x.json.gz","size":5,"etag":"e"}}}"#;
        assert_eq!(
            parse(body).unwrap(),
            Notification::Objects(vec![ObjectRef {
                bucket: "trail".into(),
                key: "AWSLogs/1/x.json.gz".into(),
                size: Some(5),
                etag: Some("e".into()),
            }])
        );
    }

    #[test]
    fn unknown_and_broken_bodies_are_errors_not_empty_successes() {
        assert!(matches!(parse("not json"), Err(NotificationError::NotJson(_))));
        assert!(matches!(
            parse(r#"{"hello":"world"}"#),
            Err(NotificationError::Unknown(_))
        ));
        assert!(matches!(parse(r#"[1]"#), Err(NotificationError::Unknown(_))));
        assert!(matches!(
            parse(
                r#"{"Records":[{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"t"},"object":{"key":"k"}}}]}"#
            ),
            Err(NotificationError::Unknown(_))
        ));
        assert!(matches!(
            parse(r#"{"Type":"Notification","Message":"{oops"}"#),
            Err(NotificationError::NotJson(_))
        ));
    }
}
