//! Logging in on a SASL listener, as Kafka's `SaslServerAuthenticator` does it.
//!
//! A connection starts unauthenticated and may send only ApiVersions and
//! SaslHandshake (the mechanism), then the mechanism's tokens until it is
//! satisfied: in SaslAuthenticate requests after a v1 handshake, as bare
//! size-prefixed frames after a v0 one. Any other request before
//! that closes the connection without an answer (Kafka's "Unexpected Kafka
//! request of type X during SASL handshake"). A failed login is answered with
//! SASL_AUTHENTICATION_FAILED and its message, and the connection is closed,
//! both after `connection.failed.authentication.delay.ms`.
//!
//! States (what each accepts → where it goes):
//! - `Handshake`: one ApiVersions (answered); SaslHandshake with an enabled
//!   mechanism → `Authenticating`, with another → UNSUPPORTED_SASL_MECHANISM and close.
//! - `Authenticating`: SaslAuthenticate (handshake v1) or a bare token frame
//!   (handshake v0, the framing older librdkafka and kafka-python use) → a
//!   challenge (stay), success → `Authenticated`, failure → close.
//! - `Authenticated`: everything goes to the handlers (SaslHandshake and
//!   SaslAuthenticate get ILLEGAL_SASL_STATE there). With
//!   `connections.max.reauth.ms` the session ends after that long (KIP-368): the
//!   client re-authenticates with a new SaslHandshake (same mechanism, same
//!   principal) before then, or its next request closes the connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use crate::config::security::SaslSettings;
use crate::protocol::codec;
use crate::protocol::header::Request;
use crate::protocol::response::{ResponseFrame, Splices};
use crate::security::credentials::CredentialStore;
use crate::security::{Principal, SaslContext, SaslServer, Step};

/// Re-authentication may start at most this often (Kafka's one second).
const MIN_REAUTH_INTERVAL: Duration = Duration::from_secs(1);

/// A SASL listener's settings, ready for connections.
pub struct SaslListener {
    mechanisms: Vec<String>,
    context: Arc<SaslContext>,
    max_reauth: Option<Duration>,
}

impl SaslListener {
    pub fn new(settings: &SaslSettings) -> SaslListener {
        if settings.mechanisms.iter().any(|m| m == "OAUTHBEARER") && settings.oauth.jwks_file.is_none() {
            tracing::warn!("OAUTHBEARER accepts unsecured (unsigned) tokens, as Kafka's default validator does: for development only; set sasl.oauthbearer.jwks.endpoint.url to check signatures");
        }
        SaslListener {
            mechanisms: settings.mechanisms.clone(),
            context: Arc::new(SaslContext {
                plain_users: settings.plain_users.clone(),
                oauth: settings.oauth.clone(),
                jwks: Default::default(),
            }),
            max_reauth: (settings.max_reauth_ms > 0).then(|| Duration::from_millis(settings.max_reauth_ms)),
        }
    }

    /// When a session that logged in now ends (KIP-368): after
    /// connections.max.reauth.ms, or when its credential expires if sooner.
    fn session_lifetime(&self, credential_expiry_ms: Option<i64>) -> Option<Duration> {
        let until_expiry =
            credential_expiry_ms.map(|exp| Duration::from_millis((exp - crate::util::clock::now_ms()).max(0) as u64));
        match (self.max_reauth, until_expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Where a connection is with logging in.
pub enum Login {
    /// Logged in (or on a listener without SASL). `session_end` with KIP-368.
    Authenticated {
        principal: Arc<Principal>,
        mechanism: Option<String>,
        session_end: Option<Instant>,
        started: Instant,
    },
    /// Waiting for SaslHandshake; ApiVersions is answered once before it.
    Handshake { versions_answered: bool },
    Authenticating {
        server: SaslServer,
        mechanism: String,
        /// SaslHandshake v0: tokens come as bare frames, not SaslAuthenticate.
        raw: bool,
        /// The principal logged in before, when this is a re-authentication.
        before: Option<Arc<Principal>>,
    },
}

/// What the connection does with a request, as far as logging in goes.
pub enum Gate {
    /// Hand it to the handlers.
    Dispatch(Request),
    /// Send this answer and go on.
    Answer(ResponseFrame),
    /// Send this answer after the failed-login delay, then close.
    Refuse(ResponseFrame),
    /// Close at once, without an answer.
    Close(String),
}

impl Login {
    /// The state a new connection starts in: logged in as `principal`, or on a
    /// SASL listener waiting for the handshake.
    pub fn start(sasl: Option<&SaslListener>, principal: Principal) -> Login {
        match sasl {
            Some(_) => Login::Handshake {
                versions_answered: false,
            },
            None => Login::Authenticated {
                principal: Arc::new(principal),
                mechanism: None,
                session_end: None,
                started: Instant::now(),
            },
        }
    }

    pub fn principal(&self) -> Option<&Arc<Principal>> {
        match self {
            Login::Authenticated { principal, .. } => Some(principal),
            _ => None,
        }
    }

    /// Decide what becomes of `request`.
    pub fn gate(&mut self, request: Request, sasl: Option<&SaslListener>, credentials: &CredentialStore) -> Gate {
        // No SASL on this listener: SASL requests get ILLEGAL_SASL_STATE from
        // the handlers.
        let Some(sasl) = sasl else {
            return Gate::Dispatch(request);
        };
        let api = request.api_key;
        match self {
            Login::Authenticated {
                session_end,
                mechanism,
                started,
                principal,
            } => {
                // A handshake on a logged-in connection re-authenticates only
                // when the session has an end (KIP-368), and not too often.
                if api == ApiKey::SaslHandshake as i16
                    && session_end.is_some()
                    && started.elapsed() >= MIN_REAUTH_INTERVAL
                {
                    let (mechanism, before) = (mechanism.clone(), principal.clone());
                    return self.handshake(request, sasl, mechanism.as_deref(), Some(before));
                }
                if session_end.is_some_and(|end| Instant::now() >= end) {
                    return Gate::Close("the SASL session expired (connections.max.reauth.ms)".into());
                }
                Gate::Dispatch(request)
            }
            Login::Handshake { versions_answered } => {
                // Kafka answers one ApiVersions before the handshake.
                if api == ApiKey::ApiVersions as i16 && !*versions_answered {
                    *versions_answered = true;
                    return Gate::Dispatch(request);
                }
                if api != ApiKey::SaslHandshake as i16 {
                    return Gate::Close(format!(
                        "Unexpected Kafka request of type {} during SASL handshake (is the client configured with security.protocol SASL_*?)",
                        api_name(api)
                    ));
                }
                self.handshake(request, sasl, None, None)
            }
            Login::Authenticating { .. } => {
                if api != ApiKey::SaslAuthenticate as i16 {
                    return Gate::Close(format!(
                        "Unexpected Kafka request of type {} during SASL authentication",
                        api_name(api)
                    ));
                }
                self.authenticate(request, sasl, credentials)
            }
        }
    }

    /// Whether the next frame is a bare SASL token (after SaslHandshake v0).
    pub fn expects_raw_token(&self) -> bool {
        matches!(self, Login::Authenticating { raw: true, .. })
    }

    /// A bare token frame (SaslHandshake v0's framing, which Kafka still
    /// serves): answered with a bare token frame; a failure closes the
    /// connection, as there is no response to carry an error.
    pub fn raw_token(&mut self, token: &[u8], sasl: Option<&SaslListener>, credentials: &CredentialStore) -> Gate {
        let (Login::Authenticating { server, mechanism, .. }, Some(sasl)) = (&mut *self, sasl) else {
            return Gate::Close("a SASL token out of turn".into());
        };
        let (principal, token) = match server.step(token, credentials) {
            Step::Challenge(token) => return Gate::Answer(raw_frame(&token)),
            Step::Failed(message) => return Gate::Close(format!("SASL authentication failed: {message}")),
            Step::Done(principal, token) => (principal, token),
        };
        let lifetime = sasl.session_lifetime(server.credential_expiry_ms());
        let mechanism = mechanism.clone();
        self.logged_in(principal, mechanism, lifetime);
        Gate::Answer(raw_frame(&token))
    }

    fn logged_in(&mut self, principal: Principal, mechanism: String, lifetime: Option<Duration>) {
        tracing::debug!(principal = %principal, mechanism = %mechanism, "SASL login");
        let now = Instant::now();
        *self = Login::Authenticated {
            principal: Arc::new(principal),
            mechanism: Some(mechanism),
            session_end: lifetime.map(|l| now + l),
            started: now,
        };
    }

    fn handshake(
        &mut self,
        request: Request,
        sasl: &SaslListener,
        same_as: Option<&str>,
        before: Option<Arc<Principal>>,
    ) -> Gate {
        let version = request.api_version;
        if !(0..=1).contains(&version) {
            return Gate::Close(format!("SaslHandshake v{version} is not served"));
        }
        let Ok(req) = codec::decode::<SaslHandshakeRequest>(ApiKey::SaslHandshake, version, request.body) else {
            return Gate::Close("malformed SaslHandshake".into());
        };
        let wanted = req.mechanism.to_string();
        let mut response = SaslHandshakeResponse::default();
        response.mechanisms = sasl
            .mechanisms
            .iter()
            .map(|m| StrBytes::from_string(m.clone()))
            .collect();
        let server = sasl
            .mechanisms
            .iter()
            .find(|m| **m == wanted && same_as.is_none_or(|s| s == wanted))
            .and_then(|m| SaslServer::new(m, &sasl.context));
        let Some(server) = server else {
            response.error_code = ResponseError::UnsupportedSaslMechanism.code();
            return encoded(
                ApiKey::SaslHandshake,
                version,
                request.correlation_id,
                &response,
                Gate::Refuse,
            );
        };
        *self = Login::Authenticating {
            server,
            mechanism: wanted,
            raw: version == 0,
            before,
        };
        encoded(
            ApiKey::SaslHandshake,
            version,
            request.correlation_id,
            &response,
            Gate::Answer,
        )
    }

    fn authenticate(&mut self, request: Request, sasl: &SaslListener, credentials: &CredentialStore) -> Gate {
        let (version, correlation_id) = (request.api_version, request.correlation_id);
        if !(0..=2).contains(&version) {
            return Gate::Close(format!("SaslAuthenticate v{version} is not served"));
        }
        let Ok(req) = codec::decode::<SaslAuthenticateRequest>(ApiKey::SaslAuthenticate, version, request.body) else {
            return Gate::Close("malformed SaslAuthenticate".into());
        };
        let Login::Authenticating {
            server,
            mechanism,
            before,
            raw: false,
        } = self
        else {
            return Gate::Close("SaslAuthenticate out of turn".into());
        };
        let mut response = SaslAuthenticateResponse::default();
        let failed = |response: &mut SaslAuthenticateResponse, message: String| {
            response.error_code = ResponseError::SaslAuthenticationFailed.code();
            response.error_message = Some(StrBytes::from_string(message));
            response.auth_bytes = Bytes::new();
        };
        let answer = |response: &SaslAuthenticateResponse, gate: fn(ResponseFrame) -> Gate| {
            encoded(ApiKey::SaslAuthenticate, version, correlation_id, response, gate)
        };
        match server.step(&req.auth_bytes, credentials) {
            Step::Challenge(token) => {
                response.auth_bytes = token.into();
                answer(&response, Gate::Answer)
            }
            Step::Failed(message) => {
                failed(&mut response, message);
                answer(&response, Gate::Refuse)
            }
            Step::Done(principal, token) => {
                if let Some(before) = before.as_ref().filter(|b| ***b != principal) {
                    let message =
                        format!("Cannot change principals during re-authentication from {before}: {principal}");
                    failed(&mut response, message);
                    return answer(&response, Gate::Refuse);
                }
                response.auth_bytes = token.into();
                let lifetime = sasl.session_lifetime(server.credential_expiry_ms());
                if let Some(l) = lifetime {
                    // At least 1 ms: 0 would mean "no re-authentication".
                    response.session_lifetime_ms = (l.as_millis() as i64).max(1);
                }
                let mechanism = mechanism.clone();
                self.logged_in(principal, mechanism, lifetime);
                answer(&response, Gate::Answer)
            }
        }
    }
}

/// `message` framed as the answer to a request, wrapped by `gate`; a close if
/// it cannot be encoded.
fn encoded<T: kafka_protocol::protocol::Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    message: &T,
    gate: fn(ResponseFrame) -> Gate,
) -> Gate {
    match codec::encode(api, version, correlation_id, message, Splices::default()) {
        Ok(frame) => gate(frame),
        Err(e) => Gate::Close(e.to_string()),
    }
}

/// A bare SASL token as SaslHandshake v0 clients read it: size, then bytes.
fn raw_frame(token: &[u8]) -> ResponseFrame {
    let mut out = bytes::BytesMut::with_capacity(4 + token.len());
    bytes::BufMut::put_i32(&mut out, token.len() as i32);
    out.extend_from_slice(token);
    out.freeze().into()
}

fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|_| format!("api key {key}"), |k| format!("{k:?}").to_uppercase())
}
