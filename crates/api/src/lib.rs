#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod agent;
pub mod agent_id;
pub mod encoding;
pub mod envelope;
pub mod named_policy;
pub mod openapi;
pub mod path;
pub mod pyjson;
pub mod registrar;
pub mod verification;
pub mod verifier;
pub mod version;

pub use agent_id::{MAX_AGENT_ID_CHARS, is_valid_agent_id};
pub use encoding::{BinaryDecodeError, decode_binary, encode_b64};
pub use envelope::{EmptyResults, Envelope, ErrorDocument, ErrorObject};
pub use path::{PathSegmentError, decode_segment};
pub use registrar::{
    ActivateRequest, AgentList, AgentRecord, RegisterRequest, RegisterResponse,
    activation_auth_tag, activation_auth_tag_with_key,
};
pub use version::{
    AGENT_SUPPORTED_VERSIONS, AgentVersionInfo, ApiVersion, ApiVersionError, CURRENT_VERSION,
    SERVICE_SUPPORTED_VERSIONS, VersionInfo,
};
