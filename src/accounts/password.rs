//! Passwords: read once into a [`Password`] that refuses an empty or short one and never
//! prints, hashed into an Argon2id PHC string, and checked against one. Both run on tokio's
//! blocking pool.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier, password_hash::SaltString};
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};

/// The shortest password taken.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest: a hash of a megabyte of "password" would be a way to spend our CPU.
const MAX_PASSWORD_CHARS: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password is empty; give one line of at least {MIN_PASSWORD_CHARS} characters")]
    Empty,
    #[error("the password is {0} characters long; give at least {MIN_PASSWORD_CHARS}")]
    TooShort(usize),
    #[error("the password is longer than {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

/// A password as typed, without the line's end; shown nowhere.
pub struct Password(SecretString);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

impl Password {
    /// One line as read (its `\n` or `\r\n` dropped): refused when empty or short.
    pub fn new(line: &str) -> Result<Self, PasswordError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let chars = line.chars().count();
        if line.trim().is_empty() {
            return Err(PasswordError::Empty);
        }
        if chars < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort(chars));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(SecretString::from(line.to_owned())))
    }

    /// A password as a login form gave it: whatever its length, it is only compared.
    pub fn given(text: &str) -> Self {
        let text: String = text.chars().take(MAX_PASSWORD_CHARS).collect();
        Self(SecretString::from(text))
    }

    fn bytes(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
}

/// The Argon2id PHC string of `password` with a fresh salt, made on the blocking pool.
pub async fn hash(password: Password) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || hash_now(&password)).await.map_err(|e| PasswordError::Hash(e.to_string()))?
}

fn hash_now(password: &Password) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` is the one `phc` was made from, checked on the blocking pool. A hash
/// that cannot be read matches nothing.
pub async fn verify(password: Password, phc: String) -> bool {
    tokio::task::spawn_blocking(move || verify_now(&password, &phc)).await.unwrap_or(false)
}

/// Spends the time a check against a real hash takes, and says no: the answer to an unknown
/// address, so that its timing says nothing of which addresses are users.
pub async fn verify_unknown(password: Password) -> bool {
    tokio::task::spawn_blocking(move || {
        if let Some(phc) = decoy() {
            let _ = verify_now(&password, phc);
        }
        false
    })
    .await
    .unwrap_or(false)
}

/// Makes the decoy hash ahead of the first sign-in, on the blocking pool, so that the first
/// unknown address does not take twice the time of a wrong password.
pub fn warm_up() {
    drop(tokio::task::spawn_blocking(decoy));
}

/// A hash of a random password with the parameters real ones have, made once.
fn decoy() -> Option<&'static str> {
    static DECOY: OnceLock<Option<String>> = OnceLock::new();
    DECOY
        .get_or_init(|| {
            let mut bytes = [0u8; 24];
            rand::rng().fill_bytes(&mut bytes);
            hash_now(&Password::given(&hex::encode(bytes))).ok()
        })
        .as_deref()
}

fn verify_now(password: &Password, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    Argon2::default().verify_password(password.bytes(), &parsed).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_short_passwords_are_refused() {
        assert_eq!(Password::new("").map(drop), Err(PasswordError::Empty));
        assert_eq!(Password::new("   \n").map(drop), Err(PasswordError::Empty));
        assert_eq!(Password::new("short\n").map(drop), Err(PasswordError::TooShort(5)));
        assert!(Password::new("correct horse battery\r\n").is_ok());
        assert_eq!(format!("{:?}", Password::given("secret")), "Password(…)");
    }

    #[tokio::test]
    async fn a_hash_matches_its_password_alone() {
        let phc = hash(Password::new("correct horse battery").expect("long enough")).await.expect("hash");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(verify(Password::given("correct horse battery"), phc.clone()).await);
        assert!(!verify(Password::given("correct horse batter"), phc).await);
        assert!(!verify(Password::given("x"), "not a hash".into()).await);
        assert!(!verify_unknown(Password::given("correct horse battery")).await);
    }
}
