//! Secrets at rest: Stripe API keys and webhook signing secrets are stored
//! encrypted with AES-256-GCM under one process-wide key, and shown to users
//! only masked.
//!
//! Stored form: `v1.<base64(nonce ‖ ciphertext ‖ tag)>`. The row's identity
//! (e.g. `app:<id>:api_key`) is the associated data, so a ciphertext copied
//! into another row or column does not decrypt.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;

const PREFIX: &str = "v1.";
const NONCE_LEN: usize = 12;
/// File in the data directory holding the generated key (embedded default).
pub const KEY_FILE: &str = "encryption.key";

#[derive(Clone)]
pub struct Secrets {
    cipher: Aes256Gcm,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "METERPAY_ENCRYPTION_KEY must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)"
    )]
    BadKey,
    #[error(
        "a stored secret cannot be decrypted: the encryption key differs from the one it was written with, or the row was altered"
    )]
    Undecryptable,
}

impl Secrets {
    /// A key given as base64 of 32 bytes (`METERPAY_ENCRYPTION_KEY`).
    pub fn from_base64(key: &str) -> Result<Secrets, SecretsError> {
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| SecretsError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretsError::BadKey);
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| SecretsError::BadKey)?;
        Ok(Secrets { cipher })
    }

    /// The embedded default: the key kept in `dir/encryption.key`, generated
    /// (mode 0600) on first start.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Secrets> {
        let path = dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Secrets::from_base64(&text)
                .with_context(|| format!("the key in {} is not valid", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                let encoded = STANDARD.encode(key);
                write_private(&path, &encoded)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                tracing::info!(path = %path.display(), "generated a new encryption key for secrets at rest");
                Ok(Secrets::from_base64(&encoded)?)
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn encrypt(&self, plaintext: &str, context: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a short secret cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    pub fn decrypt(&self, stored: &str, context: &str) -> Result<String, SecretsError> {
        let raw = stored
            .strip_prefix(PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|raw| raw.len() > NONCE_LEN)
            .ok_or(SecretsError::Undecryptable)?;
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SecretsError::Undecryptable)?;
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Undecryptable)?;
        String::from_utf8(plain).map_err(|_| SecretsError::Undecryptable)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// A secret as users may see it: the first 8 and last 4 characters, the rest
/// elided (`sk_test_…abcd`). Short values show only their last 4.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 12 {
        let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
        return format!("…{tail}");
    }
    let head: String = chars[..8].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets::from_base64(&STANDARD.encode([7u8; 32])).unwrap()
    }

    #[test]
    fn round_trips_and_binds_context() {
        let s = secrets();
        let stored = s.encrypt("sk_test_abcdefghijklmnop", "app:1:api_key");
        assert!(stored.starts_with("v1."));
        assert!(!stored.contains("sk_test"));
        assert_eq!(
            s.decrypt(&stored, "app:1:api_key").unwrap(),
            "sk_test_abcdefghijklmnop"
        );
        assert!(s.decrypt(&stored, "app:2:api_key").is_err());
        assert_ne!(
            stored,
            s.encrypt("sk_test_abcdefghijklmnop", "app:1:api_key")
        );
        let other = Secrets::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert!(other.decrypt(&stored, "app:1:api_key").is_err());
    }

    #[test]
    fn rejects_bad_keys() {
        assert!(Secrets::from_base64("short").is_err());
        assert!(Secrets::from_base64(&STANDARD.encode([1u8; 16])).is_err());
    }

    #[test]
    fn masks() {
        assert_eq!(mask("sk_test_51abcdefghijWXYZ"), "sk_test_…WXYZ");
        assert_eq!(mask("short"), "…hort");
    }

    #[test]
    fn generated_key_file_is_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("meterpay-secrets-{}", crate::ids::new_ulid()));
        let a = Secrets::load_or_create(&dir).unwrap();
        let b = Secrets::load_or_create(&dir).unwrap();
        let stored = a.encrypt("x", "c");
        assert_eq!(b.decrypt(&stored, "c").unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
