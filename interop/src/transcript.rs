//! Upstream tenant output reduced to what must not depend on which servers answered: each
//! log record becomes `LEVEL logger: message`, with the deployment's ports replaced by
//! their names, JSON documents (and the Python `dict` the tenant prints for an identity
//! quote) parsed and their run-specific values (keys, quotes, counters, times) replaced by
//! placeholders, and the records of timing-dependent retries dropped. Two runs of the same
//! command against upstream's servers and ours must then give the same lines.

use serde_json::Value;

use crate::pyliteral::{self, Node};
use crate::tenant::{Record, TenantRun};

/// Values that differ between any two runs (fresh keys, quotes, counters, times).
const VOLATILE_KEYS: &[&str] = &[
    "v",
    "aik_tpm",
    "ek_tpm",
    "ekcert",
    "mtls_cert",
    "quote",
    "pubkey",
    "attestation_count",
    "last_received_quote",
    "last_successful_attestation",
];

/// Messages that only say how often the tenant had to retry.
const RETRY_MARKERS: &[&str] = &[
    "trying again",
    "Bootstrap key not yet available",
    "not yet complete",
];

/// The run-specific numbers of a deployment, by name.
#[derive(Debug, Clone, Default)]
pub struct Masks {
    ports: Vec<(String, String)>,
    texts: Vec<(String, String)>,
    keys: Vec<String>,
    dropped: Vec<String>,
    dropped_before: Vec<(String, String)>,
}

impl Masks {
    /// Masks for ports named `name` (e.g. `verifier_port`).
    pub fn with_port(mut self, name: &str, port: u16) -> Masks {
        self.ports.push((port.to_string(), format!("<{name}>")));
        self
    }

    /// Also masks the values of JSON key `key` (for a scenario where it depends on timing).
    pub fn with_volatile_key(mut self, key: &str) -> Masks {
        self.keys.push(key.to_string());
        self
    }

    /// Also drops the records whose message contains `marker`.
    pub fn dropping(mut self, marker: &str) -> Masks {
        self.dropped.push(marker.to_string());
        self
    }

    /// Also drops the records containing `marker` that come before the first record
    /// containing `until` (repeated polls before an outcome, say).
    pub fn dropping_before(mut self, marker: &str, until: &str) -> Masks {
        self.dropped_before
            .push((marker.to_string(), until.to_string()));
        self
    }

    fn is_volatile(&self, key: &str) -> bool {
        VOLATILE_KEYS.contains(&key) || self.keys.iter().any(|k| k == key)
    }

    /// Masks every occurrence of `text` (a temporary directory, say) as `<name>`.
    pub fn with_text(mut self, name: &str, text: &str) -> Masks {
        self.texts.push((text.to_string(), format!("<{name}>")));
        self
    }

    /// `s` with the ports and texts masked.
    pub fn apply(&self, s: &str) -> String {
        self.text(s)
    }

    fn text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (text, name) in &self.texts {
            out = out.replace(text, name);
        }
        for (port, name) in &self.ports {
            out = replace_number(&out, port, name);
        }
        out
    }
}

/// Replaces `number` where it stands alone (not inside a longer run of digits).
fn replace_number(s: &str, number: &str, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(number) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + number.len()..].chars().next();
        let alone = !before.is_some_and(|c| c.is_ascii_digit())
            && !after.is_some_and(|c| c.is_ascii_digit());
        out.push_str(&rest[..i]);
        out.push_str(if alone { with } else { number });
        rest = &rest[i + number.len()..];
    }
    out.push_str(rest);
    out
}

fn mask_json(v: &mut Value, masks: &Masks) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if masks.is_volatile(k) && !val.is_null() {
                    *val = Value::String(format!("<{k}>"));
                } else {
                    mask_json(val, masks);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| mask_json(i, masks)),
        Value::String(s) => *s = masks.text(s),
        Value::Number(n) => {
            let text = masks.text(&n.to_string());
            if text != n.to_string() {
                *v = Value::String(text);
            }
        }
        _ => {}
    }
}

/// The message split at its document (from the first `{` to the end), if it has one.
fn split_document(message: &str) -> Option<(&str, Node)> {
    let start = message.find('{')?;
    let (head, body) = message.split_at(start);
    let body = body.trim_end();
    // `From verifier … retrieved: "{…}"`: the document is quoted.
    let body = body.strip_suffix('"').unwrap_or(body);
    pyliteral::parse(body).ok().map(|node| (head, node))
}

/// The message with its document (JSON or a Python `dict`) replaced by its masked,
/// key-sorted rendering.
fn mask_message(message: &str, masks: &Masks) -> String {
    match split_document(message) {
        Some((head, node)) => {
            let mut v = node.to_value();
            mask_json(&mut v, masks);
            format!("{}{}", masks.text(head), v)
        }
        None => masks.text(message),
    }
}

/// Where two runs print the same document with its keys in a different order (the order
/// the servers sent them in): `(record index, path, left keys, right keys)`.
pub fn key_order_differences(
    left: &TenantRun,
    right: &TenantRun,
) -> Vec<(usize, String, Vec<String>, Vec<String>)> {
    let docs = |run: &TenantRun| -> Vec<Option<Node>> {
        run.records()
            .iter()
            .map(|r| split_document(&r.message).map(|(_, n)| n))
            .collect()
    };
    let mut out = Vec::new();
    for (i, (l, r)) in docs(left).iter().zip(docs(right).iter()).enumerate() {
        let (Some(l), Some(r)) = (l, r) else {
            continue;
        };
        for ((lp, lk), (rp, rk)) in l.key_orders().into_iter().zip(r.key_orders()) {
            let same_keys = {
                let (mut a, mut b) = (lk.clone(), rk.clone());
                a.sort();
                b.sort();
                a == b
            };
            if lp == rp && same_keys && lk != rk {
                out.push((i, lp, lk, rk));
            }
        }
    }
    out
}

fn is_dropped(r: &Record, masks: &Masks) -> bool {
    RETRY_MARKERS
        .iter()
        .copied()
        .chain(masks.dropped.iter().map(String::as_str))
        .any(|m| r.message.contains(m))
}

/// The comparable lines of one run.
pub fn normalise(run: &TenantRun, masks: &Masks) -> Vec<String> {
    let records = run.records();
    let before = |i: usize, until: &str| !records[..i].iter().any(|r| r.message.contains(until));
    records
        .iter()
        .enumerate()
        .filter(|(i, r)| {
            !is_dropped(r, masks)
                && !masks
                    .dropped_before
                    .iter()
                    .any(|(m, until)| r.message.contains(m.as_str()) && before(*i, until))
        })
        .map(|(_, r)| r)
        .map(|r| {
            format!(
                "{} {}: {}",
                r.level,
                r.logger,
                mask_message(&r.message, masks)
            )
        })
        .collect()
}

/// `None` if equal, else a readable account of the first differences.
pub fn diff(
    left_name: &str,
    left: &[String],
    right_name: &str,
    right: &[String],
) -> Option<String> {
    if left == right {
        return None;
    }
    let mut out = String::new();
    let n = left.len().max(right.len());
    for i in 0..n {
        let (l, r) = (left.get(i), right.get(i));
        if l != r {
            out.push_str(&format!(
                "line {i}:\n  {left_name}: {}\n  {right_name}: {}\n",
                l.map_or("<none>", String::as_str),
                r.map_or("<none>", String::as_str)
            ));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stdout: &str) -> TenantRun {
        TenantRun {
            args: vec![],
            code: Some(0),
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn ports_volatile_values_and_retries_are_masked() {
        let masks = Masks::default().with_port("verifier_port", 18881);
        let a = run(
            "2026-11-28 15:34:20.615 - keylime.tenant - INFO - Agent Info from Verifier (127.0.0.1:18881):\n\
             {\"x\": {\"v\": \"abc\", \"verifier_port\": 18881, \"attestation_count\": 3, \"operational_state\": \"Get Quote\", \"severity_level\": null}}\n\
             2026-11-28 15:34:20.700 - keylime.tenant - INFO - Key derivation not yet complete, trying again\n",
        );
        let lines = normalise(&a, &masks);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(
            lines[0],
            "INFO keylime.tenant: Agent Info from Verifier (127.0.0.1:<verifier_port>):\n\
             {\"x\":{\"attestation_count\":\"<attestation_count>\",\"operational_state\":\"Get Quote\",\"severity_level\":null,\"v\":\"<v>\",\"verifier_port\":\"<verifier_port>\"}}"
        );
    }

    #[test]
    fn python_dicts_are_compared_as_json() {
        let masks = Masks::default();
        let a =
            run("{'code': 200, 'results': {'quote': 'r/1', 'hash_alg': 'sha256', 'x': None}}\n");
        assert_eq!(
            normalise(&a, &masks),
            vec![
                "PRINT print: {\"code\":200,\"results\":{\"hash_alg\":\"sha256\",\"quote\":\"<quote>\",\"x\":null}}"
            ]
        );
    }

    #[test]
    fn scenario_masks_and_dropped_records() {
        let masks = Masks::default()
            .with_volatile_key("operational_state")
            .dropping("was deleted from");
        let a = run(
            "2026-11-28 15:34:20.615 - keylime.tenant - INFO - Agent Info from X:\n\
             {\"a\": {\"operational_state\": \"Start\", \"ip\": \"127.0.0.1\"}}\n\
             2026-11-28 15:34:20.616 - keylime.tenant - INFO - A was deleted from V after 0 tries\n",
        );
        assert_eq!(
            normalise(&a, &masks),
            vec![
                "INFO keylime.tenant: Agent Info from X:\n{\"a\":{\"ip\":\"127.0.0.1\",\"operational_state\":\"<operational_state>\"}}"
            ]
        );
    }

    #[test]
    fn records_before_an_outcome_can_be_dropped() {
        let masks = Masks::default().dropping_before("poll", "done");
        let a = run("2026-11-28 15:34:20.615 - keylime.tenant - INFO - poll 1\n\
             2026-11-28 15:34:20.616 - keylime.tenant - INFO - poll 2\n\
             2026-11-28 15:34:20.617 - keylime.tenant - INFO - done\n\
             2026-11-28 15:34:20.618 - keylime.tenant - INFO - poll 3\n");
        assert_eq!(
            normalise(&a, &masks),
            vec!["INFO keylime.tenant: done", "INFO keylime.tenant: poll 3"]
        );
    }

    #[test]
    fn key_order_is_compared_separately() {
        let a = run("{'results': {'name': 'x', 'mb_policy': 'p'}}\n");
        let b = run("{'results': {'mb_policy': 'p', 'name': 'x'}}\n");
        let masks = Masks::default();
        assert_eq!(normalise(&a, &masks), normalise(&b, &masks));
        let d = key_order_differences(&a, &b);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].1, "/results");
        assert!(key_order_differences(&a, &a).is_empty());
    }

    #[test]
    fn numbers_inside_longer_numbers_stay() {
        assert_eq!(
            replace_number("a 18881 b 188810 c:18881", "18881", "<p>"),
            "a <p> b 188810 c:<p>"
        );
    }

    #[test]
    fn differences_are_reported_by_line() {
        let l = vec!["a".to_string(), "b".to_string()];
        let r = vec!["a".to_string()];
        assert!(diff("u", &l, "o", &l).is_none());
        let d = diff("u", &l, "o", &r).unwrap();
        assert!(d.contains("line 1") && d.contains("<none>"), "{d}");
    }
}
