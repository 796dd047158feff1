//! The connector's one error type.

/// What can go wrong while bridging an app with the hub.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The app (its API or database) failed; usually worth a retry.
    #[error("app: {0}")]
    App(String),
    /// The hub could not be reached or answered 5xx/408/429; worth a retry.
    #[error("hub unavailable: {0}")]
    HubUnavailable(String),
    /// The hub refused a request (4xx other than 408/429): retrying will not help.
    #[error("hub refused ({status}): {detail}")]
    HubRefused { status: u16, detail: String },
    /// A record could not be mapped between the app and the hub.
    #[error("mapping: {0}")]
    Mapping(String),
    /// A hub record refers to one the app does not hold yet: `entity` is the
    /// app entity referred to, `hub_id` the hub's id of the missing record.
    #[error("unresolved reference to {entity} {hub_id}")]
    Unresolved { entity: String, hub_id: String },
    /// The connector's own state database failed.
    #[error("state database: {0}")]
    State(#[from] sqlx::Error),
    /// The configuration is not usable.
    #[error("configuration: {0}")]
    Config(String),
    /// A webhook failed verification.
    #[error("webhook rejected: {0}")]
    Webhook(String),
}

impl Error {
    /// The hub answered 401 for `group`: wrong credentials or group id.
    pub fn refused_group(group: &str, detail: &str) -> Self {
        Error::HubRefused {
            status: 401,
            detail: format!(
                "the hub refused this connector for group {group}: check [hub] api_id and api_key and the org's group_id ({detail})"
            ),
        }
    }

    /// Whether trying again later may succeed (outages), as opposed to a
    /// record that will fail the same way every time.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::App(_) | Error::HubUnavailable(_) | Error::State(_))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
