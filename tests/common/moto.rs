#![allow(dead_code)]
//! A real `moto_server` (S3 and SQS wire protocol) on 127.0.0.1, on a free
//! port, stopped when dropped; and [`Env`], a bucket `trail` and a queue
//! `trail-events` on it with the daemon pointed at them.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::common::{Proc, db, log_files, query_pairs};

pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Moto {
            child: Self::spawn(port),
            port,
        }
    }

    /// Kills the server (all its state is lost, as moto keeps it in memory).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a fresh, empty server on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(self.port);
    }

    fn spawn(port: u16) -> Child {
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server must be installed (tests/run installs moto[server])");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        child
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An S3 client for the test side (static fake credentials).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Env {
    pub moto: Moto,
    pub rt: tokio::runtime::Runtime,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl Env {
    /// moto with a bucket `trail` notifying queue `trail-events`.
    pub fn new(visibility_secs: u32, notify: bool) -> Env {
        let moto = Moto::start();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (s3, sqs, queue_url) = Self::setup(&moto, &rt, visibility_secs, notify);
        Env {
            moto,
            rt,
            s3,
            sqs,
            queue_url,
        }
    }

    pub fn setup(
        moto: &Moto,
        rt: &tokio::runtime::Runtime,
        visibility_secs: u32,
        notify: bool,
    ) -> (aws_sdk_s3::Client, aws_sdk_sqs::Client, String) {
        let s3 = moto.s3();
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .endpoint_url(moto.endpoint())
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .build();
        let sqs = aws_sdk_sqs::Client::from_conf(conf);
        let queue_url = rt.block_on(async {
            let q = sqs
                .create_queue()
                .queue_name("trail-events")
                .attributes(QueueAttributeName::VisibilityTimeout, visibility_secs.to_string())
                .send()
                .await
                .unwrap();
            let url = q.queue_url().unwrap().to_owned();
            s3.create_bucket().bucket("trail").send().await.unwrap();
            if notify {
                let arn = queue_arn(&sqs, &url).await;
                s3.put_bucket_notification_configuration()
                    .bucket("trail")
                    .notification_configuration(
                        NotificationConfiguration::builder()
                            .queue_configurations(
                                QueueConfiguration::builder()
                                    .queue_arn(arn)
                                    .events(Event::from("s3:ObjectCreated:*"))
                                    .build()
                                    .unwrap(),
                            )
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap();
            }
            url
        });
        (s3, sqs, queue_url)
    }

    pub fn upload(&self, root: &Path) -> Vec<String> {
        self.upload_under(root, "")
    }

    /// Uploads the files below `root/sub`, keyed relative to `root`.
    pub fn upload_under(&self, root: &Path, sub: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for f in log_files(&root.join(sub)) {
            let key = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            self.put(&key, std::fs::read(&f).unwrap());
            keys.push(key);
        }
        keys
    }

    pub fn put(&self, key: &str, body: Vec<u8>) {
        self.rt
            .block_on(self.s3.put_object().bucket("trail").key(key).body(body.into()).send())
            .unwrap();
    }

    pub fn send(&self, body: &str) {
        self.rt
            .block_on(
                self.sqs
                    .send_message()
                    .queue_url(&self.queue_url)
                    .message_body(body)
                    .send(),
            )
            .unwrap();
    }

    /// (visible, in flight) messages.
    pub fn queue_depth(&self) -> (u64, u64) {
        self.queue_depth_of(&self.queue_url)
    }

    /// (visible, in flight) messages of the queue at `url`.
    pub fn queue_depth_of(&self, url: &str) -> (u64, u64) {
        let a = self
            .rt
            .block_on(
                self.sqs
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                    .send(),
            )
            .unwrap();
        let a = a.attributes().unwrap();
        let get = |k: &QueueAttributeName| a.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        (
            get(&QueueAttributeName::ApproximateNumberOfMessages),
            get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// The daemon command against this queue, S3 and SQS at `endpoint`
    /// (moto itself, or a fault-injecting proxy in front of it).
    pub fn daemon_command_via(&self, endpoint: &str, data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_trailwatch"));
        c.args([
            "daemon",
            "--queue-url",
            &self.queue_url,
            "--endpoint-url",
            endpoint,
            "--force-path-style",
        ])
        .args(["--wait-time-secs", "1", "--data-dir"])
        .arg(data)
        .args(extra)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("TRAILWATCH_DATA_DIR");
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    pub fn daemon(&self, data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Child {
        self.daemon_command_via(&self.moto.endpoint(), data, extra, env)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The daemon with its log collected as it runs.
    pub fn start_daemon(&self, data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Proc {
        Proc::spawn(&mut self.daemon_command_via(&self.moto.endpoint(), data, extra, env))
    }

    /// The S3 event notification moto would send for `key` in `trail`.
    pub fn s3_event(key: &str) -> String {
        serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "trail"}, "object": {"key": key}}}]}).to_string()
    }

    /// Sends one S3 event notification per key, ten per request.
    pub fn notify(&self, keys: &[String]) {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        for chunk in keys.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(Self::s3_event(k))
                        .build()
                        .unwrap()
                })
                .collect();
            let out = self
                .rt
                .block_on(
                    self.sqs
                        .send_message_batch()
                        .queue_url(&self.queue_url)
                        .set_entries(Some(entries))
                        .send(),
                )
                .unwrap();
            assert!(out.failed().is_empty(), "{:?}", out.failed());
        }
    }

    /// Creates the queue `trail-dlq` and makes it the dead-letter queue of
    /// `trail-events` after `max_receive` receives. Returns its URL.
    pub fn add_dead_letter_queue(&self, max_receive: u32) -> String {
        self.rt.block_on(async {
            let url = self
                .sqs
                .create_queue()
                .queue_name("trail-dlq")
                .send()
                .await
                .unwrap()
                .queue_url()
                .unwrap()
                .to_owned();
            let arn = queue_arn(&self.sqs, &url).await;
            let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receive.to_string()});
            self.sqs
                .set_queue_attributes()
                .queue_url(&self.queue_url)
                .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
                .send()
                .await
                .unwrap();
            url
        })
    }

    pub fn delete_object(&self, key: &str) {
        self.rt
            .block_on(self.s3.delete_object().bucket("trail").key(key).send())
            .unwrap();
    }
}

/// SIGTERM, then the exit code and the captured log.
pub fn stop(child: Child) -> (Option<i32>, String) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Objects the ledger has as processed (0 before the store exists).
pub fn objects_ok(data: &Path) -> i64 {
    if !data.join("alerts.db").exists() {
        return 0;
    }
    // The daemon may have created the file but not yet its tables.
    db(data)
        .query_row("SELECT COUNT(*) FROM objects WHERE status = 'ok'", [], |r| r.get(0))
        .unwrap_or(0)
}

/// Stored (rule, eventID) pairs, sorted.
pub fn alert_pairs(data: &Path) -> Vec<(String, String)> {
    query_pairs(data, "SELECT rule_name, event_id FROM alerts ORDER BY 1, 2")
}

impl Moto {
    /// An SQS client for the test side (static fake credentials).
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .build();
        aws_sdk_sqs::Client::from_conf(conf)
    }
}

/// The ARN of the queue at `url`.
async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone()
}
