//! Organizations, apps and groups on PostgreSQL.
//!
//! These platform tables hold no tenant data and carry no row-level policy:
//! the platform API lists them across organizations.

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;

use super::rows::timestamp;
use super::{set_scope, PgStore};
use crate::error::Context;
use crate::*;
use sharehub_model::ids;

const APP_COLUMNS: &str =
    "id, name, provider, api_key, webhook_secret, notification_url, endpoint_disabled, created_at";
const GROUP_COLUMNS: &str = "id, app_id, org_id, realm, created_at";

fn org_from_row(row: &PgRow) -> Result<Org, StoreError> {
    Ok(Org { id: row.get(0), name: row.get(1), created_at: timestamp(row.get(2))? })
}

fn group_from_row(row: &PgRow) -> Result<Group, StoreError> {
    Ok(Group {
        id: row.get(0),
        app_id: row.get(1),
        org_id: row.get(2),
        realm: row.get(3),
        created_at: timestamp(row.get(4))?,
    })
}

impl PgStore {
    pub(crate) async fn create_org_impl(&self, name: &str) -> Result<Org, StoreError> {
        let org = Org { id: ids::new_org_id(), name: name.to_string(), created_at: jiff::Timestamp::now() };
        sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&org.id)
            .bind(&org.name)
            .bind(org.created_at.as_microsecond())
            .execute(&self.pool)
            .await
            .context("creating an organization")?;
        Ok(org)
    }

    pub(crate) async fn list_orgs_impl(&self) -> Result<Vec<Org>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM orgs ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .context("listing organizations")?;
        rows.iter().map(org_from_row).collect()
    }

    pub(crate) async fn create_app_impl(&self, new: NewApp, secret: String) -> Result<(App, AppSecrets), StoreError> {
        let api_key = ids::new_api_key();
        let app = App {
            id: ids::new_app_id(),
            name: new.name,
            provider: new.provider,
            api_key: api_key.clone(),
            webhook_secret: secret.clone(),
            notification_url: new.notification_url,
            endpoint_disabled: None,
            entities: new.entities,
            created_at: jiff::Timestamp::now(),
        };
        let mut tx = self.pool.begin().await.context("registering an app")?;
        let inserted =
            sqlx::query(&format!("INSERT INTO apps ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
                .bind(&app.id)
                .bind(&app.name)
                .bind(&app.provider)
                .bind(&app.api_key)
                .bind(&app.webhook_secret)
                .bind(&app.notification_url)
                .bind(&app.endpoint_disabled)
                .bind(app.created_at.as_microsecond())
                .execute(&mut *tx)
                .await;
        if let Err(sqlx::Error::Database(db)) = &inserted {
            if db.is_unique_violation() {
                return Err(StoreError::Invalid(format!("provider {:?} is already taken", app.provider)));
            }
        }
        inserted.context("registering an app")?;
        write_entities(&mut tx, &app.id, &app.entities).await?;
        tx.commit().await.context("registering an app")?;
        let secrets = AppSecrets { api_id: app.id.clone(), api_key, webhook_secret: secret };
        Ok((app, secrets))
    }

    /// Writes only the fields `update` names, so that two updates at once (or
    /// an update and the delivery worker disabling the endpoint) both hold.
    pub(crate) async fn update_app_impl(&self, app_id: &str, update: AppUpdate) -> Result<Option<App>, StoreError> {
        let disabled = update.endpoint_enabled.map(|on| (!on).then(|| STOPPED_BY_ADMIN.to_string()));
        let mut tx = self.pool.begin().await.context("updating an app")?;
        let updated = sqlx::query(
            "UPDATE apps SET name = CASE WHEN $1 THEN $2 ELSE name END, \
             notification_url = CASE WHEN $3 THEN $4 ELSE notification_url END, \
             endpoint_disabled = CASE WHEN $5 THEN $6 ELSE endpoint_disabled END WHERE id = $7",
        )
        .bind(update.name.is_some())
        .bind(&update.name)
        .bind(update.notification_url.is_some())
        .bind(update.notification_url.clone().flatten())
        .bind(disabled.is_some())
        .bind(disabled.flatten())
        .bind(app_id)
        .execute(&mut *tx)
        .await
        .context("updating an app")?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        if let Some(entities) = &update.entities {
            write_entities(&mut tx, app_id, entities).await?;
        }
        if update.brings_delivery_forward() {
            sqlx::query("UPDATE pending_batches SET next_attempt_at = $1 WHERE app_id = $2")
                .bind(jiff::Timestamp::now().as_microsecond())
                .bind(app_id)
                .execute(&mut *tx)
                .await
                .context("bringing a retry forward")?;
        }
        tx.commit().await.context("updating an app")?;
        self.get_app_impl(app_id).await
    }

    pub(crate) async fn get_app_impl(&self, app_id: &str) -> Result<Option<App>, StoreError> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE id = $1"))
            .bind(app_id)
            .fetch_optional(&self.pool)
            .await
            .context("loading an app")?;
        match row {
            Some(row) => Ok(Some(self.app_from_row(&row).await?)),
            None => Ok(None),
        }
    }

    pub(crate) async fn list_apps_impl(&self) -> Result<Vec<App>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, id"))
            .fetch_all(&self.pool)
            .await
            .context("listing apps")?;
        let mut apps = Vec::with_capacity(rows.len());
        for row in &rows {
            apps.push(self.app_from_row(row).await?);
        }
        Ok(apps)
    }

    async fn app_from_row(&self, row: &PgRow) -> Result<App, StoreError> {
        let id: String = row.get(0);
        let entities = sqlx::query(
            "SELECT entity, can_read, can_write, subscribed FROM app_entities WHERE app_id = $1 ORDER BY entity",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await
        .context("loading an app's entities")?
        .iter()
        .map(|r| EntityAccess { entity: r.get(0), read: r.get(1), write: r.get(2), subscribe: r.get(3) })
        .collect();
        Ok(App {
            id,
            name: row.get(1),
            provider: row.get(2),
            api_key: row.get(3),
            webhook_secret: row.get(4),
            notification_url: row.get(5),
            endpoint_disabled: row.get(6),
            entities,
            created_at: timestamp(row.get(7))?,
        })
    }

    /// Sets one secret column of an app; answers whether the app exists.
    pub(crate) async fn set_app_secret(
        &self,
        app_id: &str,
        column: &'static str,
        value: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!("UPDATE apps SET {column} = $1 WHERE id = $2"))
            .bind(value)
            .bind(app_id)
            .execute(&self.pool)
            .await
            .context("rotating a secret")?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn install_impl(
        &self,
        app_id: &str,
        org_id: &str,
        realm: Option<&str>,
    ) -> Result<Group, StoreError> {
        let group_id = ids::new_group_id();
        let realm = realm.map(str::to_string).unwrap_or_else(|| group_id.clone());
        let group = Group {
            id: group_id,
            app_id: app_id.to_string(),
            org_id: org_id.to_string(),
            realm,
            created_at: jiff::Timestamp::now(),
        };

        let mut tx = self.pool.begin().await.context("installing an app")?;
        set_scope(&mut tx, "sharehub.org_id", org_id).await?;
        let group = insert_group(&mut tx, group).await?;
        tx.commit().await.context("installing an app")?;
        Ok(group)
    }

    pub(crate) async fn get_group_impl(&self, group_id: &str) -> Result<Option<Group>, StoreError> {
        let row = sqlx::query(&format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = $1"))
            .bind(group_id)
            .fetch_optional(&self.pool)
            .await
            .context("loading a group")?;
        row.as_ref().map(group_from_row).transpose()
    }

    pub(crate) async fn groups_of_app_impl(&self, app_id: &str) -> Result<Vec<Group>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT {GROUP_COLUMNS} FROM groups WHERE app_id = $1 ORDER BY created_at, id"))
                .bind(app_id)
                .fetch_all(&self.pool)
                .await
                .context("listing an app's groups")?;
        rows.iter().map(group_from_row).collect()
    }
}

async fn write_entities(conn: &mut PgConnection, app_id: &str, entities: &[EntityAccess]) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM app_entities WHERE app_id = $1")
        .bind(app_id)
        .execute(&mut *conn)
        .await
        .context("updating an app's entities")?;
    for access in entities {
        sqlx::query(
            "INSERT INTO app_entities (app_id, entity, can_read, can_write, subscribed) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(app_id)
        .bind(&access.entity)
        .bind(access.read)
        .bind(access.write)
        .bind(access.subscribe)
        .execute(&mut *conn)
        .await
        .context("updating an app's entities")?;
    }
    Ok(())
}

/// Inserts the group, or answers the app's existing group in that
/// organization (also when another process installed it a moment ago).
/// Its delivery cursor starts at the organization's present: an app learns
/// what existed before by reading the API, and by webhook what changes after.
async fn insert_group(conn: &mut PgConnection, group: Group) -> Result<Group, StoreError> {
    check_installable(conn, &group).await?;
    let inserted = sqlx::query(&format!(
        "INSERT INTO groups ({GROUP_COLUMNS}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (app_id, org_id) DO NOTHING RETURNING id"
    ))
    .bind(&group.id)
    .bind(&group.app_id)
    .bind(&group.org_id)
    .bind(&group.realm)
    .bind(group.created_at.as_microsecond())
    .fetch_optional(&mut *conn)
    .await
    .context("installing an app")?;
    if inserted.is_none() {
        let row = sqlx::query(&format!("SELECT {GROUP_COLUMNS} FROM groups WHERE app_id = $1 AND org_id = $2"))
            .bind(&group.app_id)
            .bind(&group.org_id)
            .fetch_one(&mut *conn)
            .await
            .context("looking for an installed app")?;
        return group_from_row(&row);
    }
    sqlx::query(
        "INSERT INTO delivery_cursors (app_id, org_id, delivered_seq) SELECT $1, id, last_seq FROM orgs WHERE id = $2 ON CONFLICT DO NOTHING",
    )
    .bind(&group.app_id)
    .bind(&group.org_id)
    .execute(&mut *conn)
    .await
    .context("starting a delivery cursor")?;
    Ok(group)
}

/// Refuses an installation of an unknown app or organization with a clear
/// message rather than a foreign-key error.
async fn check_installable(conn: &mut PgConnection, group: &Group) -> Result<(), StoreError> {
    let known =
        sqlx::query("SELECT EXISTS (SELECT 1 FROM orgs WHERE id = $1), EXISTS (SELECT 1 FROM apps WHERE id = $2)")
            .bind(&group.org_id)
            .bind(&group.app_id)
            .fetch_one(&mut *conn)
            .await
            .context("checking an installation")?;
    if !known.get::<bool, _>(0) {
        return Err(StoreError::Invalid(format!("no organization {}", group.org_id)));
    }
    if !known.get::<bool, _>(1) {
        return Err(StoreError::Invalid(format!("no app {}", group.app_id)));
    }
    Ok(())
}
