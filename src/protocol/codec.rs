//! Typed request bodies from bytes, and response frames from typed responses.
//! Everything kafka-protocol's codec does for strom goes through here.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable};

use super::header::encode_response_header;
use super::response::{ResponseFrame, SpliceBuf, Splices};

/// A request body that does not decode, or (a broker bug) a response that does not
/// encode: the connection is closed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} {api:?} v{version}: {reason}")]
pub struct CodecError {
    what: &'static str,
    api: ApiKey,
    version: i16,
    reason: String,
}

impl CodecError {
    /// A request of an old version that does not parse ([`super::legacy`]).
    pub fn malformed(api: ApiKey, version: i16) -> CodecError {
        CodecError {
            what: "decode",
            api,
            version,
            reason: "malformed request".into(),
        }
    }
}

/// Decode a request body of `api` at `version`.
pub fn decode<R: Decodable>(api: ApiKey, version: i16, mut body: Bytes) -> Result<R, CodecError> {
    R::decode(&mut body, version).map_err(|e| CodecError {
        what: "decode",
        api,
        version,
        reason: e.to_string(),
    })
}

/// Frame a response: size, header, body. Record fields of `response` may be
/// stand-ins for the file ranges in `splices` (see [`super::response`]).
pub fn encode<R: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &R,
    splices: Splices,
) -> Result<ResponseFrame, CodecError> {
    let mut out = SpliceBuf::new(splices, 256);
    out.put_i32(0);
    encode_response_header(&mut out, correlation_id, api.response_header_version(version));
    response.encode(&mut out, version).map_err(|e| {
        tracing::error!(api = ?api, version, error = %e, "response does not encode");
        CodecError {
            what: "encode the response of",
            api,
            version,
            reason: e.to_string(),
        }
    })?;
    out.finish().ok_or_else(|| {
        tracing::error!(api = ?api, version, "response larger than a frame can be");
        CodecError {
            what: "frame the response of",
            api,
            version,
            reason: "larger than 2 GiB".into(),
        }
    })
}

/// Frame a response to a request of an old `version` ([`super::legacy`]):
/// encoded at `bridge`, the oldest version the codec knows, and rewritten down.
/// Old versions carry no file ranges: their records were converted in memory.
pub fn encode_downgraded<R: Encodable>(
    api: ApiKey,
    bridge: i16,
    version: i16,
    correlation_id: i32,
    response: &R,
    splices: Splices,
) -> Result<ResponseFrame, CodecError> {
    let bug = |reason: &str| {
        tracing::error!(api = ?api, version, reason, "response does not encode");
        CodecError {
            what: "encode the response of",
            api,
            version,
            reason: reason.into(),
        }
    };
    if !splices.is_empty() {
        return Err(bug("file ranges in a response to an old version"));
    }
    let mut body = BytesMut::with_capacity(256);
    response.encode(&mut body, bridge).map_err(|e| bug(&e.to_string()))?;
    let body = super::legacy::downgrade_response(api, version, &body).ok_or_else(|| bug("rewrite failed"))?;
    let size = i32::try_from(4 + body.len()).map_err(|_| bug("larger than 2 GiB"))?;
    let mut out = BytesMut::with_capacity(8 + body.len());
    out.put_i32(size);
    // Every old version has the v0 response header: the correlation id alone.
    out.put_i32(correlation_id);
    out.put_slice(&body);
    Ok(out.freeze().into())
}

/// The answer to a request this broker does not serve: the correlation id and
/// UNSUPPORTED_VERSION (35) as the first field, which is where most responses
/// carry their error code. Clients that read ApiVersions first never see it.
pub fn unsupported(correlation_id: i32) -> ResponseFrame {
    let mut out = BytesMut::with_capacity(10);
    out.put_i32(6);
    out.put_i32(correlation_id);
    out.put_i16(kafka_protocol::error::ResponseError::UnsupportedVersion.code());
    out.freeze().into()
}
