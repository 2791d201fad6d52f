//! A revocation webhook receiver that keeps every request body exactly as it arrived, so
//! the notices of upstream's verifier and ours can be compared byte for byte, and the
//! masking that makes two notices of the same event comparable: the agent's port, the event
//! time, the signature and the payload certificate's serial differ between runs, wherever
//! they stand (in the envelope, in `msg`, in `meta_data` inside `msg`).
//!
//! The receiver speaks HTTPS with the verifier's own server certificate (from its generated
//! `cv_ca`), which both verifiers trust: upstream's verifier contacts a webhook over HTTPS
//! whatever scheme `webhook_url` names, as long as its TLS options verify servers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::path::Path;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::transcript::Masks;

/// Largest request accepted (a notice is a few KiB).
const MAX_REQUEST: usize = 1 << 20;

/// The receiver: its URL and every body received, in order.
pub struct RawWebhook {
    /// `https://127.0.0.1:{port}/revocation`.
    pub url: String,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
    listener: Option<tokio::net::TcpListener>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for RawWebhook {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn content_length(head: &[u8]) -> Option<usize> {
    let head = std::str::from_utf8(head).ok()?;
    head.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

/// Reads one request, keeps its body and answers 200.
async fn receive<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, sink: &Mutex<Vec<Vec<u8>>>) {
    if let Some(body) = read_body(&mut stream).await {
        sink.lock().expect("bodies").push(body);
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        let _ = stream.shutdown().await;
    }
}

/// Reads one request; `None` if the peer closed early or sent no usable length.
async fn read_body<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = header_end(&buf) {
            let len = content_length(&buf[..end])?;
            if end + len <= buf.len() {
                return Some(buf[end..end + len].to_vec());
            }
        }
        if buf.len() > MAX_REQUEST {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

impl RawWebhook {
    /// Binds a free loopback port; nothing is accepted before [`RawWebhook::serve`].
    pub async fn bind() -> RawWebhook {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the webhook receiver");
        let port = listener.local_addr().expect("receiver address").port();
        RawWebhook {
            url: format!("https://127.0.0.1:{port}/revocation"),
            bodies: Arc::new(Mutex::new(Vec::new())),
            listener: Some(listener),
            task: None,
        }
    }

    /// Accepts connections (TLS with `tls_dir`'s `server-cert.crt` and
    /// `server-private.pem`, or plain HTTP without), answering every complete request 200.
    pub fn serve(&mut self, tls_dir: Option<&Path>) {
        let listener = self.listener.take().expect("serve is called once");
        let acceptor = tls_dir.map(|dir| {
            let chain = keylime_pki::load_certs(&dir.join("server-cert.crt"))
                .expect("the verifier's server certificate");
            let key = keylime_pki::load_key(&dir.join("server-private.pem"))
                .expect("the verifier's server key");
            let config = keylime_pki::server_config(chain, key, keylime_pki::ClientAuth::None)
                .expect("webhook TLS configuration");
            tokio_rustls::TlsAcceptor::from(config)
        });
        let sink = Arc::clone(&self.bodies);
        self.task = Some(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = Arc::clone(&sink);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                receive(tls, &sink).await;
                            }
                        }
                        None => receive(stream, &sink).await,
                    }
                });
            }
        }));
    }

    /// Waits for the first body (panics after `timeout`).
    pub async fn first_body(&self, timeout: Duration) -> Vec<u8> {
        let bodies = Arc::clone(&self.bodies);
        crate::wait_until(timeout, "a notice at the webhook", move || {
            let first = bodies.lock().expect("bodies").first().cloned();
            async move { first }
        })
        .await
    }
}

/// Keys whose values differ between two notices of the same event.
const VOLATILE: &[&str] = &["event_time", "signature", "cert_serial"];

/// `body` (a notice as received) with `masks` applied (the agent's port, say) and the values
/// of [`VOLATILE`] keys replaced by `<key>` at every level of JSON-in-a-string nesting
/// (`"k": v`, `\"k\": v`, `\\\"k\\\": v`); nothing else is touched.
pub fn comparable(body: &[u8], masks: &Masks) -> String {
    let mut text = masks.apply(&String::from_utf8_lossy(body));
    let names = VOLATILE.join("|");
    for level in [3usize, 1, 0] {
        let esc = r"\\".repeat(level);
        let pattern =
            format!(r#"({esc}"(?:{names}){esc}": )({esc}"[^"\\]*{esc}"|-?[0-9][0-9.eE+-]*)"#);
        let re = regex::Regex::new(&pattern).expect("volatile pattern");
        text = re
            .replace_all(&text, |c: &regex::Captures<'_>| {
                let key = c[1].trim_end_matches(": ").trim_end_matches('"');
                let name = key.trim_start_matches('\\').trim_start_matches('"');
                let name = name.trim_end_matches('\\');
                format!("{}<{name}>", &c[1])
            })
            .into_owned();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volatile_values_are_masked_at_every_level() {
        let body = r#"{"msg": "{\"type\": \"revocation\", \"port\": 40123, \"event_time\": \"Mon Dec  7 23:39:02 2026\", \"meta_data\": \"{\\\"cert_serial\\\": 12, \\\"subject\\\": \\\"x\\\"}\"}", "signature": "c2ln"}"#;
        let out = comparable(
            body.as_bytes(),
            &Masks::default().with_port("agent_port", 40123),
        );
        assert_eq!(
            out,
            r#"{"msg": "{\"type\": \"revocation\", \"port\": <agent_port>, \"event_time\": <event_time>, \"meta_data\": \"{\\\"cert_serial\\\": <cert_serial>, \\\"subject\\\": \\\"x\\\"}\"}", "signature": <signature>}"#
        );
        // a different layout stays different
        let compact = body.replace(", \\\"port", ",\\\"port");
        assert_ne!(
            comparable(
                compact.as_bytes(),
                &Masks::default().with_port("agent_port", 40123)
            ),
            out
        );
    }

    #[tokio::test]
    async fn the_receiver_keeps_the_bytes_as_sent() {
        let mut hook = RawWebhook::bind().await;
        hook.serve(None);
        let body = "{\"a\":  1}\n";
        let addr = hook
            .url
            .trim_start_matches("https://")
            .split('/')
            .next()
            .unwrap();
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "POST /revocation HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("answer");
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        let got = hook.first_body(Duration::from_secs(10)).await;
        assert_eq!(got, body.as_bytes());
    }
}
