//! Bounds and character rules for everything a registration writes, checked before any
//! transaction starts so that a bad value is a typed error naming the field, never a
//! database error or a half-written row. Also used on reads: an id that could never have
//! been stored is "not found" without a query (MySQL would otherwise match `"a "` to `"a"`).

use super::agent::RegistrarAgent;
use crate::StoreError;

/// Longest agent id (upstream column `agent_id VARCHAR(80)`).
pub const MAX_AGENT_ID_CHARS: usize = 80;
/// Largest TPM2B_PUBLIC accepted for `ek_tpm`, `aik_tpm`, `iak_tpm`, `idevid_tpm`.
pub const MAX_TPM_PUBLIC_BYTES: usize = 4096;
/// Largest DER certificate accepted for `ekcert`, `iak_cert`, `idevid_cert`.
pub const MAX_CERT_BYTES: usize = 64 * 1024;
/// Largest PEM text accepted for `mtls_cert`.
pub const MAX_MTLS_CERT_BYTES: usize = 64 * 1024;
/// Longest contact address (an IPv6 literal with zone, or a host name).
pub const MAX_IP_CHARS: usize = 255;
/// Longest activation key (base64 of the credential secret).
pub const MAX_ACTIVATION_KEY_CHARS: usize = 512;

fn invalid(field: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidField {
        field,
        reason: reason.into(),
    }
}

/// Agent ids are compared exactly on every backend; ids with whitespace or control
/// characters are refused because MySQL ignores trailing spaces when comparing.
pub(crate) fn validate_agent_id(id: &str) -> Result<(), StoreError> {
    let chars = id.chars().count();
    if chars == 0 {
        return Err(invalid("agent_id", "must not be empty"));
    }
    if chars > MAX_AGENT_ID_CHARS {
        return Err(invalid(
            "agent_id",
            format!("{chars} characters, at most {MAX_AGENT_ID_CHARS} allowed"),
        ));
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "agent_id",
            "must not contain whitespace or control characters",
        ));
    }
    Ok(())
}

pub(crate) fn validate_activation_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_ACTIVATION_KEY_CHARS {
        return Err(invalid(
            "activation_key",
            format!(
                "{} bytes, expected 1 to {MAX_ACTIVATION_KEY_CHARS}",
                key.len()
            ),
        ));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "activation_key",
            "must be printable ASCII without spaces",
        ));
    }
    Ok(())
}

fn validate_blob(field: &'static str, value: Option<&[u8]>, max: usize) -> Result<(), StoreError> {
    match value {
        Some([]) => Err(invalid(field, "must not be empty (use none)")),
        Some(v) if v.len() > max => Err(invalid(
            field,
            format!("{} bytes, at most {max} allowed", v.len()),
        )),
        _ => Ok(()),
    }
}

fn validate_text(
    field: &'static str,
    value: Option<&str>,
    max: usize,
    allow_whitespace: bool,
) -> Result<(), StoreError> {
    let Some(v) = value else { return Ok(()) };
    if v.is_empty() {
        return Err(invalid(field, "must not be empty (use none)"));
    }
    if v.len() > max {
        return Err(invalid(
            field,
            format!("{} bytes, at most {max} allowed", v.len()),
        ));
    }
    let bad = |c: char| {
        if allow_whitespace {
            c.is_control() && !c.is_ascii_whitespace()
        } else {
            c.is_control() || c.is_whitespace()
        }
    };
    if v.chars().any(bad) {
        return Err(invalid(field, "contains forbidden characters"));
    }
    Ok(())
}

/// Everything a registration writes, checked before the transaction starts.
pub(crate) fn validate_registration(a: &RegistrarAgent) -> Result<(), StoreError> {
    validate_agent_id(&a.agent_id)?;
    if a.aik_tpm.is_empty() {
        return Err(invalid("aik_tpm", "is required"));
    }
    validate_blob("aik_tpm", Some(&a.aik_tpm), MAX_TPM_PUBLIC_BYTES)?;
    validate_blob("ek_tpm", a.ek_tpm.as_deref(), MAX_TPM_PUBLIC_BYTES)?;
    validate_blob("iak_tpm", a.iak_tpm.as_deref(), MAX_TPM_PUBLIC_BYTES)?;
    validate_blob("idevid_tpm", a.idevid_tpm.as_deref(), MAX_TPM_PUBLIC_BYTES)?;
    validate_blob("ekcert", a.ekcert.as_deref(), MAX_CERT_BYTES)?;
    validate_blob("iak_cert", a.iak_cert.as_deref(), MAX_CERT_BYTES)?;
    validate_blob("idevid_cert", a.idevid_cert.as_deref(), MAX_CERT_BYTES)?;
    validate_text(
        "mtls_cert",
        a.mtls_cert.as_deref(),
        MAX_MTLS_CERT_BYTES,
        true,
    )?;
    validate_text("ip", a.ip.as_deref(), MAX_IP_CHARS, false)?;
    if let Some(port) = a.port
        && !(1..=65535).contains(&port)
    {
        return Err(invalid("port", format!("{port} is not in 1..=65535")));
    }
    match a.activation_key.as_deref() {
        None => Err(invalid(
            "activation_key",
            "is required: a registration must be activated",
        )),
        Some(key) => validate_activation_key(key),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::tests::agent;

    fn field_of(e: StoreError) -> &'static str {
        match e {
            StoreError::InvalidField { field, .. } => field,
            other => panic!("expected InvalidField, got {other}"),
        }
    }

    #[test]
    fn valid_registration_passes() {
        validate_registration(&agent()).unwrap();
    }

    #[test]
    fn each_limit_is_enforced() {
        type Mutation = Box<dyn Fn(&mut RegistrarAgent)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("agent_id", Box::new(|a| a.agent_id = "a".repeat(81))),
            ("agent_id", Box::new(|a| a.agent_id = String::new())),
            ("agent_id", Box::new(|a| a.agent_id = "abc ".into())),
            ("agent_id", Box::new(|a| a.agent_id = "a\0b".into())),
            ("aik_tpm", Box::new(|a| a.aik_tpm = Vec::new())),
            (
                "aik_tpm",
                Box::new(|a| a.aik_tpm = vec![0; MAX_TPM_PUBLIC_BYTES + 1]),
            ),
            ("ek_tpm", Box::new(|a| a.ek_tpm = Some(Vec::new()))),
            (
                "ekcert",
                Box::new(|a| a.ekcert = Some(vec![0; MAX_CERT_BYTES + 1])),
            ),
            (
                "idevid_cert",
                Box::new(|a| a.idevid_cert = Some(vec![0; MAX_CERT_BYTES + 1])),
            ),
            ("mtls_cert", Box::new(|a| a.mtls_cert = Some("x\0".into()))),
            ("ip", Box::new(|a| a.ip = Some("1.2.3.4 ".into()))),
            ("ip", Box::new(|a| a.ip = Some("a".repeat(256)))),
            ("port", Box::new(|a| a.port = Some(0))),
            ("port", Box::new(|a| a.port = Some(65536))),
            ("activation_key", Box::new(|a| a.activation_key = None)),
            (
                "activation_key",
                Box::new(|a| a.activation_key = Some("a b".into())),
            ),
        ];
        for (field, mutate) in cases {
            let mut a = agent();
            mutate(&mut a);
            assert_eq!(field_of(validate_registration(&a).unwrap_err()), field);
        }
        let mut a = agent();
        a.agent_id = "é".repeat(80);
        validate_registration(&a).unwrap();
    }
}
