//! Who is connecting, and proving it: TLS listeners and certificate principals
//! ([`tls`], [`principal`]), the server side of SASL's mechanisms: PLAIN
//! (users from the listener's JAAS line), SCRAM-SHA-256/512 ([`scram`]) and
//! OAUTHBEARER ([`oauth`]), and ACLs ([`acl`]).
//! The wire side of SASL (SaslHandshake, SaslAuthenticate, what a connection may
//! do before it has logged in) is `server::sasl`.

pub mod acl;
pub mod credentials;
pub mod oauth;
pub mod principal;
pub mod scram;
pub mod tls;

use std::collections::BTreeMap;
use std::sync::Arc;

use credentials::CredentialStore;
pub use principal::Principal;
use scram::{ScramMechanism, ScramServer};

/// One step of a SASL exchange, as the server sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge and wait for the client's next message.
    Challenge(Vec<u8>),
    /// Authenticated: send this last message.
    Done(Principal, Vec<u8>),
    /// Refused, with the message the client is told.
    Failed(String),
}

/// What a listener's SASL mechanisms check logins against.
pub struct SaslContext {
    pub plain_users: BTreeMap<String, String>,
    pub oauth: oauth::OAuthSettings,
    pub jwks: oauth::Jwks,
}

/// The server side of one SASL exchange, for one of the mechanisms strom has.
pub enum SaslServer {
    Plain(Arc<SaslContext>),
    Scram(ScramServer),
    OAuth(Arc<SaslContext>, oauth::OAuthServer),
}

impl SaslServer {
    /// A server for `mechanism` (upper-case, as enabled), None if strom has none.
    pub fn new(mechanism: &str, context: &Arc<SaslContext>) -> Option<SaslServer> {
        match mechanism {
            "PLAIN" => Some(SaslServer::Plain(context.clone())),
            "OAUTHBEARER" => Some(SaslServer::OAuth(context.clone(), oauth::OAuthServer::new())),
            m => ScramMechanism::from_name(m).map(|m| SaslServer::Scram(ScramServer::new(m))),
        }
    }

    pub fn step(&mut self, token: &[u8], credentials: &CredentialStore) -> Step {
        match self {
            SaslServer::Plain(context) => plain(&context.plain_users, token),
            SaslServer::Scram(server) => server.step(token, credentials),
            SaslServer::OAuth(context, server) => {
                server.step(token, &context.oauth, &context.jwks, crate::util::clock::now_ms())
            }
        }
    }

    /// When the credential of a finished login expires (an OAUTHBEARER token's
    /// exp), in ms since the epoch.
    pub fn credential_expiry_ms(&self) -> Option<i64> {
        match self {
            SaslServer::OAuth(_, server) => server.expires_ms,
            _ => None,
        }
    }
}

/// PLAIN (RFC 4616): `[authzid] NUL user NUL password`, checked against the
/// listener's users as Kafka's PlainSaslServer does, with its messages.
fn plain(users: &BTreeMap<String, String>, token: &[u8]) -> Step {
    let generic = || {
        Step::Failed(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism PLAIN".into(),
        )
    };
    let Ok(text) = std::str::from_utf8(token) else {
        return generic();
    };
    let parts: Vec<&str> = text.split('\0').collect();
    let [authzid, user, password] = parts[..] else {
        return generic();
    };
    if user.is_empty() || password.is_empty() {
        return generic();
    }
    let known = users
        .get(user)
        .is_some_and(|expected| same_bytes(expected.as_bytes(), password.as_bytes()));
    if !known {
        return Step::Failed("Authentication failed: Invalid username or password".into());
    }
    if !authzid.is_empty() && authzid != user {
        return Step::Failed(
            "Authentication failed: Client requested an authorization id that is different from username".into(),
        );
    }
    Step::Done(Principal::user(user), Vec::new())
}

/// Whether `a` and `b` are equal, in time that depends on their lengths only
/// (a secret compared byte by byte would tell how much of it a guess got right).
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_checks_users_as_kafka_does() {
        let users: BTreeMap<String, String> = [("alice".to_string(), "pw".to_string())].into();
        assert_eq!(
            plain(&users, b"\0alice\0pw"),
            Step::Done(Principal::user("alice"), vec![])
        );
        assert_eq!(
            plain(&users, b"alice\0alice\0pw"),
            Step::Done(Principal::user("alice"), vec![])
        );
        let Step::Failed(m) = plain(&users, b"\0alice\0nope") else {
            panic!()
        };
        assert_eq!(m, "Authentication failed: Invalid username or password");
        assert!(matches!(plain(&users, b"\0bob\0pw"), Step::Failed(_)));
        assert!(matches!(plain(&users, b"bob\0alice\0pw"), Step::Failed(m) if m.contains("authorization id")));
        assert!(matches!(plain(&users, b"\0alice"), Step::Failed(m) if m.contains("invalid credentials")));
        assert!(matches!(plain(&users, b"\0\0pw"), Step::Failed(_)));
    }
}
