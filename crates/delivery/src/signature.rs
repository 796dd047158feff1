//! Standard Webhooks signing (<https://www.standardwebhooks.com>).
//!
//! Each application has a secret, written `whsec_` + base64(key bytes). Every
//! request carries `webhook-id` (the message id, stable across retries so the
//! receiver can deduplicate), `webhook-timestamp` (unix seconds) and
//! `webhook-signature`: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of a written secret.
const PREFIX: &str = "whsec_";
/// Signature version tag of HMAC-SHA256 signatures.
const VERSION: &str = "v1";
/// Key length recommended by the specification (24 to 64 bytes).
const MIN_KEY_LEN: usize = 24;
/// SHA-256 block size: the longest key HMAC uses without hashing it first.
const MAX_KEY_LEN: usize = 64;
/// Length of the keys made by [`WebhookSecret::generate`].
const GENERATED_KEY_LEN: usize = 32;

/// Header carrying the message id.
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the unix timestamp (seconds) of the attempt.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// Why a written secret was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The secret does not start with `whsec_`.
    #[error("webhook secret must start with \"whsec_\"")]
    MissingPrefix,
    /// The part after `whsec_` is not standard base64.
    #[error("webhook secret is not valid base64")]
    InvalidBase64,
    /// The key is shorter than 24 or longer than 64 bytes.
    #[error("webhook secret key must be 24 to 64 bytes long, got {0}")]
    InvalidLength(usize),
}

/// The signing key of one application.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
    /// HMAC keyed once, cloned for each signature.
    mac: HmacSha256,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl WebhookSecret {
    /// A new secret of 32 random bytes (from the OS-seeded thread RNG).
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_KEY_LEN];
        rand::thread_rng().fill_bytes(&mut key);
        Self::from_valid_key(key)
    }

    /// Parses `whsec_<base64>`; the key must be 24 to 64 bytes long.
    pub fn parse(s: &str) -> Result<Self, SignatureError> {
        let encoded = s.trim().strip_prefix(PREFIX).ok_or(SignatureError::MissingPrefix)?;
        let key = BASE64.decode(encoded).map_err(|_| SignatureError::InvalidBase64)?;
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len()) {
            return Err(SignatureError::InvalidLength(key.len()));
        }
        Ok(Self::from_valid_key(key))
    }

    /// The secret written as `whsec_<base64>`, as shown to the application.
    pub fn to_whsec(&self) -> String {
        format!("{PREFIX}{}", BASE64.encode(&self.key))
    }

    /// The `webhook-signature` value for this message: `v1,<base64>`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.tag(msg_id, timestamp, body).finalize().into_bytes();
        format!("{VERSION},{}", BASE64.encode(tag))
    }

    /// True when any `v1` signature of the space-separated `signature_header`
    /// matches; the comparison is constant-time.
    pub fn verify(&self, msg_id: &str, timestamp: i64, body: &[u8], signature_header: &str) -> bool {
        signature_header
            .split_whitespace()
            .filter_map(|sig| sig.split_once(','))
            .filter(|(version, _)| *version == VERSION)
            .filter_map(|(_, encoded)| BASE64.decode(encoded).ok())
            .any(|expected| self.tag(msg_id, timestamp, body).verify_slice(&expected).is_ok())
    }

    /// The HMAC fed with the signed content, not yet finalized.
    fn tag(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// Builds the secret from a key of at most [`MAX_KEY_LEN`] bytes.
    fn from_valid_key(key: Vec<u8>) -> Self {
        // HMAC zero-pads keys up to the block size, so keying with the padded
        // block is the same HMAC, and the fixed-size constructor cannot fail
        // (unlike `new_from_slice`, whose error would need an unwrap).
        let mut block = [0u8; MAX_KEY_LEN];
        block.iter_mut().zip(&key).for_each(|(b, k)| *b = *k);
        let mac = <HmacSha256 as Mac>::new(&block.into());
        Self { key, mac }
    }
}

/// A new message id: `msg_` + a UUID v7 in simple form, so ids sort by creation time.
pub fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use super::*;
    use standardwebhooks::Webhook;

    const SPEC_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const MSG_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    fn now() -> i64 {
        jiff::Timestamp::now().as_second()
    }

    fn headers(msg_id: &str, timestamp: i64, signature: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(HEADER_ID, msg_id.parse().unwrap());
        h.insert(HEADER_TIMESTAMP, timestamp.to_string().parse().unwrap());
        h.insert(HEADER_SIGNATURE, signature.parse().unwrap());
        h
    }

    #[test]
    fn known_vector_from_the_reference_library() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        assert_eq!(secret.sign(MSG_ID, 1649367553, BODY), "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn our_signature_verifies_with_standardwebhooks() {
        let secret = WebhookSecret::generate();
        let ts = now();
        let sig = secret.sign(MSG_ID, ts, BODY);
        let theirs = Webhook::new(&secret.to_whsec()).unwrap();
        theirs.verify(BODY, &headers(MSG_ID, ts, &sig)).unwrap();
        let tampered = br#"{"email":"evil@example.com","username":"test_user"}"#;
        assert!(theirs.verify(tampered, &headers(MSG_ID, ts, &sig)).is_err());
    }

    #[test]
    fn their_signature_verifies_with_ours() {
        let secret = WebhookSecret::generate();
        let ts = now();
        let sig = Webhook::new(&secret.to_whsec()).unwrap().sign(MSG_ID, ts, BODY).unwrap();
        assert!(secret.verify(MSG_ID, ts, BODY, &sig));
    }

    #[test]
    fn tampering_or_wrong_secret_fails() {
        let secret = WebhookSecret::generate();
        let ts = now();
        let sig = secret.sign(MSG_ID, ts, BODY);
        assert!(!secret.verify(MSG_ID, ts, b"{}", &sig));
        assert!(!secret.verify("msg_other", ts, BODY, &sig));
        assert!(!secret.verify(MSG_ID, ts + 1, BODY, &sig));
        assert!(!WebhookSecret::generate().verify(MSG_ID, ts, BODY, &sig));
        assert!(!secret.verify(MSG_ID, ts, BODY, ""));
        assert!(!secret.verify(MSG_ID, ts, BODY, &sig.replace("v1,", "v2,")));
        assert!(!secret.verify(MSG_ID, ts, BODY, "v1,"));
        assert!(!secret.verify(MSG_ID, ts, BODY, &sig[..10]));
    }

    #[test]
    fn any_of_several_signatures_matches() {
        let secret = WebhookSecret::generate();
        let ts = now();
        let old = WebhookSecret::generate().sign(MSG_ID, ts, BODY);
        let header = format!("v1a,abc {old} not-a-sig {}", secret.sign(MSG_ID, ts, BODY));
        assert!(secret.verify(MSG_ID, ts, BODY, &header));
    }

    #[test]
    fn whsec_round_trip_and_errors() {
        let secret = WebhookSecret::generate();
        let written = secret.to_whsec();
        assert!(written.starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&written).unwrap().to_whsec(), written);
        assert_ne!(WebhookSecret::generate().to_whsec(), written);
        assert_eq!(
            WebhookSecret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap_err(),
            SignatureError::MissingPrefix
        );
        assert_eq!(WebhookSecret::parse("whsec_not base64!").unwrap_err(), SignatureError::InvalidBase64);
        assert_eq!(WebhookSecret::parse("whsec_AAAA").unwrap_err(), SignatureError::InvalidLength(3));
        let long = format!("whsec_{}", BASE64.encode([7u8; 65]));
        assert_eq!(WebhookSecret::parse(&long).unwrap_err(), SignatureError::InvalidLength(65));
    }

    #[test]
    fn longest_key_matches_standardwebhooks() {
        let written = format!("whsec_{}", BASE64.encode([0xA5u8; 64]));
        let ours = WebhookSecret::parse(&written).unwrap();
        let theirs = Webhook::new(&written).unwrap();
        assert_eq!(ours.sign(MSG_ID, 42, BODY), theirs.sign(MSG_ID, 42, BODY).unwrap());
    }

    #[test]
    fn debug_hides_the_key() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let shown = format!("{secret:?}");
        assert!(!shown.contains("C2FV"), "{shown}");
        assert!(!shown.contains("11, 97"), "{shown}");
    }

    #[test]
    fn message_ids_are_unique_and_sortable() {
        let ids: Vec<String> = (0..100).map(|_| new_message_id()).collect();
        assert!(ids.iter().all(|id| id.starts_with("msg_") && id.len() == 36));
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids);
    }
}
