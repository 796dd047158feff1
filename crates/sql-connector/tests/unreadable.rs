//! A row the app's database cannot hand over (text that is not UTF-8, which
//! SQLite stores if it is given it) fails alone: it is recorded as a failing
//! record naming the table, row and column, and the rows changed with it are
//! shared all the same. Once the row is fixed it is shared too.

mod support;

use sharehub_sql_connector::db::Param;
use sharehub_sql_connector::run;
use support::hub::own_id;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_row_fails_alone_and_the_others_are_shared() {
    let StoreSetup { hub, store, group, dir, db, .. } = StoreSetup::new().await;
    let config = connector_config(&hub, &store, dir.path(), &group, &dir.path().join("chinook.db"));
    let connector = run::build(&config).await.unwrap();
    assert!(connector.sync_once(&group, true).await.unwrap(), "the initial import");

    // Customer 3's city becomes bytes that are no UTF-8; customer 4 changes too.
    let now = now_text();
    exec(
        &db,
        "UPDATE customers SET city = CAST(x'C328' AS TEXT), updated_at = ?1 WHERE id = 3",
        &[Param::Text(now.clone())],
    )
    .await;
    exec(&db, "UPDATE customers SET city = 'Valparaíso', updated_at = ?1 WHERE id = 4", &[Param::Text(now)]).await;
    assert!(connector.sync_once(&group, false).await.unwrap(), "the poll goes on past the bad row");

    let city = |people: &[serde_json::Value], id: &str| {
        let person = people.iter().find(|p| own_id(p, "store").as_deref() == Some(id)).cloned().unwrap();
        person["address_work"]["billing"]["city"].clone()
    };
    let people = hub.list(&store, &group, "people").await;
    assert_eq!(city(&people, "customers:4"), "Valparaíso", "the good row is shared");
    let errors = connector.state().record_errors(&group).await.unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].entity.as_str(), errors[0].record_id.as_str()), ("customers", "3"));
    assert!(errors[0].error.contains("city"), "names the column: {:?}", errors[0]);

    // Fixed in the app: shared at the next poll, the failure cleared.
    exec(&db, "UPDATE customers SET city = 'Brasília', updated_at = ?1 WHERE id = 3", &[Param::Text(now_text())]).await;
    assert!(connector.sync_once(&group, false).await.unwrap());
    let people = hub.list(&store, &group, "people").await;
    assert_eq!(city(&people, "customers:3"), "Brasília");
    assert!(connector.state().record_errors(&group).await.unwrap().is_empty(), "the failure is cleared");
}
