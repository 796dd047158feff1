//! The SQL connector's one error type.

/// What can go wrong in the SQL connector.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Connector(#[from] sharehub_connector::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for sharehub_connector::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Connector(inner) => inner,
            Error::Database(db) => sharehub_connector::Error::App(db.to_string()),
            Error::Config(why) => sharehub_connector::Error::Config(why),
        }
    }
}
