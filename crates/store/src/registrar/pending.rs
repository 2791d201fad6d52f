//! Re-registrations held for ACTIVE agents (table `registrar_pending_registrations`): the
//! fields a re-registration with the same TPM identity may change, with the activation key
//! of its challenge, kept beside the active record until that activation succeeds
//! (applied, then dropped) or fails (dropped). Deleting the agent deletes its row
//! (`ON DELETE CASCADE`).

use sqlx::FromRow;

/// The held fields, as applied to the active record.
#[derive(FromRow)]
pub(super) struct Held {
    pub ekcert: Option<Vec<u8>>,
    pub iak_tpm: Option<Vec<u8>>,
    pub iak_cert: Option<Vec<u8>>,
    pub idevid_tpm: Option<Vec<u8>>,
    pub idevid_cert: Option<Vec<u8>>,
    pub mtls_cert: Option<String>,
    pub ip: Option<String>,
    pub port: Option<i32>,
}

pub(super) const INSERT: &str = "INSERT INTO registrar_pending_registrations \
     (agent_id, ekcert, iak_tpm, iak_cert, idevid_tpm, idevid_cert, mtls_cert, ip, port, \
     activation_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
pub(super) const DELETE: &str = "DELETE FROM registrar_pending_registrations WHERE agent_id = ?";
pub(super) const DISCARD: &str =
    "DELETE FROM registrar_pending_registrations WHERE agent_id = ? AND activation_key = ?";
pub(super) const SELECT: &str = "SELECT ekcert, iak_tpm, iak_cert, idevid_tpm, idevid_cert, \
     mtls_cert, ip, port FROM registrar_pending_registrations \
     WHERE agent_id = ? AND activation_key = ?";
pub(super) const SELECT_FOR_UPDATE: &str = "SELECT ekcert, iak_tpm, iak_cert, idevid_tpm, \
     idevid_cert, mtls_cert, ip, port FROM registrar_pending_registrations \
     WHERE agent_id = ? AND activation_key = ? FOR UPDATE";
/// MySQL: text columns converted so they decode as `String` (see `mysql_columns!`).
pub(super) const SELECT_FOR_UPDATE_MYSQL: &str = "SELECT ekcert, iak_tpm, iak_cert, \
     idevid_tpm, idevid_cert, CONVERT(mtls_cert USING utf8mb4) AS mtls_cert, \
     CONVERT(ip USING utf8mb4) AS ip, port FROM registrar_pending_registrations \
     WHERE agent_id = ? AND activation_key = ? FOR UPDATE";
pub(super) const APPLY: &str = "UPDATE registrar_agents SET ekcert = ?, iak_tpm = ?, \
     iak_cert = ?, idevid_tpm = ?, idevid_cert = ?, mtls_cert = ?, ip = ?, port = ?, \
     regcount = CASE WHEN regcount < 2147483647 THEN regcount + 1 ELSE regcount END \
     WHERE agent_id = ? AND active = TRUE";
pub(super) const KEY: &str =
    "SELECT activation_key FROM registrar_pending_registrations WHERE agent_id = ?";
pub(super) const KEY_MYSQL: &str = "SELECT CONVERT(activation_key USING utf8mb4) \
     FROM registrar_pending_registrations WHERE agent_id = ?";
