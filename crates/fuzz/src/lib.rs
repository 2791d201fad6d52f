#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod api;
pub mod attestation;
pub mod eventlog;
pub mod ima;
pub mod pki;
pub mod tpm;

/// A fuzz target: its name (the `fuzz/fuzz_targets/<name>.rs` binary) and entry point.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every fuzz target, in the order `scripts/fuzz.sh` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "tpm_public",
        run: tpm::public,
    },
    Target {
        name: "tpm_attest",
        run: tpm::attest,
    },
    Target {
        name: "tpm_signature",
        run: tpm::signature,
    },
    Target {
        name: "tpm_pcr_blob",
        run: tpm::pcr_blob,
    },
    Target {
        name: "tpm_credential",
        run: tpm::credential,
    },
    Target {
        name: "tpm_quote_string",
        run: tpm::quote_string,
    },
    Target {
        name: "attestation_quote",
        run: attestation::quote,
    },
    Target {
        name: "ima_parse",
        run: ima::parse,
    },
    Target {
        name: "ima_check",
        run: ima::check,
    },
    Target {
        name: "ima_policy",
        run: ima::policy,
    },
    Target {
        name: "ima_allowlist",
        run: ima::allowlist,
    },
    Target {
        name: "eventlog_parse",
        run: eventlog::parse,
    },
    Target {
        name: "eventlog_mb_check",
        run: eventlog::mb_check,
    },
    Target {
        name: "eventlog_refstate",
        run: eventlog::refstate,
    },
    Target {
        name: "api_bodies",
        run: api::bodies,
    },
    Target {
        name: "api_registration",
        run: api::registration,
    },
    Target {
        name: "api_add_agent",
        run: api::add_agent,
    },
    Target {
        name: "pki_ek_cert",
        run: pki::ek_cert,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
