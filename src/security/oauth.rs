//! SASL/OAUTHBEARER (RFC 7628) as Kafka's broker validates it:
//!
//! - **unsecured tokens** (Kafka's default validator, for development): the JWT's
//!   header says `"alg":"none"` and its signature is empty; `exp` is required,
//!   `iat` (if present) must not be after it, the principal claim (`sub` unless
//!   `unsecuredValidatorPrincipalClaimName`) must be a non-blank string, and every
//!   scope in `unsecuredValidatorRequiredScope` must be in the scope claim;
//! - **signed tokens** (`sasl.oauthbearer.jwks.endpoint.url=file://…`): the
//!   signature is checked against the JWKS file's key with the token's `kid`
//!   (RS256/384/512, ES256/384), then `exp`/`nbf`/`iat` within
//!   `sasl.oauthbearer.clock.skew.seconds`, `iss` and `aud` against the expected
//!   ones, and the principal from `sasl.oauthbearer.sub.claim.name`.
//!
//! The client's first message is `n,[a=authzid],` then `\x01`-separated
//! `key=value` pairs with `auth=Bearer <token>`, ending in `\x01\x01`. A token that
//! fails is answered, as Kafka does, with a challenge `{"status":"invalid_token"}`;
//! the client's reply (a single `\x01`) then gets SASL_AUTHENTICATION_FAILED.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use ring::signature;

use super::principal::Principal;
use super::Step;
pub use crate::config::security::OAuthSettings;

/// A token's claims, once accepted.
#[derive(Debug)]
pub struct Token {
    pub principal: String,
    pub expires_ms: i64,
}

/// The JWKS file's keys, read again when the file changes.
#[derive(Default)]
pub struct Jwks {
    cached: Mutex<Option<(Option<SystemTime>, serde_json::Value)>>,
}

impl Jwks {
    fn keys(&self, path: &PathBuf) -> Result<serde_json::Value, String> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((when, keys)) = cached.as_ref() {
            if *when == modified {
                return Ok(keys.clone());
            }
        }
        let text = std::fs::read(path).map_err(|e| format!("cannot read the JWKS file {}: {e}", path.display()))?;
        let keys: serde_json::Value = serde_json::from_slice(&text).map_err(|e| format!("JWKS file: {e}"))?;
        *cached = Some((modified, keys.clone()));
        Ok(keys)
    }
}

fn invalid(reason: impl Into<String>) -> String {
    reason.into()
}

/// Check a token; the reason it fails otherwise (logged, not sent).
pub fn validate(token: &str, settings: &OAuthSettings, jwks: &Jwks, now_ms: i64) -> Result<Token, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, sig] = parts[..] else {
        return Err(invalid("a JWT has three dot-separated parts"));
    };
    let decode = |part: &str, what: &str| -> Result<serde_json::Value, String> {
        let bytes = B64URL
            .decode(part.trim_end_matches('='))
            .map_err(|_| format!("the {what} is not base64url"))?;
        serde_json::from_slice(&bytes).map_err(|_| format!("the {what} is not JSON"))
    };
    let header = decode(header, "header")?;
    let claims = decode(payload, "payload")?;
    let alg = header.get("alg").and_then(|a| a.as_str()).unwrap_or("");
    let skew = settings.clock_skew_ms;
    match &settings.jwks_file {
        None => {
            if alg != "none" || !sig.is_empty() {
                return Err(invalid("unsecured tokens only: alg none and no signature"));
            }
        }
        Some(path) => {
            let keys = jwks.keys(path)?;
            let kid = header.get("kid").and_then(|k| k.as_str());
            let key = keys
                .get("keys")
                .and_then(|k| k.as_array())
                .and_then(|keys| {
                    keys.iter()
                        .find(|k| kid.is_none() || k.get("kid").and_then(|v| v.as_str()) == kid)
                })
                .ok_or_else(|| invalid(format!("no key {kid:?} in the JWKS file")))?;
            let signature = B64URL
                .decode(sig.trim_end_matches('='))
                .map_err(|_| invalid("the signature is not base64url"))?;
            let signed = &token[..token.len() - sig.len() - 1];
            verify(alg, key, signed.as_bytes(), &signature)?;
        }
    }
    let number = |name: &str| claims.get(name).and_then(|v| v.as_f64()).map(|s| (s * 1000.0) as i64);
    let exp = number("exp").ok_or_else(|| invalid("no exp claim"))?;
    if now_ms >= exp + skew {
        return Err(invalid("the token has expired"));
    }
    if let Some(iat) = number("iat") {
        if iat > exp {
            return Err(invalid("iat is after exp"));
        }
        if settings.jwks_file.is_some() && iat > now_ms + skew {
            return Err(invalid("the token is issued in the future"));
        }
    }
    if settings.jwks_file.is_some() {
        if let Some(nbf) = number("nbf") {
            if now_ms + skew < nbf {
                return Err(invalid("the token is not valid yet (nbf)"));
            }
        }
    }
    if let Some(issuer) = &settings.expected_issuer {
        if claims.get("iss").and_then(|v| v.as_str()) != Some(issuer.as_str()) {
            return Err(invalid("unexpected issuer"));
        }
    }
    if !settings.expected_audience.is_empty() {
        let aud: Vec<&str> = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => vec![a.as_str()],
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        };
        if !aud.iter().any(|a| settings.expected_audience.iter().any(|e| e == a)) {
            return Err(invalid("unexpected audience"));
        }
    }
    let principal = claims
        .get(&settings.principal_claim)
        .and_then(|v| v.as_str())
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| invalid(format!("no {} claim", settings.principal_claim)))?;
    if !settings.required_scope.is_empty() {
        let scope: Vec<String> = match claims.get(&settings.scope_claim) {
            Some(serde_json::Value::String(s)) => s.split_whitespace().map(String::from).collect(),
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
            _ => Vec::new(),
        };
        if let Some(missing) = settings.required_scope.iter().find(|r| !scope.contains(r)) {
            return Err(format!("insufficient_scope: {missing}"));
        }
    }
    Ok(Token {
        principal: principal.to_string(),
        expires_ms: exp,
    })
}

/// Check a JWS signature with a JWK.
fn verify(alg: &str, key: &serde_json::Value, message: &[u8], sig: &[u8]) -> Result<(), String> {
    let field = |name: &str| -> Result<Vec<u8>, String> {
        let text = key
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or(format!("the key has no {name}"))?;
        B64URL
            .decode(text.trim_end_matches('='))
            .map_err(|_| format!("the key's {name} is not base64url"))
    };
    let kty = key.get("kty").and_then(|v| v.as_str()).unwrap_or("");
    let bad = || invalid("the signature does not verify");
    match (alg, kty) {
        ("RS256" | "RS384" | "RS512", "RSA") => {
            let params = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                _ => &signature::RSA_PKCS1_2048_8192_SHA512,
            };
            let public = signature::RsaPublicKeyComponents {
                n: field("n")?,
                e: field("e")?,
            };
            public.verify(params, message, sig).map_err(|_| bad())
        }
        ("ES256" | "ES384", "EC") => {
            let params = match alg {
                "ES256" => &signature::ECDSA_P256_SHA256_FIXED,
                _ => &signature::ECDSA_P384_SHA384_FIXED,
            };
            let mut point = vec![4u8];
            point.extend(field("x")?);
            point.extend(field("y")?);
            signature::UnparsedPublicKey::new(params, point)
                .verify(message, sig)
                .map_err(|_| bad())
        }
        _ => Err(format!("algorithm {alg} with a {kty} key is not supported")),
    }
}

/// Where an OAUTHBEARER exchange is.
enum State {
    First,
    /// The token failed: the client's `\x01` gets the failure.
    Refused(String),
    Done,
}

/// The server side of one OAUTHBEARER exchange.
pub struct OAuthServer {
    state: State,
    /// The token's expiry once accepted (KIP-368 session lifetime).
    pub expires_ms: Option<i64>,
}

impl OAuthServer {
    pub fn new() -> OAuthServer {
        OAuthServer {
            state: State::First,
            expires_ms: None,
        }
    }

    pub fn step(&mut self, message: &[u8], settings: &OAuthSettings, jwks: &Jwks, now_ms: i64) -> Step {
        let generic = || {
            Step::Failed(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER"
                    .into(),
            )
        };
        match std::mem::replace(&mut self.state, State::Done) {
            State::Refused(status) => Step::Failed(status),
            State::Done => generic(),
            State::First => {
                let Some((authzid, token)) = client_first(message) else {
                    return generic();
                };
                match validate(&token, settings, jwks, now_ms) {
                    Ok(t) => {
                        if authzid.as_ref().is_some_and(|a| *a != t.principal) {
                            return Step::Failed(format!(
                                "Authentication failed: Client requested an authorization id ({}) that is different from the token's principal name ({})",
                                authzid.unwrap_or_default(),
                                t.principal
                            ));
                        }
                        self.expires_ms = Some(t.expires_ms);
                        Step::Done(Principal::user(t.principal), Vec::new())
                    }
                    Err(reason) => {
                        tracing::info!(reason = %reason, "OAUTHBEARER token refused");
                        let status = if reason.starts_with("insufficient_scope") {
                            "insufficient_scope"
                        } else {
                            "invalid_token"
                        };
                        let json = format!("{{\"status\":\"{status}\"}}");
                        self.state = State::Refused(json.clone());
                        Step::Challenge(json.into_bytes())
                    }
                }
            }
        }
    }
}

impl Default for OAuthServer {
    fn default() -> Self {
        OAuthServer::new()
    }
}

/// The authzid and bearer token of a client's first message.
fn client_first(message: &[u8]) -> Option<(Option<String>, String)> {
    let text = std::str::from_utf8(message).ok()?;
    let (gs2, rest) = text.split_once('\x01')?;
    let mut gs2 = gs2.split(',');
    if gs2.next()? != "n" {
        return None;
    }
    let authzid = gs2
        .next()
        .and_then(|a| a.strip_prefix("a="))
        .filter(|a| !a.is_empty())
        .map(String::from);
    let rest = rest.strip_suffix("\x01\x01")?;
    let mut token = None;
    for pair in rest.split('\x01') {
        let (key, value) = pair.split_once('=')?;
        if key == "auth" {
            let (scheme, t) = value.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return None;
            }
            let t = t.trim();
            if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return None;
            }
            token = Some(t.to_string());
        } else if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphabetic()) {
            return None;
        }
    }
    Some((authzid, token?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsecured(claims: &str) -> String {
        format!("{}.{}.", B64URL.encode(r#"{"alg":"none"}"#), B64URL.encode(claims))
    }

    fn settings() -> OAuthSettings {
        OAuthSettings {
            principal_claim: "sub".into(),
            scope_claim: "scope".into(),
            ..OAuthSettings::default()
        }
    }

    fn first(token: &str) -> Vec<u8> {
        format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
    }

    #[test]
    fn unsecured_tokens_are_checked_as_kafkas_default_validator_does() {
        let now = 1_700_000_000_000;
        let jwks = Jwks::default();
        let ok = unsecured(r#"{"sub":"alice","exp":1700000100,"iat":1699999990,"scope":"a b"}"#);
        let t = validate(&ok, &settings(), &jwks, now).unwrap();
        assert_eq!((t.principal.as_str(), t.expires_ms), ("alice", 1_700_000_100_000));
        let expired = unsecured(r#"{"sub":"alice","exp":1699999999}"#);
        assert!(validate(&expired, &settings(), &jwks, now)
            .unwrap_err()
            .contains("expired"));
        assert!(validate(&unsecured(r#"{"sub":"alice"}"#), &settings(), &jwks, now).is_err());
        assert!(validate(&unsecured(r#"{"sub":" ","exp":1700000100}"#), &settings(), &jwks, now).is_err());
        let signed_looking = format!("{}x", ok);
        assert!(validate(&signed_looking, &settings(), &jwks, now).is_err());
        let scoped = OAuthSettings {
            required_scope: vec!["c".into()],
            ..settings()
        };
        assert!(validate(&ok, &scoped, &jwks, now)
            .unwrap_err()
            .starts_with("insufficient_scope"));

        // The exchange: accepted, or a challenge then the failure.
        let mut server = OAuthServer::new();
        assert_eq!(
            server.step(&first(&ok), &settings(), &jwks, now),
            Step::Done(Principal::user("alice"), vec![])
        );
        assert_eq!(server.expires_ms, Some(1_700_000_100_000));
        let mut server = OAuthServer::new();
        let Step::Challenge(json) = server.step(&first(&expired), &settings(), &jwks, now) else {
            panic!("a challenge first")
        };
        assert_eq!(json, br#"{"status":"invalid_token"}"#);
        assert_eq!(
            server.step(b"\x01", &settings(), &jwks, now),
            Step::Failed(r#"{"status":"invalid_token"}"#.into())
        );
        // A different authzid, and malformed messages.
        let with_authzid = format!("n,a=bob,\x01auth=Bearer {ok}\x01\x01");
        assert!(
            matches!(OAuthServer::new().step(with_authzid.as_bytes(), &settings(), &jwks, now), Step::Failed(m) if m.contains("authorization id"))
        );
        for bad in [
            &b"garbage"[..],
            b"n,,\x01auth=Basic x\x01\x01",
            b"n,,\x01auth=Bearer a b\x01\x01",
            b"n,,\x01\x01",
        ] {
            assert!(matches!(
                OAuthServer::new().step(bad, &settings(), &jwks, now),
                Step::Failed(_)
            ));
        }
    }
}
