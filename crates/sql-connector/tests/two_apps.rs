//! Two apps, each bridged by its own SQL connector, in one organization: the
//! records of one reach the other, an edit crosses once, and the hub's
//! change log stops growing (no ping-pong).

mod support;

use std::time::Duration;

use serde_json::json;
use sharehub_sql_connector::db::Param;
use support::*;

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connected_apps_share_an_edit_once_and_go_quiet() {
    let hub = TestHub::spawn().await;
    let org = hub.create_org("Chinook").await;
    let store = hub.create_app("store").await;
    let shop = hub.create_app("shop").await;
    let store_group = hub.install(&store, &org).await;
    let shop_group = hub.install(&shop, &org).await;

    let store_dir = tempfile::tempdir().unwrap();
    let shop_dir = tempfile::tempdir().unwrap();
    let store_db = chinook_db(&store_dir.path().join("chinook.db"), 5, 10, 2).await;
    let shop_db = chinook_db(&shop_dir.path().join("chinook.db"), 0, 0, 0).await;
    let store_config =
        connector_config(&hub, &store, store_dir.path(), &store_group, &store_dir.path().join("chinook.db"));
    let shop_config = connector_config(&hub, &shop, shop_dir.path(), &shop_group, &shop_dir.path().join("chinook.db"));
    let store_connector = start_connector(&hub, &store, &store_config).await;
    wait_for_sync(&store_connector, &store_group).await;
    let shop_connector = start_connector(&hub, &shop, &shop_config).await;
    wait_for_sync(&shop_connector, &shop_group).await;

    // The shop got the store's customers, tracks and invoices with their lines.
    eventually("the store's records in the shop", MINUTE, || async {
        let done = count(&shop_db, "SELECT count(*) FROM customers").await == 5
            && count(&shop_db, "SELECT count(*) FROM tracks").await == 10
            && count(&shop_db, "SELECT count(*) FROM invoice_lines").await
                == count(&store_db, "SELECT count(*) FROM invoice_lines").await;
        done.then_some(())
    })
    .await;
    assert_eq!(count(&shop_db, "SELECT count(*) FROM employees").await, 8, "employees merged by email, not doubled");
    assert_eq!(hub.list(&store, &store_group, "employees").await.len(), 8);

    // An edit in the store crosses to the shop.
    let sql = "UPDATE customers SET phone = '+49 30 1234', updated_at = ?1 WHERE id = 2";
    exec(&store_db, sql, &[Param::Text(now_text())]).await;
    eventually("the store's edit in the shop", MINUTE, || async {
        let rows = rows(&shop_db, "SELECT phone FROM customers WHERE email = 'leonekohler@surfeu.de'").await;
        (rows.first()?["phone"] == json!("+49 30 1234")).then_some(())
    })
    .await;

    // Then nothing moves: the hub's log and both apps stay as they are.
    synced_after(&store_connector, &store_group, &now_text()).await;
    synced_after(&shop_connector, &shop_group, &now_text()).await;
    let seq = hub.last_seq(&store, &store_group).await;
    let shop_rows = rows(&shop_db, "SELECT id, updated_at FROM customers ORDER BY id").await;
    let store_rows = rows(&store_db, "SELECT id, updated_at FROM customers ORDER BY id").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hub.last_seq(&store, &store_group).await, seq, "no change logged after the edit settled");
    assert_eq!(rows(&shop_db, "SELECT id, updated_at FROM customers ORDER BY id").await, shop_rows);
    assert_eq!(rows(&store_db, "SELECT id, updated_at FROM customers ORDER BY id").await, store_rows);

    store_connector.stop().await;
    shop_connector.stop().await;
}
