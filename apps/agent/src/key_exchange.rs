//! Bootstrap-key delivery state (PROTOCOL.md §4.6): the U shares the tenant sent (each
//! with its `auth_tag` and optional payload) and the V shares the verifier sent. Every
//! U×V pair is tried; K = U ⊕ V is accepted when HMAC-SHA384(K, agent_id) equals the U's
//! `auth_tag`. Pure state, no I/O: the HTTP handlers decrypt shares with NK first.

use keylime_payload::{BootstrapKey, KEY_LEN, combine, verify_auth_tag};

/// Most shares of each kind kept while waiting for their partner (oldest dropped).
pub const MAX_PENDING_SHARES: usize = 16;

/// A U share from `POST /keys/ukey`.
#[derive(Clone)]
pub struct UShare {
    pub u: [u8; KEY_LEN],
    pub auth_tag: String,
    /// b64 encrypted payload, if the tenant sent one.
    pub payload: Option<String>,
}

/// A key that was just derived, and the payload that came with its U.
pub struct DerivedKey {
    pub key: BootstrapKey,
    pub payload: Option<String>,
}

/// Shares received so far and the current K.
pub struct KeyExchange {
    agent_id: String,
    u_shares: Vec<UShare>,
    v_shares: Vec<[u8; KEY_LEN]>,
    key: Option<BootstrapKey>,
}

impl KeyExchange {
    pub fn new(agent_id: impl Into<String>) -> Self {
        Self {
            agent_id: agent_id.into(),
            u_shares: Vec::new(),
            v_shares: Vec::new(),
            key: None,
        }
    }

    /// The current K, once derived.
    pub fn key(&self) -> Option<&BootstrapKey> {
        self.key.as_ref()
    }

    /// Records a U share; returns the key if it completes a pair.
    pub fn add_u(&mut self, share: UShare) -> Option<DerivedKey> {
        push_bounded(&mut self.u_shares, share);
        self.try_derive()
    }

    /// Records a V share; returns the key if it completes a pair.
    pub fn add_v(&mut self, v: [u8; KEY_LEN]) -> Option<DerivedKey> {
        push_bounded(&mut self.v_shares, v);
        self.try_derive()
    }

    /// Tries the newest shares first; a matched pair is consumed so that it cannot
    /// trigger a second delivery.
    fn try_derive(&mut self) -> Option<DerivedKey> {
        for ui in (0..self.u_shares.len()).rev() {
            for vi in (0..self.v_shares.len()).rev() {
                let (Some(u), Some(v)) = (self.u_shares.get(ui), self.v_shares.get(vi)) else {
                    continue;
                };
                let Ok(k) = combine(&u.u, v) else { continue };
                if verify_auth_tag(&k, &self.agent_id, &u.auth_tag) {
                    let u = self.u_shares.remove(ui);
                    self.v_shares.remove(vi);
                    self.key = Some(k.clone());
                    return Some(DerivedKey {
                        key: k,
                        payload: u.payload,
                    });
                }
            }
        }
        None
    }
}

fn push_bounded<T>(list: &mut Vec<T>, item: T) {
    if list.len() >= MAX_PENDING_SHARES {
        list.remove(0);
    }
    list.push(item);
}

#[cfg(test)]
mod tests {
    use super::*;
    use keylime_payload::{key_auth_tag, split_key};

    const ID: &str = "agent-1";

    fn u_share(u: [u8; 32], k: &BootstrapKey, payload: Option<&str>) -> UShare {
        UShare {
            u,
            auth_tag: key_auth_tag(k, ID),
            payload: payload.map(str::to_string),
        }
    }

    #[test]
    fn u_then_v_derives_k_once() {
        let (k, u, v) = split_key();
        let mut ex = KeyExchange::new(ID);
        assert!(ex.add_u(u_share(u, &k, Some("p"))).is_none());
        assert!(ex.key().is_none());
        let d = ex.add_v(v).expect("pair completes");
        assert_eq!(d.key, k);
        assert_eq!(d.payload.as_deref(), Some("p"));
        assert_eq!(ex.key(), Some(&k));
        // The same V again does not deliver twice.
        assert!(ex.add_v(v).is_none());
    }

    #[test]
    fn v_then_u_and_noise_among_shares() {
        let (k, u, v) = split_key();
        let (k2, u2, _) = split_key();
        let mut ex = KeyExchange::new(ID);
        assert!(ex.add_v([7u8; 32]).is_none());
        assert!(ex.add_v(v).is_none());
        assert!(ex.add_u(u_share(u2, &k2, None)).is_none());
        let d = ex
            .add_u(u_share(u, &k, None))
            .expect("pair found among others");
        assert_eq!(d.key, k);
    }

    #[test]
    fn wrong_auth_tag_never_yields_a_key() {
        let (k, u, v) = split_key();
        let mut ex = KeyExchange::new(ID);
        let mut share = u_share(u, &k, None);
        share.auth_tag = key_auth_tag(&k, "another-agent");
        ex.add_u(share);
        assert!(ex.add_v(v).is_none());
        assert!(ex.key().is_none());
    }

    #[test]
    fn pending_shares_are_bounded() {
        let mut ex = KeyExchange::new(ID);
        for i in 0..(MAX_PENDING_SHARES + 5) {
            ex.add_v([i as u8; 32]);
        }
        assert_eq!(ex.v_shares.len(), MAX_PENDING_SHARES);
    }
}
