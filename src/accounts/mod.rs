//! The people who may use the dashboard: their passwords, hashed with Argon2id off the async
//! runtime (a hash takes tens of milliseconds of CPU), and checked so that an unknown address
//! costs as much time as a wrong password. Users and sessions are kept by the store; what a
//! session is on the web lives in `web::admin`.

mod password;

pub use password::{MIN_PASSWORD_CHARS, Password, PasswordError, hash, verify, verify_unknown, warm_up};
