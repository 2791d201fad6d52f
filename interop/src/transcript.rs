//! Tenant output reduced to what must not depend on which servers answered or which tenant
//! printed it: each log record becomes its message, with the deployment's ports and paths
//! replaced by their names, run-specific values in the printed documents (keys, quotes,
//! counters, times) replaced by placeholders where they stand (key order and layout kept),
//! and the records of timing-dependent retries dropped. Two runs of the same command,
//! against upstream's servers and ours, by upstream's tenant and ours, must then print the
//! same lines byte for byte.

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

/// Log records upstream's tenant prints about itself rather than about the servers' answers,
/// which ours does not print (FINDINGS.md, "Upstream behaviours"): configuration files and
/// defaults it used, TLS set-up, the API version it settled on, the PCR mask it computed.
pub const UPSTREAM_DIAGNOSTICS: &[&str] = &[
    "The configuration upgrade templates path",
    "Reading configuration from",
    "Setting up client TLS...",
    "Using default client_cert option",
    "Using default client_key option",
    "No value provided in client_key_password option",
    "TLS is enabled.",
    "Using API version",
    "Using default UUID",
    "TPM PCR Mask",
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

    /// Also masks the values of JSON key `key`, `null` included (for a scenario where it
    /// depends on timing).
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

/// A JSON (`"k": v`) or Python-`dict` (`'k': v`) member of one of `keys`: group 1 the
/// quoted key, group 2 the value (a string, number or boolean; `null`/`None` too if
/// `with_null`, else they stay visible).
fn volatile_member(keys: &[&str], with_null: bool) -> regex::Regex {
    let names = keys
        .iter()
        .map(|k| regex::escape(k))
        .collect::<Vec<_>>()
        .join("|");
    let null = if with_null { "|null|None" } else { "" };
    regex::Regex::new(&format!(
        r#"("(?:{names})": |'(?:{names})': )("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|-?[0-9][0-9.eE+-]*|true|false|True|False{null})"#
    ))
    .expect("volatile member pattern")
}

/// `text` with ports, texts and the values of volatile members masked where they stand:
/// nothing is reordered or re-rendered, so what remains is compared byte for byte.
fn mask_in_place(text: &str, masks: &Masks) -> String {
    let scenario: Vec<&str> = masks.keys.iter().map(String::as_str).collect();
    let mut text = masks.text(text);
    for (keys, with_null) in [(VOLATILE_KEYS, false), (&scenario[..], true)] {
        if keys.is_empty() {
            continue;
        }
        text = volatile_member(keys, with_null)
            .replace_all(&text, |c: &regex::Captures<'_>| {
                let key = &c[1];
                let name = key[1..key.len() - 3].to_string();
                let quote = &key[..1];
                format!("{key}{quote}<{name}>{quote}")
            })
            .into_owned();
    }
    text
}

/// Whether the one-line record `first` only says how often the tenant retried or is one of
/// upstream's diagnostics (lines after it are `print` output that followed the record).
fn is_diagnostic(first: &str) -> bool {
    RETRY_MARKERS
        .iter()
        .chain(UPSTREAM_DIAGNOSTICS)
        .any(|m| first.contains(m))
}

fn is_dropped(r: &Record, masks: &Masks) -> bool {
    masks.dropped.iter().any(|m| r.message.contains(m.as_str()))
}

/// What a tenant printed on stdout, line by line, comparable byte for byte between runs and
/// between the two tenants: each log record reduced to its message (upstream prints its
/// results through logging, `time - logger - LEVEL - message`; ours prints the messages
/// alone), the records of timing-dependent retries and upstream's diagnostics dropped (the
/// `print` output that follows such a record on the next lines is kept), and run-specific
/// values masked in place ([`Masks`]).
pub fn printed(run: &TenantRun, masks: &Masks) -> Vec<String> {
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
        .flat_map(|(_, r)| {
            let message = match r.message.split_once('\n') {
                Some((first, rest)) if is_diagnostic(first) => rest,
                None if is_diagnostic(&r.message) => return Vec::new(),
                _ => r.message.as_str(),
            };
            mask_in_place(message, masks)
                .split('\n')
                .map(str::to_owned)
                .collect::<Vec<_>>()
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
    fn ports_volatile_values_and_retries_are_masked_in_place() {
        let masks = Masks::default().with_port("verifier_port", 18881);
        let a = run(
            "2026-11-28 15:34:20.615 - keylime.tenant - INFO - Agent Info from Verifier (127.0.0.1:18881):\n\
             {\"x\": {\"v\": \"a\\\"b\", \"verifier_port\": 18881, \"attestation_count\": 3, \"operational_state\": \"Get Quote\", \"mtls_cert\": null}}\n\
             2026-11-28 15:34:20.700 - keylime.tenant - INFO - Key derivation not yet complete, trying again\n",
        );
        assert_eq!(
            printed(&a, &masks),
            [
                "Agent Info from Verifier (127.0.0.1:<verifier_port>):",
                "{\"x\": {\"v\": \"<v>\", \"verifier_port\": <verifier_port>, \"attestation_count\": \"<attestation_count>\", \"operational_state\": \"Get Quote\", \"mtls_cert\": null}}"
            ]
        );
        // Our tenant prints the same messages without the log prefix: the same lines.
        let ours = run("Agent Info from Verifier (127.0.0.1:18881):\n\
             {\"x\": {\"v\": \"zz\", \"verifier_port\": 18881, \"attestation_count\": 9, \"operational_state\": \"Get Quote\", \"mtls_cert\": null}}\n");
        assert_eq!(printed(&ours, &masks), printed(&a, &masks));
    }

    #[test]
    fn key_order_and_layout_are_kept() {
        let masks = Masks::default();
        let a = run("{'results': {'name': 'x', 'mb_policy': 'p', 'quote': 'r/1'}}\n");
        let b = run("{'results': {'mb_policy': 'p', 'name': 'x', 'quote': 'r/2'}}\n");
        assert_eq!(
            printed(&a, &masks),
            ["{'results': {'name': 'x', 'mb_policy': 'p', 'quote': '<quote>'}}"]
        );
        assert_ne!(printed(&a, &masks), printed(&b, &masks));
        let compact = run("{\"results\":{\"name\":\"x\"}}\n");
        let spaced = run("{\"results\": {\"name\": \"x\"}}\n");
        assert_ne!(printed(&compact, &masks), printed(&spaced, &masks));
    }

    #[test]
    fn scenario_masks_and_dropped_records() {
        let masks = Masks::default()
            .with_volatile_key("operational_state")
            .with_volatile_key("severity_level")
            .dropping("was deleted from");
        let a = run(
            "2026-11-28 15:34:20.615 - keylime.tenant - INFO - Agent Info from X:\n\
             {\"a\": {\"operational_state\": \"Start\", \"ip\": \"127.0.0.1\", \"severity_level\": null, \"last_event_id\": null}}\n\
             2026-11-28 15:34:20.616 - keylime.tenant - INFO - A was deleted from V after 0 tries\n",
        );
        // A scenario's keys are masked when null too; the others' null stays visible.
        assert_eq!(
            printed(&a, &masks),
            [
                "Agent Info from X:",
                "{\"a\": {\"operational_state\": \"<operational_state>\", \"ip\": \"127.0.0.1\", \"severity_level\": \"<severity_level>\", \"last_event_id\": null}}"
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
        assert_eq!(printed(&a, &masks), ["done", "poll 3"]);
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
