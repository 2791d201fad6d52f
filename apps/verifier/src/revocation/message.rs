//! The revocation message (PROTOCOL.md §7): the inner JSON object, serialised the way
//! upstream's `json.dumps` does it (by `keylime_api::pyjson`: `", "` / `": "` separators,
//! everything outside printable ASCII escaped, Python's float `repr`; keys in upstream's
//! order), the `asctime` event time, and the signed `{"msg","signature"}`
//! envelope. Signing uses the agent's `revocation_key`; without one the signature is `""`.

use keylime_attestation::FailureEvent;
use keylime_payload::revocation::RevocationEnvelope;
use serde::Serialize;

/// What kind of notice: an attestation failure or a lost agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// `revocation`: INVALID_QUOTE.
    Revocation,
    /// `comm_error`: a previously good agent became unreachable.
    CommError,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Revocation => "revocation",
            NoticeKind::CommError => "comm_error",
        }
    }
}

/// The agent facts a notice carries. No `Debug`: it holds the revocation key.
#[derive(Clone)]
pub struct AgentNotice {
    pub agent_id: String,
    pub ip: Option<String>,
    pub port: Option<u16>,
    pub tpm_policy: String,
    pub meta_data: String,
    /// PEM RSA private key; empty when the tenant gave none.
    pub revocation_key: String,
}

/// The inner message, fields in upstream's order.
#[derive(Serialize)]
struct InnerMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    ip: Option<&'a str>,
    agent_id: &'a str,
    port: Option<u16>,
    tpm_policy: &'a str,
    meta_data: &'a str,
    event_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    severity_label: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<String>,
}

/// Why an envelope could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("revocation_key of agent {agent_id} cannot sign: {reason}")]
    Signing { agent_id: String, reason: String },
    #[error("revocation message could not be serialised: {0}")]
    Serialise(String),
}

/// Build and sign the envelope for `agent`.
pub fn build_envelope(
    agent: &AgentNotice,
    kind: NoticeKind,
    event: Option<&FailureEvent>,
    now: time::OffsetDateTime,
) -> Result<RevocationEnvelope, MessageError> {
    let inner = InnerMessage {
        kind: kind.as_str(),
        ip: agent.ip.as_deref(),
        agent_id: &agent.agent_id,
        port: agent.port,
        tpm_policy: &agent.tpm_policy,
        meta_data: &agent.meta_data,
        event_time: asctime(now),
        event_id: event.map(|e| e.event_id.as_str()),
        severity_label: event.map(|e| e.severity_label.as_str()),
        context: event.map(|e| python_json(&e.context)).transpose()?,
    };
    let msg = python_json(&inner)?;
    if agent.revocation_key.trim().is_empty() {
        return Ok(RevocationEnvelope {
            msg,
            signature: String::new(),
        });
    }
    RevocationEnvelope::signed(msg, &agent.revocation_key).map_err(|e| MessageError::Signing {
        agent_id: agent.agent_id.clone(),
        reason: e.to_string(),
    })
}

/// The current local time (UTC when the local offset cannot be determined).
pub fn local_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_local().unwrap_or_else(|_| time::OffsetDateTime::now_utc())
}

/// C `asctime` layout: `Thu Sep  5 14:03:07 2024`.
pub fn asctime(t: time::OffsetDateTime) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day = DAYS
        .get(usize::from(t.weekday().number_days_from_monday()))
        .copied()
        .unwrap_or("???");
    let month = MONTHS
        .get(usize::from(u8::from(t.month())).saturating_sub(1))
        .copied()
        .unwrap_or("???");
    format!(
        "{day} {month} {:>2} {:02}:{:02}:{:02} {}",
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.year()
    )
}

/// Serialise like Python's `json.dumps` with default arguments (`keylime_api::pyjson`).
fn python_json<T: Serialize + ?Sized>(value: &T) -> Result<String, MessageError> {
    keylime_api::pyjson::try_dumps(value).map_err(|e| MessageError::Serialise(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(y: i32, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> time::OffsetDateTime {
        time::Date::from_calendar_date(y, time::Month::try_from(mo).unwrap(), d)
            .unwrap()
            .with_hms(h, mi, s)
            .unwrap()
            .assume_utc()
    }

    #[test]
    fn python_layout_and_escaping() {
        let v = json!({"a": [1, 2], "b": "é\u{7f}", "f": 1e20});
        assert_eq!(
            python_json(&v).unwrap(),
            r#"{"a": [1, 2], "b": "\u00e9\u007f", "f": 1e+20}"#
        );
    }

    #[test]
    fn asctime_pads_the_day() {
        let t = at(2024, 9, 5, 14, 3, 7);
        assert_eq!(asctime(t), "Thu Sep  5 14:03:07 2024");
    }

    #[test]
    fn unsigned_message_has_upstream_fields_in_order() {
        let agent = AgentNotice {
            agent_id: "a1".into(),
            ip: Some("127.0.0.1".into()),
            port: Some(9002),
            tpm_policy: "{\"mask\": \"0x1\"}".into(),
            meta_data: "{}".into(),
            revocation_key: String::new(),
        };
        let now = at(2024, 9, 5, 14, 3, 7);
        let env = build_envelope(&agent, NoticeKind::CommError, None, now).unwrap();
        assert_eq!(env.signature, "");
        assert_eq!(
            env.msg,
            r#"{"type": "comm_error", "ip": "127.0.0.1", "agent_id": "a1", "port": 9002, "tpm_policy": "{\"mask\": \"0x1\"}", "meta_data": "{}", "event_time": "Thu Sep  5 14:03:07 2024"}"#
        );
    }
}
