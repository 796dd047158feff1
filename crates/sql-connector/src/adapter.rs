//! [`AppAdapter`] over SQL tables: changed rows by `(updated_at, key)`,
//! child rows embedded as arrays, writes that stamp `updated_at`.

use std::collections::HashMap;

use async_trait::async_trait;
use jiff::Timestamp;
use serde_json::{Map, Value};
use sharehub_connector::convert::{format_timestamp, timestamp};
use sharehub_connector::{AppAdapter, AppRecord, Cursor, Page};

use crate::db::{quote, Db, Param, Tx, UNREADABLE};
use crate::error::{Error, Result};
use crate::mapping_file::{ChildSpec, TableSpec};

/// An app whose records live in SQL tables.
pub struct SqlAdapter {
    db: Db,
    tables: HashMap<String, TableSpec>,
    /// PostgreSQL column types by table, to cast parameters.
    types: HashMap<String, HashMap<String, String>>,
}

type Fault = sharehub_connector::Error;

impl SqlAdapter {
    pub async fn new(db: Db, tables: Vec<TableSpec>) -> Result<Self> {
        let mut types = HashMap::new();
        for table in tables.iter().flat_map(|t| std::iter::once(&t.table).chain(t.children.iter().map(|c| &c.table))) {
            types.insert(table.clone(), db.column_types(table).await?.into_iter().collect());
        }
        let tables = tables.into_iter().map(|t| (t.entity.clone(), t)).collect();
        Ok(Self { db, tables, types })
    }

    fn table(&self, entity: &str) -> Result<&TableSpec> {
        self.tables.get(entity).ok_or_else(|| Error::Config(format!("no table for entity {entity}")))
    }

    fn param(&self, table: &str, column: &str, n: usize) -> String {
        let sql_type = self.types.get(table).and_then(|t| t.get(column)).map(String::as_str);
        self.db.placeholder(n, sql_type)
    }

    /// The instant as the app's updated-at column compares it.
    fn instant(&self, t: Timestamp) -> String {
        match self.db {
            // SQLite compares the text: one fixed width, as the app writes it.
            Db::Sqlite(_) => format_timestamp(t),
            Db::Postgres(_) => t.to_string(),
        }
    }

    async fn list(&self, entity: &str, after: Option<&Cursor>, limit: usize) -> Result<Page> {
        let spec = self.table(entity)?;
        let (u, k) = (quote(&spec.updated_at), self.db.as_text(&spec.key));
        let mut params = Vec::new();
        let mut sql = format!("SELECT * FROM {}", quote(&spec.table));
        if let Some(after) = after {
            let (p1, p2) = (self.param(&spec.table, &spec.updated_at, 1), self.db.placeholder(2, Some("TEXT")));
            sql.push_str(&format!(" WHERE ({u} > {p1} OR ({u} = {p1} AND {k} > {p2}))"));
            params.extend([Param::Text(self.instant(after.updated_at)), Param::Text(after.id.clone())]);
        }
        sql.push_str(&format!(" ORDER BY {u}, {k} LIMIT {}", limit + 1));
        let mut tx = self.db.begin().await?;
        let rows = tx.fetch(&sql, &params).await?;
        let has_more = rows.len() > limit;
        let mut records = Vec::with_capacity(limit);
        for row in rows.into_iter().take(limit) {
            records.push(self.record(&mut tx, spec, row).await?);
        }
        tx.commit().await?;
        Ok(Page { records, has_more })
    }

    /// A row with its child rows, as an [`AppRecord`].
    async fn record(&self, tx: &mut Tx, spec: &TableSpec, mut row: Map<String, Value>) -> Result<AppRecord> {
        let id = plain(row.get(&spec.key).unwrap_or(&Value::Null));
        let updated_at = timestamp(row.get(&spec.updated_at).unwrap_or(&Value::Null))
            .map_err(|e| Error::Config(format!("{} {id}: updated-at {e}", spec.table)))?;
        for child in &spec.children {
            let sql = format!(
                "SELECT * FROM {} WHERE {} = {} ORDER BY {}",
                quote(&child.table),
                self.db.as_text(&child.parent),
                self.db.placeholder(1, Some("TEXT")),
                quote(&child.key)
            );
            let mut lines = tx.fetch(&sql, &[Param::Text(id.clone())]).await?;
            for line in &mut lines {
                if let Some(why) = line.remove(UNREADABLE) {
                    row.entry(UNREADABLE).or_insert(Value::String(format!("{} line: {}", child.table, plain(&why))));
                }
            }
            row.insert(child.field.clone(), Value::Array(lines.into_iter().map(Value::Object).collect()));
        }
        let unreadable = row.remove(UNREADABLE).map(|why| format!("{} {id}: {}", spec.table, plain(&why)));
        let inactive = spec.inactive.as_ref().is_some_and(|i| {
            let value = serde_json::to_value(&i.value).unwrap_or_default();
            row.get(&i.column).is_some_and(|v| plain(v) == plain(&value))
        });
        Ok(AppRecord { id, updated_at, fields: row, inactive, unreadable })
    }

    async fn get(&self, entity: &str, id: &str) -> Result<Option<AppRecord>> {
        let spec = self.table(entity)?;
        let sql = format!(
            "SELECT * FROM {} WHERE {} = {}",
            quote(&spec.table),
            self.db.as_text(&spec.key),
            self.db.placeholder(1, Some("TEXT"))
        );
        let mut tx = self.db.begin().await?;
        let row = tx.fetch(&sql, &[Param::Text(id.to_string())]).await?.into_iter().next();
        let record = match row {
            Some(row) => Some(self.record(&mut tx, spec, row).await?),
            None => None,
        };
        tx.commit().await?;
        Ok(record)
    }

    async fn write(&self, entity: &str, id: Option<&str>, mut fields: Map<String, Value>) -> Result<AppRecord> {
        let spec = self.table(entity)?;
        let children: Vec<(&ChildSpec, Option<Value>)> =
            spec.children.iter().map(|c| (c, fields.remove(&c.field))).collect();
        fields.remove(&spec.key);
        fields.insert(spec.updated_at.clone(), Value::String(self.instant(Timestamp::now())));

        let mut tx = self.db.begin().await?;
        let id = match id {
            Some(id) => self.update_row(&mut tx, spec, id, &fields).await?,
            None => self.insert_row(&mut tx, &spec.table, &spec.key, &fields).await?,
        };
        for (child, lines) in children {
            if let Some(Value::Array(lines)) = lines {
                self.replace_children(&mut tx, child, &id, &lines).await?;
            }
        }
        tx.commit().await?;
        self.get(entity, &id).await?.ok_or_else(|| Error::Config(format!("{entity} {id} vanished after writing")))
    }

    async fn insert_row(&self, tx: &mut Tx, table: &str, key: &str, fields: &Map<String, Value>) -> Result<String> {
        let columns: Vec<&String> = fields.keys().collect();
        check_columns(&columns)?;
        let names: Vec<String> = columns.iter().map(|c| quote(c)).collect();
        let values: Vec<String> = columns.iter().enumerate().map(|(i, c)| self.param(table, c, i + 1)).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) RETURNING CAST({} AS TEXT)",
            quote(table),
            names.join(", "),
            values.join(", "),
            quote(key)
        );
        let params: Vec<Param> = fields.values().map(Param::from_json).collect();
        tx.fetch_text(&sql, &params).await
    }

    async fn update_row(&self, tx: &mut Tx, spec: &TableSpec, id: &str, fields: &Map<String, Value>) -> Result<String> {
        let columns: Vec<&String> = fields.keys().collect();
        check_columns(&columns)?;
        let sets: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} = {}", quote(c), self.param(&spec.table, c, i + 1)))
            .collect();
        let sql = format!(
            "UPDATE {} SET {} WHERE {} = {}",
            quote(&spec.table),
            sets.join(", "),
            self.db.as_text(&spec.key),
            self.db.placeholder(columns.len() + 1, Some("TEXT"))
        );
        let mut params: Vec<Param> = fields.values().map(Param::from_json).collect();
        params.push(Param::Text(id.to_string()));
        match tx.execute(&sql, &params).await? {
            0 => Err(Error::Config(format!("{} {id} does not exist", spec.table))),
            _ => Ok(id.to_string()),
        }
    }

    /// Lines are replaced as a whole, as the hub replaces arrays.
    async fn replace_children(&self, tx: &mut Tx, child: &ChildSpec, id: &str, lines: &[Value]) -> Result<()> {
        let sql = format!(
            "DELETE FROM {} WHERE {} = {}",
            quote(&child.table),
            self.db.as_text(&child.parent),
            self.db.placeholder(1, Some("TEXT"))
        );
        tx.execute(&sql, &[Param::Text(id.to_string())]).await?;
        for line in lines {
            let mut fields = line.as_object().cloned().unwrap_or_default();
            fields.remove(&child.key);
            fields.insert(child.parent.clone(), Value::String(id.to_string()));
            self.insert_row(tx, &child.table, &child.key, &fields).await?;
        }
        Ok(())
    }

    async fn deactivate(&self, entity: &str, id: &str) -> Result<()> {
        let spec = self.table(entity)?;
        let Some(inactive) = &spec.inactive else {
            tracing::info!(entity, id, "archived on the hub; the app has no inactive flag, so it is kept as is");
            return Ok(());
        };
        let value = serde_json::to_value(&inactive.value).map_err(|e| Error::Config(e.to_string()))?;
        let fields = Map::from_iter([(inactive.column.clone(), value)]);
        self.write(entity, Some(id), fields).await.map(|_| ())
    }
}

fn check_columns(columns: &[&String]) -> Result<()> {
    match columns.iter().find(|c| c.is_empty() || !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')) {
        Some(bad) => Err(Error::Config(format!("{bad:?} is not a plain column name"))),
        None => Ok(()),
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[async_trait]
impl AppAdapter for SqlAdapter {
    async fn list_changed(&self, entity: &str, after: Option<&Cursor>, limit: usize) -> Result<Page, Fault> {
        Ok(self.list(entity, after, limit).await?)
    }

    async fn fetch(&self, entity: &str, id: &str) -> Result<Option<AppRecord>, Fault> {
        Ok(self.get(entity, id).await?)
    }

    async fn create(&self, entity: &str, fields: Map<String, Value>) -> Result<AppRecord, Fault> {
        Ok(self.write(entity, None, fields).await?)
    }

    async fn update(&self, entity: &str, id: &str, fields: Map<String, Value>) -> Result<AppRecord, Fault> {
        Ok(self.write(entity, Some(id), fields).await?)
    }

    async fn mark_inactive(&self, entity: &str, id: &str) -> Result<(), Fault> {
        Ok(self.deactivate(entity, id).await?)
    }

    fn concurrent_writes(&self) -> usize {
        self.db.concurrent_writes()
    }
}
