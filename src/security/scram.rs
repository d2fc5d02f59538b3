//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802 / RFC 7677) as Kafka runs them:
//! credentials kept salted and iterated (never the password), managed with
//! AlterUserScramCredentials, and the server side of the exchange
//! (`ScramSaslServer`).
//!
//! The exchange, for a stored (salt, iterations, StoredKey, ServerKey):
//! ```text
//! client-first  n,,n=alice,r=<cnonce>
//! server-first  r=<cnonce><snonce>,s=<base64 salt>,i=<iterations>
//! client-final  c=biws,r=<cnonce><snonce>,p=<base64 ClientProof>
//! server-final  v=<base64 ServerSignature>
//! ```
//! AuthMessage = client-first-bare "," server-first "," client-final-without-proof;
//! the proof is ClientKey XOR HMAC(StoredKey, AuthMessage), and the client is who
//! it says when H(ClientKey) = StoredKey.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};

use super::credentials::CredentialStore;
use super::principal::Principal;
use super::Step;

/// Kafka's bounds on a credential's iterations (`ScramMechanism`).
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        [ScramMechanism::Sha256, ScramMechanism::Sha512]
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// The wire code in the SCRAM credential APIs (1 = SHA-256, 2 = SHA-512).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    /// The hash (its output length is a salted password's and a key's).
    pub(crate) fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data).as_ref().to_vec()
    }

    /// Hi(password, salt, iterations): PBKDF2 with this HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0; self.digest().output_len()];
        let rounds = std::num::NonZeroU32::new(iterations.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
        pbkdf2::derive(self.pbkdf2(), rounds, salt, password, &mut out);
        out
    }

    /// The stored credential for a salted password (what the controller keeps).
    pub fn credential(self, salted_password: &[u8], salt: Vec<u8>, iterations: i32) -> ScramCredential {
        let client_key = self.mac(salted_password, b"Client Key");
        ScramCredential {
            stored_key: digest::digest(self.digest(), &client_key).as_ref().to_vec(),
            server_key: self.mac(salted_password, b"Server Key"),
            salt,
            iterations,
        }
    }
}

/// What is kept of a user's SCRAM password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

/// Fresh random bytes (salts, nonces).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0; n];
    // The OS random source failing is not something to go on without.
    if SystemRandom::new().fill(&mut out).is_err() {
        panic!("the system's random number generator failed");
    }
    out
}

/// Where a server-side exchange is.
enum State {
    /// Waiting for client-first.
    First,
    /// server-first sent; waiting for client-final.
    Final {
        user: String,
        credential: ScramCredential,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Done,
}

/// The server side of one SCRAM exchange.
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: State,
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism) -> ScramServer {
        ScramServer {
            mechanism,
            state: State::First,
        }
    }

    /// Kafka answers most failures with a generic message, so that what went
    /// wrong (no such user, a wrong proof) is not told to the client.
    fn generic(&self) -> Step {
        Step::Failed(format!(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
            self.mechanism.name()
        ))
    }

    pub fn step(&mut self, message: &[u8], store: &CredentialStore) -> Step {
        let Ok(text) = std::str::from_utf8(message) else {
            return self.generic();
        };
        match std::mem::replace(&mut self.state, State::Done) {
            State::First => self.first(text, store),
            State::Final {
                user,
                credential,
                client_first_bare,
                server_first,
                nonce,
            } => {
                let Some((without_proof, proof)) = text.rsplit_once(",p=") else {
                    return self.generic();
                };
                let Some(final_nonce) = attribute(without_proof, 'r') else {
                    return self.generic();
                };
                // The whole nonce, client's and server's parts; Kafka 3.8.1–3.9
                // accept it after a prefix (librdkafka before 2.6.1 repeats its
                // own nonce in front), and so does strom.
                if !final_nonce.ends_with(&nonce) {
                    return Step::Failed("Invalid client nonce in the final client message.".into());
                }
                let Ok(proof) = B64.decode(proof) else {
                    return self.generic();
                };
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let m = self.mechanism;
                let signature = m.mac(&credential.stored_key, auth_message.as_bytes());
                if proof.len() != signature.len() {
                    return self.generic();
                }
                let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
                let stored = digest::digest(m.digest(), &client_key);
                if !super::same_bytes(stored.as_ref(), &credential.stored_key) {
                    return self.generic();
                }
                let server_signature = m.mac(&credential.server_key, auth_message.as_bytes());
                Step::Done(
                    Principal::user(user),
                    format!("v={}", B64.encode(server_signature)).into_bytes(),
                )
            }
            State::Done => self.generic(),
        }
    }

    fn first(&mut self, text: &str, store: &CredentialStore) -> Step {
        // gs2 header: only "n" (no channel binding), an optional authzid, then
        // client-first-bare.
        let Some(rest) = text.strip_prefix("n,") else {
            return self.generic();
        };
        let Some((authzid, bare)) = rest.split_once(',') else {
            return self.generic();
        };
        // client-first-bare starts with the user name (an m= extension before
        // it is not something Kafka's parser takes).
        if !bare.starts_with("n=") {
            return self.generic();
        }
        let Some(user) = attribute(bare, 'n').and_then(sasl_name) else {
            return self.generic();
        };
        let Some(client_nonce) = attribute(bare, 'r').filter(|n| !n.is_empty()) else {
            return self.generic();
        };
        if let Some(authzid) = authzid.strip_prefix("a=") {
            if sasl_name(authzid).as_deref() != Some(user.as_str()) {
                return Step::Failed(format!(
                    "Authentication failed: Client requested an authorization id {authzid} that is different from username {user}"
                ));
            }
        }
        let Some(credential) = store.get(&user, self.mechanism) else {
            return self.generic();
        };
        let server_nonce: String = B64.encode(random_bytes(18)).replace(['+', '/', '='], "x");
        let nonce = format!("{client_nonce}{server_nonce}");
        let expected_nonce = nonce.clone();
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        self.state = State::Final {
            user,
            credential,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce: expected_nonce,
        };
        Step::Challenge(server_first.into_bytes())
    }
}

/// The client side of one exchange (strom's admin tools log in with it).
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    client_first_bare: String,
    /// The ServerSignature the last message must carry, once known.
    server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// The client and its first message (`n,,n=USER,r=NONCE`).
    pub fn start(mechanism: ScramMechanism, user: &str, password: &str) -> (ScramClient, Vec<u8>) {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        let nonce = B64.encode(random_bytes(24)).replace(['+', '/', '='], "x");
        let client_first_bare = format!("n={user},r={nonce}");
        let first = format!("n,,{client_first_bare}").into_bytes();
        let client = ScramClient {
            mechanism,
            password: password.to_string(),
            client_first_bare,
            server_signature: None,
        };
        (client, first)
    }

    /// client-final for the server's first message.
    pub fn answer(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let server_first = std::str::from_utf8(server_first).map_err(|_| "server-first is not UTF-8")?;
        let nonce = attribute(server_first, 'r').ok_or("server-first without a nonce")?;
        let own = attribute(&self.client_first_bare, 'r').unwrap_or_default();
        if !nonce.starts_with(own) || nonce.len() <= own.len() {
            return Err("the server's nonce does not extend ours".into());
        }
        let salt = attribute(server_first, 's')
            .and_then(|s| B64.decode(s).ok())
            .ok_or("server-first without a salt")?;
        let iterations: u32 = attribute(server_first, 'i')
            .and_then(|i| i.parse().ok())
            .filter(|i| (MIN_ITERATIONS as u32..=MAX_ITERATIONS as u32).contains(i))
            .ok_or("server-first without usable iterations")?;
        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = m.mac(&salted, b"Client Key");
        let stored_key = digest::digest(m.digest(), &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = m.mac(stored_key.as_ref(), auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        self.server_signature = Some(m.mac(&m.mac(&salted, b"Server Key"), auth.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Check the server's last message: it knew the password too.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final).map_err(|_| "server-final is not UTF-8")?;
        let given = attribute(text, 'v').and_then(|v| B64.decode(v).ok());
        match (&self.server_signature, given) {
            (Some(expected), Some(given)) if super::same_bytes(expected, &given) => Ok(()),
            _ => Err("the server's signature is wrong: it does not know this password".into()),
        }
    }
}

/// The value of `key=` among a SCRAM message's comma-separated attributes.
fn attribute(message: &str, key: char) -> Option<&str> {
    message
        .split(',')
        .find_map(|a| a.strip_prefix(key).and_then(|a| a.strip_prefix('=')))
}

/// A saslname: `=2C` is a comma and `=3D` an equals sign; any other `=` is invalid.
fn sasl_name(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::credentials::Alteration;

    fn store_with(user: &str, password: &str, m: ScramMechanism) -> (tempfile::TempDir, CredentialStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path()).unwrap();
        let salt = random_bytes(16);
        let salted = m.salted_password(password.as_bytes(), &salt, 4096);
        let r = store
            .alter(vec![Alteration::Upsert {
                user: user.into(),
                mechanism: m.code(),
                iterations: 4096,
                salt,
                salted_password: salted,
            }])
            .unwrap();
        assert_eq!(r, vec![(user.to_string(), Ok(()))]);
        (dir, store)
    }

    #[test]
    fn a_right_password_logs_in_and_a_wrong_one_does_not() {
        for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            let (_dir, store) = store_with("alice", "alice-secret", m);
            for (password, ok) in [("alice-secret", true), ("nope", false)] {
                let mut server = ScramServer::new(m);
                let (mut client, first) = ScramClient::start(m, "alice", password);
                let Step::Challenge(challenge) = server.step(&first, &store) else {
                    panic!("no challenge")
                };
                let fin = client.answer(&challenge).unwrap();
                match server.step(&fin, &store) {
                    Step::Done(p, last) if ok => {
                        assert_eq!(p, Principal::user("alice"));
                        client.verify(&last).unwrap();
                        assert!(client.verify(b"v=AAAA").is_err());
                    }
                    Step::Failed(msg) if !ok => assert!(msg.contains("invalid credentials"), "{msg}"),
                    other => panic!("{m:?} {password}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn unknown_users_and_wrong_nonces_fail() {
        let m = ScramMechanism::Sha256;
        let (dir, store) = store_with("alice", "pw", m);
        let mut server = ScramServer::new(m);
        assert!(matches!(server.step(b"n,,n=bob,r=abc", &store), Step::Failed(_)));
        let mut server = ScramServer::new(m);
        let Step::Challenge(_) = server.step(b"n,,n=alice,r=abc", &store) else {
            panic!()
        };
        assert_eq!(
            server.step(b"c=biws,r=abcWRONG,p=AAAA", &store),
            Step::Failed("Invalid client nonce in the final client message.".into())
        );
        // The final nonce must carry the client's part too.
        let mut server = ScramServer::new(m);
        let Step::Challenge(first) = server.step(b"n,,n=alice,r=abc", &store) else {
            panic!()
        };
        let first = String::from_utf8(first).unwrap();
        let server_part = &attribute(&first, 'r').unwrap()[3..];
        let fin = format!("c=biws,r={server_part},p=AAAA");
        assert!(matches!(server.step(fin.as_bytes(), &store), Step::Failed(m) if m.contains("nonce")));
        // An extension before the user name is not taken.
        assert!(matches!(
            ScramServer::new(m).step(b"n,,m=x,n=alice,r=a", &store),
            Step::Failed(_)
        ));
        // Channel binding and bad saslnames are refused.
        assert!(matches!(
            ScramServer::new(m).step(b"p=tls,,n=alice,r=a", &store),
            Step::Failed(_)
        ));
        assert_eq!(sasl_name("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(sasl_name("a=b"), None);
        // The store survives a reopen.
        drop(store);
        let again = CredentialStore::open(dir.path()).unwrap();
        assert!(again.get("alice", m).is_some());
        assert!(again.get("alice", ScramMechanism::Sha512).is_none());
    }
}
