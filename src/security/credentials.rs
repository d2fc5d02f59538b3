//! Users' SCRAM credentials: what AlterUserScramCredentials sets and
//! DescribeUserScramCredentials shows (never the password: salt, iterations,
//! StoredKey and ServerKey), kept in `<data dir>/scram-credentials.json`
//! (owner-only, written whole and atomically on each change); in a cluster, in
//! etcd (`cluster::documents`), the same document.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::scram::{ScramCredential, ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS};

/// The longest salt kept (Kafka's clients make 32-byte ones): a salt goes out
/// in every login's first challenge.
const MAX_SALT: usize = 1024;

type Users = BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>;

/// Every user's SCRAM credentials, in `<data dir>/scram-credentials.json`
/// (written whole and atomically on each change).
pub struct CredentialStore {
    path: PathBuf,
    users: RwLock<Users>,
}

/// One change of AlterUserScramCredentials.
#[derive(Clone)]
pub enum Alteration {
    Delete {
        user: String,
        mechanism: i8,
    },
    Upsert {
        user: String,
        mechanism: i8,
        iterations: i32,
        salt: Vec<u8>,
        salted_password: Vec<u8>,
    },
}

impl Alteration {
    fn user(&self) -> &str {
        match self {
            Alteration::Delete { user, .. } | Alteration::Upsert { user, .. } => user,
        }
    }
}

/// A per-user failure of the credential APIs: Kafka's error name and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialError {
    UnacceptableCredential(String),
    UnsupportedSaslMechanism(String),
    ResourceNotFound(String),
    DuplicateResource(String),
}

impl CredentialStore {
    pub fn open(data_dir: &Path) -> std::io::Result<CredentialStore> {
        let path = data_dir.join("scram-credentials.json");
        let users = match std::fs::read(&path) {
            Ok(bytes) => decode(&bytes).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Users::new(),
            Err(e) => return Err(e),
        };
        Ok(CredentialStore {
            path,
            users: RwLock::new(users),
        })
    }

    pub fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.get(user)?.get(&mechanism).cloned()
    }

    /// DescribeUserScramCredentials: each named user's (mechanism, iterations),
    /// every user's when `users` is None.
    #[allow(clippy::type_complexity)]
    pub fn describe(
        &self,
        users: Option<&[String]>,
    ) -> Vec<(String, Result<Vec<(ScramMechanism, i32)>, CredentialError>)> {
        let known = self.users.read().unwrap_or_else(|e| e.into_inner());
        let of = |creds: &BTreeMap<ScramMechanism, ScramCredential>| {
            creds.iter().map(|(m, c)| (*m, c.iterations)).collect::<Vec<_>>()
        };
        let Some(users) = users else {
            return known.iter().map(|(u, c)| (u.clone(), Ok(of(c)))).collect();
        };
        let mut seen = std::collections::HashSet::new();
        users
            .iter()
            .map(|u| {
                let result = if !seen.insert(u.as_str()) {
                    Err(CredentialError::DuplicateResource(format!(
                        "Cannot describe SCRAM credentials for the same user twice in a single request: {u}"
                    )))
                } else {
                    match known.get(u) {
                        Some(c) => Ok(of(c)),
                        None => Err(CredentialError::ResourceNotFound(format!(
                            "Attempt to describe a user credential that does not exist: {u}"
                        ))),
                    }
                };
                (u.clone(), result)
            })
            .collect()
    }

    /// AlterUserScramCredentials, with Kafka's checks (`ScramControlManager`):
    /// the result of each user named, in first-seen order; changes are saved
    /// before this returns.
    pub fn alter(&self, changes: Vec<Alteration>) -> std::io::Result<AlterResults> {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let (next, results) = altered(&users, &changes);
        if next != *users {
            std::fs::create_dir_all(self.path.parent().unwrap_or(Path::new(".")))?;
            crate::util::fs::write_private(&self.path, &encode(&next))?;
            *users = next;
        }
        Ok(results)
    }

    /// [`CredentialStore::alter`] on a cluster's credential document (None:
    /// none yet): the new document, if anything changed, and each user's result.
    pub fn alter_in(
        document: Option<&[u8]>,
        changes: &[Alteration],
    ) -> Result<(Option<Vec<u8>>, AlterResults), String> {
        let users = document.map_or(Ok(Users::new()), decode)?;
        let (next, results) = altered(&users, changes);
        Ok(((next != users).then(|| encode(&next)), results))
    }

    /// The credentials as a document (None when there are none).
    pub fn document(&self) -> Option<Vec<u8>> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        (!users.is_empty()).then(|| encode(&users))
    }

    /// Take a cluster's credential document; one that does not decode is
    /// refused and the credentials in force stay.
    /// What is taken is kept in the file too (the last sound state).
    pub fn install(&self, document: &[u8]) -> Result<(), String> {
        let next = decode(document)?;
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = crate::util::fs::write_private(&self.path, &encode(&next)) {
            tracing::warn!(error = %e, "could not keep the cluster's SCRAM credentials in their file");
        }
        *users = next;
        Ok(())
    }
}

/// Each user's result of AlterUserScramCredentials, in first-seen order.
pub type AlterResults = Vec<(String, Result<(), CredentialError>)>;

fn altered(users: &Users, changes: &[Alteration]) -> (Users, AlterResults) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in changes {
        *counts.entry(c.user()).or_default() += 1;
    }
    let mut next = users.clone();
    let mut results: AlterResults = Vec::new();
    for change in changes {
        let user = change.user();
        if results.iter().any(|(u, _)| u == user) {
            continue;
        }
        let result = if counts[user] > 1 {
            Err(CredentialError::DuplicateResource(
                "A user credential cannot be altered twice in the same request".into(),
            ))
        } else {
            apply(&mut next, change)
        };
        results.push((user.to_string(), result));
    }
    (next, results)
}

fn apply(users: &mut Users, change: &Alteration) -> Result<(), CredentialError> {
    let (user, code) = match change {
        Alteration::Delete { user, mechanism } | Alteration::Upsert { user, mechanism, .. } => (user, *mechanism),
    };
    if user.is_empty() {
        return Err(CredentialError::UnacceptableCredential(
            "Username must not be empty".into(),
        ));
    }
    let mechanism = ScramMechanism::from_code(code)
        .ok_or_else(|| CredentialError::UnsupportedSaslMechanism("Unknown SCRAM mechanism".into()))?;
    match change {
        Alteration::Delete { .. } => {
            let creds = users.get_mut(user.as_str());
            if creds.as_ref().is_none_or(|c| !c.contains_key(&mechanism)) {
                return Err(CredentialError::ResourceNotFound(
                    "Attempt to delete a user credential that does not exist".into(),
                ));
            }
            if let Some(creds) = creds {
                creds.remove(&mechanism);
                if creds.is_empty() {
                    users.remove(user.as_str());
                }
            }
        }
        Alteration::Upsert {
            iterations,
            salt,
            salted_password,
            ..
        } => {
            if *iterations < MIN_ITERATIONS {
                return Err(CredentialError::UnacceptableCredential("Too few iterations".into()));
            }
            if *iterations > MAX_ITERATIONS {
                return Err(CredentialError::UnacceptableCredential("Too many iterations".into()));
            }
            if salt.is_empty() || salt.len() > MAX_SALT {
                return Err(CredentialError::UnacceptableCredential(format!(
                    "the salt must have 1 to {MAX_SALT} bytes"
                )));
            }
            if salted_password.len() != mechanism.digest().output_len() {
                return Err(CredentialError::UnacceptableCredential(format!(
                    "a {} salted password has {} bytes",
                    mechanism.name(),
                    mechanism.digest().output_len()
                )));
            }
            let credential = mechanism.credential(salted_password, salt.clone(), *iterations);
            users.entry(user.clone()).or_default().insert(mechanism, credential);
        }
    }
    Ok(())
}

/// The store's file: `{"version":1,"users":{"alice":{"SCRAM-SHA-256":{"salt":…,
/// "stored_key":…,"server_key":…,"iterations":4096}}}}`, byte strings in base64.
fn encode(users: &Users) -> Vec<u8> {
    let users: serde_json::Map<String, serde_json::Value> = users
        .iter()
        .map(|(user, creds)| {
            let creds: serde_json::Map<String, serde_json::Value> = creds
                .iter()
                .map(|(m, c)| {
                    (
                        m.name().to_string(),
                        serde_json::json!({
                            "salt": B64.encode(&c.salt),
                            "stored_key": B64.encode(&c.stored_key),
                            "server_key": B64.encode(&c.server_key),
                            "iterations": c.iterations,
                        }),
                    )
                })
                .collect();
            (user.clone(), creds.into())
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"version": 1, "users": users})).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Result<Users, String> {
    let doc: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if doc.get("version").and_then(|v| v.as_i64()) != Some(1) {
        return Err("unknown version (this strom reads version 1)".into());
    }
    let mut users = Users::new();
    let Some(map) = doc.get("users").and_then(|u| u.as_object()) else {
        return Err("no users".into());
    };
    for (user, creds) in map {
        let creds = creds.as_object().ok_or("a user's credentials are not an object")?;
        for (mechanism, c) in creds {
            let m = ScramMechanism::from_name(mechanism).ok_or_else(|| format!("unknown mechanism {mechanism}"))?;
            let bytes = |field: &str| -> Result<Vec<u8>, String> {
                let text = c.get(field).and_then(|v| v.as_str()).ok_or(format!("no {field}"))?;
                B64.decode(text).map_err(|e| format!("{field}: {e}"))
            };
            let iterations = c
                .get("iterations")
                .and_then(|v| v.as_i64())
                .filter(|i| (MIN_ITERATIONS as i64..=MAX_ITERATIONS as i64).contains(i))
                .ok_or(format!(
                    "{user}: iterations missing or outside {MIN_ITERATIONS}..={MAX_ITERATIONS}"
                ))? as i32;
            let credential = ScramCredential {
                salt: bytes("salt")?,
                stored_key: bytes("stored_key")?,
                server_key: bytes("server_key")?,
                iterations,
            };
            let len = m.digest().output_len();
            if credential.salt.is_empty() || credential.stored_key.len() != len || credential.server_key.len() != len {
                return Err(format!("{user}: a {} credential with keys of the wrong size", m.name()));
            }
            users.entry(user.clone()).or_default().insert(m, credential);
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alterations_follow_kafkas_rules() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path()).unwrap();
        let up = |user: &str, mechanism: i8, iterations: i32| Alteration::Upsert {
            user: user.into(),
            mechanism,
            iterations,
            salt: vec![1; 8],
            salted_password: vec![2; 32],
        };
        let r = store
            .alter(vec![
                up("a", 1, 4096),
                up("b", 1, 100),
                up("c", 1, 20000),
                up("d", 9, 4096),
                up("", 1, 4096),
                up("e", 1, 4096),
                Alteration::Delete {
                    user: "e".into(),
                    mechanism: 2,
                },
                Alteration::Delete {
                    user: "f".into(),
                    mechanism: 1,
                },
            ])
            .unwrap();
        let errs: Vec<_> = r.iter().map(|(u, r)| (u.as_str(), r.clone().err())).collect();
        assert_eq!(errs[0], ("a", None));
        assert!(matches!(errs[1].1, Some(CredentialError::UnacceptableCredential(ref m)) if m == "Too few iterations"));
        assert!(
            matches!(errs[2].1, Some(CredentialError::UnacceptableCredential(ref m)) if m == "Too many iterations")
        );
        assert!(matches!(errs[3].1, Some(CredentialError::UnsupportedSaslMechanism(_))));
        assert!(matches!(errs[4].1, Some(CredentialError::UnacceptableCredential(_))));
        assert!(matches!(errs[5].1, Some(CredentialError::DuplicateResource(_))));
        assert!(matches!(errs[6].1, Some(CredentialError::ResourceNotFound(_))));
        assert_eq!(r.len(), 7);
        let d = store.describe(Some(&["a".into(), "a".into(), "zz".into()]));
        assert_eq!(d[0].1, Ok(vec![(ScramMechanism::Sha256, 4096)]));
        assert!(matches!(d[1].1, Err(CredentialError::DuplicateResource(_))));
        assert!(matches!(d[2].1, Err(CredentialError::ResourceNotFound(_))));
        assert_eq!(store.describe(None).len(), 1);
    }
}
