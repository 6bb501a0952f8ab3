//! The context of every operation: the validated configuration with its derived keys.

use crate::Error;
use crate::config::Config;
use crate::crypto::Keyring;
use crate::webauthn::RelyingParty;
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::Arc;

/// The validated configuration with its derived keys: the context of every decision.
pub struct Core {
    pub(crate) config: Config,
    pub(crate) keyring: Keyring,
    pub(crate) rp: Option<RelyingParty>,
    pub(crate) rng: Box<dyn SecureRandom + Send + Sync>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("config", &self.config).field("keyring", &self.keyring).finish_non_exhaustive()
    }
}

impl Core {
    /// Validates `config` and derives its keys; randomness comes from ring's system CSPRNG.
    pub fn new(config: Config) -> Result<Arc<Core>, Error> {
        config.validate()?;
        Ok(Arc::new(Core {
            keyring: Keyring::new(
                config.keys.iter().map(|k| (k.id.as_str(), k.secret.as_str())),
                config.active_key_id(),
            )?,
            rp: config.webauthn.as_ref().map(RelyingParty::new).transpose()?,
            rng: Box::new(SystemRandom::new()),
            config,
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// The error of an admin call on a handle whose config does not grant the admin capability.
pub(crate) fn admin_forbidden() -> Error {
    Error::Forbidden("the admin capability is not granted: set \"admin\": true in the config of admin handles".into())
}
