//! Organizations, apps and groups on SQLite.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::rows::timestamp;
use super::SqliteStore;
use crate::error::Context;
use crate::*;
use sharehub_model::ids;

fn org_from_row(row: &SqliteRow) -> Result<Org, StoreError> {
    Ok(Org { id: row.get(0), name: row.get(1), created_at: timestamp(row.get(2))? })
}

fn group_from_row(row: &SqliteRow) -> Result<Group, StoreError> {
    Ok(Group {
        id: row.get(0),
        app_id: row.get(1),
        org_id: row.get(2),
        realm: row.get(3),
        created_at: timestamp(row.get(4))?,
    })
}

const APP_COLUMNS: &str =
    "id, name, provider, api_key, webhook_secret, notification_url, endpoint_disabled, created_at";
const GROUP_COLUMNS: &str = "id, app_id, org_id, realm, created_at";

impl SqliteStore {
    /// Tells [`Store::platform_changes`] receivers that apps or groups changed;
    /// called only after the write committed, so a woken reader sees it.
    pub(crate) fn platform_changed(&self) {
        self.platform.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) async fn create_org_impl(&self, name: &str) -> Result<Org, StoreError> {
        let org = Org { id: ids::new_org_id(), name: name.to_string(), created_at: jiff::Timestamp::now() };
        let row = org.clone();
        self.writer
            .exec(move |conn| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?)")
                        .bind(&row.id)
                        .bind(&row.name)
                        .bind(row.created_at.as_microsecond())
                        .execute(conn)
                        .await
                        .context("creating an organization")?;
                    Ok(())
                })
            })
            .await?;
        Ok(org)
    }

    pub(crate) async fn list_orgs_impl(&self) -> Result<Vec<Org>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM orgs ORDER BY created_at")
            .fetch_all(&self.reader)
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
        let row = app.clone();
        self.writer
            .exec(move |conn| {
                Box::pin(async move {
                    sqlx::query(&format!("INSERT INTO apps ({APP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"))
                        .bind(&row.id)
                        .bind(&row.name)
                        .bind(&row.provider)
                        .bind(&row.api_key)
                        .bind(&row.webhook_secret)
                        .bind(&row.notification_url)
                        .bind(&row.endpoint_disabled)
                        .bind(row.created_at.as_microsecond())
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| match &e {
                            sqlx::Error::Database(db) if db.is_unique_violation() => {
                                StoreError::Invalid(format!("provider {:?} is already taken", row.provider))
                            }
                            _ => StoreError::Database { context: "registering an app", source: e },
                        })?;
                    write_entities(conn, &row.id, &row.entities).await
                })
            })
            .await?;
        self.platform_changed();
        let secrets = AppSecrets { api_id: app.id.clone(), api_key, webhook_secret: secret };
        Ok((app, secrets))
    }

    /// Writes only the fields `update` names, so that two updates at once (or
    /// an update and the delivery worker disabling the endpoint) both hold.
    pub(crate) async fn update_app_impl(&self, app_id: &str, update: AppUpdate) -> Result<Option<App>, StoreError> {
        let id = app_id.to_string();
        let found = self
            .writer
            .exec(move |conn| {
                Box::pin(async move {
                    let disabled = update.endpoint_enabled.map(|on| (!on).then(|| STOPPED_BY_ADMIN.to_string()));
                    let updated = sqlx::query(
                        "UPDATE apps SET name = CASE WHEN ?1 THEN ?2 ELSE name END, \
                         notification_url = CASE WHEN ?3 THEN ?4 ELSE notification_url END, \
                         endpoint_disabled = CASE WHEN ?5 THEN ?6 ELSE endpoint_disabled END WHERE id = ?7",
                    )
                    .bind(update.name.is_some())
                    .bind(&update.name)
                    .bind(update.notification_url.is_some())
                    .bind(update.notification_url.clone().flatten())
                    .bind(disabled.is_some())
                    .bind(disabled.flatten())
                    .bind(&id)
                    .execute(&mut *conn)
                    .await
                    .context("updating an app")?;
                    if updated.rows_affected() == 0 {
                        return Ok(false);
                    }
                    if let Some(entities) = &update.entities {
                        write_entities(conn, &id, entities).await?;
                    }
                    if update.brings_delivery_forward() {
                        sqlx::query("UPDATE pending_batches SET next_attempt_at = ? WHERE app_id = ?")
                            .bind(jiff::Timestamp::now().as_microsecond())
                            .bind(&id)
                            .execute(&mut *conn)
                            .await
                            .context("bringing a retry forward")?;
                    }
                    Ok(true)
                })
            })
            .await?;
        if !found {
            return Ok(None);
        }
        self.platform_changed();
        self.get_app_impl(app_id).await
    }

    pub(crate) async fn get_app_impl(&self, app_id: &str) -> Result<Option<App>, StoreError> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE id = ?"))
            .bind(app_id)
            .fetch_optional(&self.reader)
            .await
            .context("loading an app")?;
        match row {
            Some(row) => Ok(Some(self.app_from_row(&row).await?)),
            None => Ok(None),
        }
    }

    pub(crate) async fn list_apps_impl(&self) -> Result<Vec<App>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps ORDER BY created_at"))
            .fetch_all(&self.reader)
            .await
            .context("listing apps")?;
        let mut apps = Vec::with_capacity(rows.len());
        for row in &rows {
            apps.push(self.app_from_row(row).await?);
        }
        Ok(apps)
    }

    async fn app_from_row(&self, row: &SqliteRow) -> Result<App, StoreError> {
        let id: String = row.get(0);
        let entities = sqlx::query(
            "SELECT entity, can_read, can_write, subscribed FROM app_entities WHERE app_id = ? ORDER BY entity",
        )
        .bind(&id)
        .fetch_all(&self.reader)
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

    /// Sets one column of an app; answers whether the app exists.
    pub(crate) async fn set_app_secret(
        &self,
        app_id: &str,
        column: &'static str,
        value: String,
    ) -> Result<bool, StoreError> {
        let app_id = app_id.to_string();
        let found = self
            .writer
            .exec(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(&format!("UPDATE apps SET {column} = ? WHERE id = ?"))
                        .bind(value)
                        .bind(app_id)
                        .execute(conn)
                        .await
                        .context("rotating a secret")?;
                    Ok(done.rows_affected() == 1)
                })
            })
            .await?;
        self.platform_changed();
        Ok(found)
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
        let group = self.writer.exec(move |conn| Box::pin(async move { insert_group(conn, group).await })).await?;
        self.platform_changed();
        Ok(group)
    }

    pub(crate) async fn get_group_impl(&self, group_id: &str) -> Result<Option<Group>, StoreError> {
        let row = sqlx::query(&format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = ?"))
            .bind(group_id)
            .fetch_optional(&self.reader)
            .await
            .context("loading a group")?;
        row.as_ref().map(group_from_row).transpose()
    }

    pub(crate) async fn groups_of_app_impl(&self, app_id: &str) -> Result<Vec<Group>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {GROUP_COLUMNS} FROM groups WHERE app_id = ? ORDER BY created_at"))
            .bind(app_id)
            .fetch_all(&self.reader)
            .await
            .context("listing an app's groups")?;
        rows.iter().map(group_from_row).collect()
    }
}

async fn write_entities(
    conn: &mut SqliteConnection,
    app_id: &str,
    entities: &[EntityAccess],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM app_entities WHERE app_id = ?")
        .bind(app_id)
        .execute(&mut *conn)
        .await
        .context("updating an app's entities")?;
    for access in entities {
        sqlx::query(
            "INSERT INTO app_entities (app_id, entity, can_read, can_write, subscribed) VALUES (?, ?, ?, ?, ?)",
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

/// Inserts the group, or answers the app's existing group in that organization.
/// Its delivery cursor starts at the organization's present: an app learns
/// what existed before by reading the API, and by webhook what changes after.
async fn insert_group(conn: &mut SqliteConnection, group: Group) -> Result<Group, StoreError> {
    let existing = sqlx::query(&format!("SELECT {GROUP_COLUMNS} FROM groups WHERE app_id = ? AND org_id = ?"))
        .bind(&group.app_id)
        .bind(&group.org_id)
        .fetch_optional(&mut *conn)
        .await
        .context("looking for an installed app")?;
    if let Some(row) = existing {
        return group_from_row(&row);
    }
    let known =
        sqlx::query("SELECT (SELECT count(*) FROM orgs WHERE id = ?), (SELECT count(*) FROM apps WHERE id = ?)")
            .bind(&group.org_id)
            .bind(&group.app_id)
            .fetch_one(&mut *conn)
            .await
            .context("checking an installation")?;
    if known.get::<i64, _>(0) == 0 {
        return Err(StoreError::Invalid(format!("no organization {}", group.org_id)));
    }
    if known.get::<i64, _>(1) == 0 {
        return Err(StoreError::Invalid(format!("no app {}", group.app_id)));
    }
    sqlx::query(&format!("INSERT INTO groups ({GROUP_COLUMNS}) VALUES (?, ?, ?, ?, ?)"))
        .bind(&group.id)
        .bind(&group.app_id)
        .bind(&group.org_id)
        .bind(&group.realm)
        .bind(group.created_at.as_microsecond())
        .execute(&mut *conn)
        .await
        .context("installing an app")?;
    sqlx::query("INSERT INTO delivery_cursors (app_id, org_id, delivered_seq) SELECT ?1, ?2, COALESCE(MAX(seq), 0) FROM changes WHERE org_id = ?2")
        .bind(&group.app_id)
        .bind(&group.org_id)
        .execute(&mut *conn)
        .await
        .context("starting a delivery cursor")?;
    Ok(group)
}
