//! Why a new runtime policy could not be made: each error names the input at fault.

use crate::ImaError;
use crate::file_signature::KeyError;
use crate::policy::PolicyError;

/// Why a runtime policy could not be made from its inputs.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The inputs disagree on the digest algorithm (or one names none upstream knows).
    #[error("{0}; aborting")]
    DigestAlgorithm(String),
    #[error("{source_name}: {error}")]
    MeasurementList {
        source_name: String,
        error: ImaError,
    },
    #[error("{source_name} line {line}: bad IMA exclude list rule '{rule}': {problem}")]
    ExcludeRule {
        source_name: String,
        line: usize,
        rule: String,
        problem: String,
    },
    #[error("the base policy {source_name} is not a JSON runtime policy")]
    BaseNotJson {
        source_name: String,
        #[source]
        error: serde_json::Error,
    },
    #[error("the base policy {source_name} has invalid verification-keys: {problem}")]
    BaseKeys {
        source_name: String,
        problem: String,
    },
    #[error("the base policy {source_name} cannot be converted to a valid runtime policy")]
    BaseInvalid {
        source_name: String,
        #[source]
        error: PolicyError,
    },
    #[error("verification-keys {0}")]
    VerificationKeys(String),
    #[error("{source_name} does not hold a supported key")]
    KeyFile {
        source_name: String,
        #[source]
        error: KeyError,
    },
    #[error("the resulting policy is not a valid runtime policy")]
    Invalid(#[source] PolicyError),
}
