#![allow(dead_code)]
//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1, put between trailwatch and
//! moto_server for the fault tests (moto cannot throttle, fail or stall on
//! demand; the AWS SDK is never mocked).
//!
//! Each request's head (request line and headers, lower-cased) is matched
//! against the faults in order; the first that matches and has uses left
//! acts on it, and its hit is counted so a test can assert that the fault
//! really happened. Unmatched requests are forwarded unchanged, each client
//! connection over its own kept-alive upstream connection (so moto sees the
//! same connection pattern as without the proxy).
//!
//! Blocking std threads, one per connection: test traffic is small.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a fault does to a matching request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Answer without forwarding.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Wait, then forward.
    Delay(Duration),
    /// Forward, send the response head and half the body, then close the
    /// connection (a body cut mid-stream).
    CutBody,
    /// Forward, send the head and half the body, wait, then send the rest:
    /// a slow download.
    StallBody(Duration),
    /// Close the connection without answering.
    Drop,
    /// Never answer, and keep the connection open (a stalled connection).
    Hang,
}

impl Action {
    /// S3's `503 SlowDown` (throttling).
    pub fn s3_slow_down() -> Action {
        Self::s3_error(503, "SlowDown", "Please reduce your request rate.")
    }

    /// S3's `500 InternalError`.
    pub fn s3_internal_error() -> Action {
        Self::s3_error(
            500,
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    }

    pub fn s3_error(status: u16, code: &str, message: &str) -> Action {
        Action::Respond {
            status,
            headers: vec![("Content-Type".into(), "application/xml".into())],
            body: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>FAULT</RequestId></Error>"
            ),
        }
    }

    /// An SQS (AWS JSON protocol) error, e.g. `(400, "ThrottlingException")`
    /// or `(500, "InternalFailure")`.
    pub fn sqs_error(status: u16, code: &str) -> Action {
        Action::Respond {
            status,
            headers: vec![
                ("Content-Type".into(), "application/x-amz-json-1.0".into()),
                ("x-amzn-query-error".into(), format!("{code};Sender")),
            ],
            body: format!("{{\"__type\":\"com.amazonaws.sqs#{code}\",\"message\":\"injected by the test proxy\"}}"),
        }
    }
}

struct Fault {
    pattern: String,
    action: Action,
    left: usize,
    hits: usize,
}

#[derive(Default)]
struct State {
    faults: Vec<Fault>,
    /// `METHOD path target` of every request seen.
    seen: Vec<String>,
}

pub struct Proxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

/// Index of a fault, for [`Proxy::hits`].
#[derive(Debug, Clone, Copy)]
pub struct FaultId(usize);

impl Proxy {
    /// Listens on a free 127.0.0.1 port and forwards to 127.0.0.1:`upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let state = state.clone();
                    std::thread::spawn(move || {
                        let _ = serve(conn, upstream, &state);
                    });
                }
            });
        }
        Proxy { port, state, stop }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Acts on the next `times` requests whose lower-cased head contains
    /// `pattern` (lower-cased too).
    pub fn add(&self, pattern: &str, times: usize, action: Action) -> FaultId {
        let mut st = self.state.lock().unwrap();
        st.faults.push(Fault {
            pattern: pattern.to_ascii_lowercase(),
            action,
            left: times,
            hits: 0,
        });
        FaultId(st.faults.len() - 1)
    }

    /// How many requests the fault acted on.
    pub fn hits(&self, id: FaultId) -> usize {
        self.state.lock().unwrap().faults[id.0].hits
    }

    /// Disarms every fault (their hit counts stay).
    pub fn disarm(&self) {
        for f in &mut self.state.lock().unwrap().faults {
            f.left = 0;
        }
    }

    /// `METHOD path target` of the requests seen so far.
    pub fn seen(&self) -> Vec<String> {
        self.state.lock().unwrap().seen.clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads a head (up to the blank line). `None` at a clean end of stream.
fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        head.push_str(&line);
        if line == "\r\n" || line == "\n" {
            return Ok(Some(head));
        }
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn serve(client: TcpStream, upstream: u16, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let mut up: Option<BufReader<TcpStream>> = None;
    while let Some(head) = read_head(&mut reader)? {
        let len: usize = header(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(
            header(&head, "transfer-encoding").is_none(),
            "test proxy: chunked request bodies are not supported: {head}"
        );
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let lower = head.to_ascii_lowercase();
        let action = {
            let mut st = state.lock().unwrap();
            let line = head.lines().next().unwrap_or_default();
            let target = header(&head, "x-amz-target").unwrap_or_default();
            st.seen.push(format!("{line} {target}"));
            st.faults
                .iter_mut()
                .find(|f| f.left > 0 && lower.contains(&f.pattern))
                .map(|f| {
                    f.left -= 1;
                    f.hits += 1;
                    f.action.clone()
                })
        };
        match action {
            Some(Action::Respond { status, headers, body }) => {
                let mut out = format!("HTTP/1.1 {status} Injected\r\nContent-Length: {}\r\n", body.len());
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&body);
                client.write_all(out.as_bytes())?;
            }
            Some(Action::Drop) => {
                let _ = client.shutdown(Shutdown::Both);
                return Ok(());
            }
            Some(Action::Hang) => {
                // Until the client gives up and closes its end.
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest);
                return Ok(());
            }
            Some(Action::Delay(d)) => {
                std::thread::sleep(d);
                let (h, b) = forward(&mut up, upstream, &head, &body)?;
                client.write_all(h.as_bytes())?;
                client.write_all(&b)?;
            }
            Some(Action::CutBody) => {
                let (h, b) = forward(&mut up, upstream, &head, &body)?;
                client.write_all(h.as_bytes())?;
                client.write_all(&b[..b.len() / 2])?;
                client.flush()?;
                let _ = client.shutdown(Shutdown::Both);
                return Ok(());
            }
            Some(Action::StallBody(d)) => {
                let (h, b) = forward(&mut up, upstream, &head, &body)?;
                client.write_all(h.as_bytes())?;
                client.write_all(&b[..b.len() / 2])?;
                client.flush()?;
                std::thread::sleep(d);
                client.write_all(&b[b.len() / 2..])?;
            }
            None => {
                let (h, b) = forward(&mut up, upstream, &head, &body)?;
                client.write_all(h.as_bytes())?;
                client.write_all(&b)?;
            }
        }
        client.flush()?;
    }
    Ok(())
}

/// Sends the request over the client's upstream connection (opened on
/// first use) and reads the response as framed (Content-Length, chunked, or
/// up to the end of the stream). Returns its head (re-framed with a
/// Content-Length) and body.
fn forward(
    up: &mut Option<BufReader<TcpStream>>,
    upstream: u16,
    head: &str,
    body: &[u8],
) -> std::io::Result<(String, Vec<u8>)> {
    if up.is_none() {
        let conn = TcpStream::connect(("127.0.0.1", upstream))?;
        // moto answers long polls within seconds: a stuck upstream
        // connection becomes a dropped client connection, not a hung thread.
        conn.set_read_timeout(Some(Duration::from_secs(60)))?;
        *up = Some(BufReader::new(conn));
    }
    let r = up.as_mut().expect("connected");
    let result = exchange(r, head, body);
    if !matches!(result, Ok((_, _, true))) {
        *up = None;
    }
    result.map(|(h, b, _)| (h, b))
}

/// One request and response over `r`; the flag says whether the connection
/// can carry another.
fn exchange(r: &mut BufReader<TcpStream>, head: &str, body: &[u8]) -> std::io::Result<(String, Vec<u8>, bool)> {
    r.get_mut().write_all(head.as_bytes())?;
    r.get_mut().write_all(body)?;
    let rhead = read_head(r)?.ok_or_else(|| std::io::Error::other("upstream closed without a response"))?;
    let mut close = header(&rhead, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let status: u16 = rhead
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let head_only = head.starts_with("HEAD ") || status == 204 || status == 304;
    let mut rbody = Vec::new();
    if !head_only {
        if header(&rhead, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut line = String::new();
                r.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
                if size == 0 {
                    // Trailers, up to the blank line.
                    while read_head_line(r)? {}
                    break;
                }
                let start = rbody.len();
                rbody.resize(start + size, 0);
                r.read_exact(&mut rbody[start..])?;
                let mut crlf = [0; 2];
                r.read_exact(&mut crlf)?;
            }
        } else if let Some(n) = header(&rhead, "content-length").and_then(|v| v.parse::<usize>().ok()) {
            rbody.resize(n, 0);
            r.read_exact(&mut rbody)?;
        } else {
            r.read_to_end(&mut rbody)?;
            close = true;
        }
    }
    let mut h = String::new();
    for (i, line) in rhead.lines().enumerate() {
        let l = line.to_ascii_lowercase();
        if line.is_empty()
            || (i > 0
                && (l.starts_with("connection:")
                    || l.starts_with("transfer-encoding:")
                    || (!head_only && l.starts_with("content-length:"))))
        {
            continue;
        }
        h.push_str(line);
        h.push_str("\r\n");
    }
    if !head_only {
        h.push_str(&format!("Content-Length: {}\r\n", rbody.len()));
    }
    h.push_str("\r\n");
    Ok((h, rbody, !close))
}

/// Reads one line; false at the blank line (or the end of the stream).
fn read_head_line(r: &mut impl BufRead) -> std::io::Result<bool> {
    let mut line = String::new();
    Ok(r.read_line(&mut line)? > 0 && line.trim_end() != "")
}
