//! Who is calling and how they want to see records.

use axum::http::HeaderMap;
use serde_json::Value;
use sharehub_model::catalog::{self, EntityDef};
use sharehub_model::view::Viewer;
use sharehub_store::write::Caller;
use sharehub_store::{App, Group};

use crate::error::ApiError;
use crate::extract::{caller_group, wants_external_ids};
use crate::state::AppState;

/// An authenticated app acting in one of its groups.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub app: App,
    pub group: Group,
    pub external_ids: bool,
    /// Scheme and host the client used, for absolute URLs in answers.
    pub base_url: String,
}

impl Ctx {
    pub async fn new(state: &AppState, app: App, group_id: &str, headers: &HeaderMap) -> Result<Self, ApiError> {
        let group = caller_group(state, &app, group_id).await?;
        Ok(Ctx { app, group, external_ids: wants_external_ids(headers), base_url: base_url(state, headers) })
    }

    pub fn viewer(&self) -> Viewer<'_> {
        Viewer { group_id: &self.group.id, external_ids: self.external_ids }
    }

    /// Strips a record rendered in a write answer down to its id and meta
    /// fields when the caller may write the entity but not read it: a write
    /// answers the whole record, which a `matching_fields` merge or a PUT
    /// would otherwise hand out.
    pub fn redact_unreadable(&self, entity: &str, rendered: &mut Value) {
        const KEPT: [&str; 7] =
            ["id", "group_id", "channel_id", "resource_type", "version", "created_at", "updated_at"];
        if self.app.can_read(entity) {
            return;
        }
        if let Value::Object(fields) = rendered {
            fields.retain(|key, _| KEPT.contains(&key.as_str()));
        }
    }

    pub fn caller(&self) -> Caller {
        Caller { app_id: self.app.id.clone(), provider: self.app.provider.clone(), realm: self.group.realm.clone() }
    }

    /// The entity named in a path, readable by the caller.
    pub fn readable(&self, name: &str) -> Result<&'static EntityDef, ApiError> {
        let def = entity_named(name)?;
        if !self.app.can_read(def.name) {
            return Err(ApiError::Forbidden(format!("Your app may not read {}", def.name)));
        }
        Ok(def)
    }

    /// The entity named in a path, writable by the caller.
    pub fn writable(&self, name: &str) -> Result<&'static EntityDef, ApiError> {
        let def = entity_named(name)?;
        if !self.app.can_write(def.name) {
            return Err(ApiError::Forbidden(format!("Your app may not write {}", def.name)));
        }
        Ok(def)
    }
}

/// Looks up an entity by its URL name.
pub fn entity_named(name: &str) -> Result<&'static EntityDef, ApiError> {
    catalog::entity(name).ok_or_else(|| ApiError::UnknownResource(name.to_string()))
}

/// The hub's URL as the client sees it.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let configured = state.config.public_url.trim_end_matches('/');
    if !configured.is_empty() {
        return configured.to_string();
    }
    // Both come from the client: only a plain host[:port] and http or https
    // make it into the links. `public_url` is the setting for production.
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| is_plain_authority(h))
        .unwrap_or("localhost");
    // Behind several proxies the first value is the client's scheme.
    let forwarded = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok());
    let scheme = match forwarded.and_then(|p| p.split(',').next()).map(str::trim) {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// `host` or `host:port`, with no user info, path or other delimiter.
fn is_plain_authority(text: &str) -> bool {
    let parsed = text.parse::<axum::http::uri::Authority>();
    parsed.is_ok_and(|a| !text.contains('@') && a.as_str() == text)
}
