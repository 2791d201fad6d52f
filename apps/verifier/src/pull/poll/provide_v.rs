//! PROVIDE_V (PROTOCOL.md §4.6, §5.5): after a good quote, when the tenant gave `v` and it
//! has not been delivered for the agent's current payload key, POST
//! `{"encrypted_key": b64(RSA-OAEP-SHA1(pubkey, V))}` to `/keys/vkey`. States 5/6 while
//! delivering; connection failures retry as quotes do and end in FAILED
//! (`internal.verifier.not_reachable_v`), any other answer is FAILED (`no_v`). The delivery
//! is recorded in the store (a digest of key and V) before polling goes on, so a restart
//! does not deliver the same V to the same key again. A 400 "API version not supported"
//! renegotiates the agent's API version and resends at once.

use keylime_api::verifier::OperationalState;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

use super::{Command, Exit, Poller, wait_command};
use crate::outbound::{OutboundError, retry_pause};
use crate::pull::agent::PreparedAgent;
use crate::pull::client::AgentClient;

/// Marker of "V delivered for this key": hex SHA-256 over the key PEM, a separator and V.
fn delivery_marker(pubkey_pem: &str, v: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(pubkey_pem.as_bytes());
    h.update([0u8]);
    h.update(v);
    hex::encode(h.finalize())
}

impl Poller<'_> {
    /// Deliver V if needed; `Some` when the loop must end.
    pub(super) async fn provide_v(
        &mut self,
        prepared: &PreparedAgent,
        client: &mut AgentClient,
        commands: &mut watch::Receiver<Command>,
    ) -> Option<Exit> {
        let v = prepared.v()?;
        let pubkey = self.engine.pubkey_pem.clone()?;
        let marker = delivery_marker(&pubkey, &v);
        let repo = self.ctx.store.verifier();
        if self.v_delivered.is_none() {
            match repo.v_delivered_for(&self.id).await {
                Ok(m) => self.v_delivered = Some(m),
                Err(e) => {
                    tracing::error!(error = %e, "could not read the V delivery record");
                    return Some(Exit::Stopped);
                }
            }
        }
        if self
            .v_delivered
            .as_ref()
            .is_some_and(|m| m.as_deref() == Some(&marker))
        {
            return None;
        }
        let encrypted = match keylime_payload::rsa_oaep_sha1_encrypt(&pubkey, &v) {
            Ok(c) => keylime_api::encode_b64(&c),
            Err(e) => {
                let reason = format!("cannot encrypt V to the agent's key: {e}");
                return Some(self.fail(OperationalState::Failed, "no_v", &reason).await);
            }
        };
        self.row.operational_state = OperationalState::ProvideV as i32;
        if let Some(exit) = self.save().await {
            return Some(exit);
        }
        let ctx = self.ctx;
        let mut retries = 0u32;
        loop {
            let sent = tokio::select! {
                r = client.provide_v(&encrypted) => r,
                exit = wait_command(commands) => return Some(self.obey(exit).await),
            };
            match sent {
                Ok(()) => break,
                Err(e) if e.is_version_not_supported() => {
                    if let Err(exit) = self.renegotiate(client, commands).await {
                        return Some(exit);
                    }
                }
                Err(OutboundError::Unreachable(reason)) => {
                    retries += 1;
                    tracing::info!(attempt = retries, %reason, "agent unreachable for V");
                    if retries > ctx.timing.max_retries {
                        return Some(
                            self.fail(OperationalState::Failed, "not_reachable_v", &reason)
                                .await,
                        );
                    }
                    self.row.operational_state = OperationalState::ProvideVRetry as i32;
                    if let Some(exit) = self.save().await {
                        return Some(exit);
                    }
                    let pause = retry_pause(&ctx.timing, retries);
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        exit = wait_command(commands) => return Some(self.obey(exit).await),
                    }
                }
                Err(e) => {
                    return Some(
                        self.fail(OperationalState::Failed, "no_v", &e.to_string())
                            .await,
                    );
                }
            }
        }
        if let Err(e) = repo.record_v_delivered(&self.id, &marker).await {
            tracing::error!(error = %e, "could not record the V delivery; stopping its polling");
            return Some(Exit::Stopped);
        }
        self.v_delivered = Some(Some(marker));
        tracing::info!("V delivered to the agent");
        self.row.operational_state = OperationalState::GetQuote as i32;
        self.save().await
    }
}

#[cfg(test)]
mod tests {
    use super::delivery_marker;

    #[test]
    fn marker_changes_with_key_and_v() {
        let a = delivery_marker("key-a", &[1; 32]);
        assert_eq!(a.len(), 64);
        assert_ne!(a, delivery_marker("key-b", &[1; 32]));
        assert_ne!(a, delivery_marker("key-a", &[2; 32]));
        assert_eq!(a, delivery_marker("key-a", &[1; 32]));
    }
}
