//! Identifiers of the platform: organizations (`org-…`), apps (`app-…`),
//! groups (`cld-…`), records (UUIDs) and API keys.
//!
//! Short ids are random base-36, as Connec! printed them; records use UUID v7
//! so that ids created together sit together in indexes.

use rand::Rng;

const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn short_id(prefix: &str, len: usize) -> String {
    let mut rng = rand::thread_rng();
    let tail: String = (0..len).map(|_| BASE36[rng.gen_range(0..BASE36.len())] as char).collect();
    format!("{prefix}-{tail}")
}

/// A new organization id, e.g. `org-f3k9qa`.
pub fn new_org_id() -> String {
    short_id("org", 6)
}

/// A new app api id, e.g. `app-1f2a7c`.
pub fn new_app_id() -> String {
    short_id("app", 6)
}

/// A new group id (one app installed in one organization), e.g. `cld-9pfx2m`.
pub fn new_group_id() -> String {
    short_id("cld", 6)
}

/// A new record id.
pub fn new_record_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// A new API key: 32 random bytes, hex encoded.
pub fn new_api_key() -> String {
    let bytes: [u8; 32] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when `s` is `prefix-` followed by 4 to 32 base-36 characters.
pub fn has_shape(s: &str, prefix: &str) -> bool {
    let Some(tail) = s.strip_prefix(prefix).and_then(|t| t.strip_prefix('-')) else {
        return false;
    };
    (4..=32).contains(&tail.len()) && tail.bytes().all(|b| BASE36.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_their_shape() {
        assert!(has_shape(&new_org_id(), "org"));
        assert!(has_shape(&new_app_id(), "app"));
        assert!(has_shape(&new_group_id(), "cld"));
        assert!(!has_shape("cld-", "cld"));
        assert!(!has_shape("org-ABCD", "org"));
        assert!(!has_shape("app-1234", "cld"));
    }

    #[test]
    fn api_keys_are_random() {
        let (a, b) = (new_api_key(), new_api_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
    }
}
