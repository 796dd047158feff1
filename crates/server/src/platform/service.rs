//! Platform operations shared by the admin API and the CLI, with their checks.

use sharehub_model::catalog;
use sharehub_model::FieldError;
use sharehub_store::{App, AppSecrets, AppUpdate, EntityAccess, Group, NewApp, Org, Store};

use crate::error::ApiError;

pub async fn create_org(store: &dyn Store, name: &str) -> Result<Org, ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::Invalid(vec![FieldError::new("name", "must not be empty")]));
    }
    Ok(store.create_org(name.trim()).await?)
}

/// Registers an app; the hub makes its api id, api key and webhook secret.
pub async fn register_app(store: &dyn Store, app: NewApp) -> Result<(App, AppSecrets), ApiError> {
    let mut errors = Vec::new();
    if app.name.trim().is_empty() {
        errors.push(FieldError::new("name", "must not be empty"));
    }
    if !is_slug(&app.provider) || app.provider == "connec" {
        errors.push(FieldError::new("provider", "expected a slug of a-z, 0-9, - and _ (and not \"connec\")"));
    }
    errors.extend(check_url(app.notification_url.as_deref()));
    errors.extend(check_entities(&app.entities));
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let secret = sharehub_delivery::signature::WebhookSecret::generate().to_whsec();
    store.create_app(app, secret).await.map_err(|e| match e {
        // The one refusal of a checked app: its provider is taken.
        sharehub_store::StoreError::Invalid(why) => ApiError::Conflict(why),
        other => other.into(),
    })
}

pub async fn update_app(store: &dyn Store, app_id: &str, update: AppUpdate) -> Result<App, ApiError> {
    let mut errors = Vec::new();
    if update.name.as_deref().is_some_and(|name| name.trim().is_empty()) {
        errors.push(FieldError::new("name", "must not be empty"));
    }
    if let Some(Some(url)) = &update.notification_url {
        errors.extend(check_url(Some(url)));
    }
    if let Some(entities) = &update.entities {
        errors.extend(check_entities(entities));
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    store.update_app(app_id, update).await?.ok_or_else(|| no_app(app_id))
}

pub async fn rotate_api_key(store: &dyn Store, app_id: &str) -> Result<String, ApiError> {
    store.rotate_api_key(app_id).await?.ok_or_else(|| no_app(app_id))
}

pub async fn rotate_webhook_secret(store: &dyn Store, app_id: &str) -> Result<String, ApiError> {
    let secret = sharehub_delivery::signature::WebhookSecret::generate().to_whsec();
    if store.set_webhook_secret(app_id, secret.clone()).await? {
        Ok(secret)
    } else {
        Err(no_app(app_id))
    }
}

/// Installs an app in an organization; answers the group (its `group_id`).
pub async fn install(store: &dyn Store, app_id: &str, org_id: &str, realm: Option<&str>) -> Result<Group, ApiError> {
    if realm.is_some_and(|r| r.trim().is_empty()) {
        return Err(ApiError::Invalid(vec![FieldError::new("realm", "must not be empty")]));
    }
    // A realm is indexed with every external id of the app (see MAX_EXTERNAL_ID_CHARS).
    if realm.is_some_and(|r| r.chars().count() > MAX_REALM_CHARS) {
        let why = format!("must be at most {MAX_REALM_CHARS} characters");
        return Err(ApiError::Invalid(vec![FieldError::new("realm", why)]));
    }
    let group = store.install(app_id, org_id, realm).await.map_err(|e| match e {
        sharehub_store::StoreError::Invalid(why) => ApiError::NotFound(why),
        other => other.into(),
    })?;
    // Installing again answers the same group; its realm cannot change, since
    // the app's external ids are kept under it.
    match realm {
        Some(asked) if asked != group.realm => Err(ApiError::Conflict(format!(
            "app {app_id} is installed in {org_id} already, as group {} with realm {:?}; a realm cannot change",
            group.id, group.realm
        ))),
        _ => Ok(group),
    }
}

/// The longest realm, in characters.
const MAX_REALM_CHARS: usize = 255;

pub fn no_app(app_id: &str) -> ApiError {
    ApiError::NotFound(format!("No app {app_id}"))
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn check_url(url: Option<&str>) -> Option<FieldError> {
    let url = url?;
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => None,
        _ => Some(FieldError::new("notification_url", "expected an http(s) URL")),
    }
}

fn check_entities(entities: &[EntityAccess]) -> Vec<FieldError> {
    let mut seen = std::collections::HashSet::new();
    let mut errors = Vec::new();
    for (i, access) in entities.iter().enumerate() {
        let path = format!("entities/{i}/entity");
        if catalog::entity(&access.entity).is_none() {
            errors.push(FieldError::new(path, format!("{:?} is not a shared entity", access.entity)));
        } else if !seen.insert(access.entity.as_str()) {
            errors.push(FieldError::new(path, format!("{:?} is listed twice; give its rights once", access.entity)));
        }
        // Webhooks carry records, so they only go to apps that may read them.
        if access.subscribe && !access.read {
            let why = "subscribing needs read too: webhooks only carry what the app may read";
            errors.push(FieldError::new(format!("entities/{i}/subscribe"), why));
        }
    }
    errors
}
