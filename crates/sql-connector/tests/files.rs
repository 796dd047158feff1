//! The shipped files load: the example configuration and both mappings.

use std::path::Path;

use sharehub_connector::Direction;
use sharehub_sql_connector::{Config, MappingFile};

fn here(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn the_example_configuration_loads_with_its_defaults() {
    let config = Config::load(&here("connector.example.toml")).unwrap();
    assert_eq!(config.orgs.len(), 1);
    assert_eq!(config.orgs[0].settings.direction("customers"), Direction::Both, "no entities table: all both ways");
    assert!(config.mapping.ends_with("mappings/chinook.toml"));
    assert_eq!(config.sync.overlap, std::time::Duration::from_secs(30));
}

#[test]
fn both_shipped_mappings_load() {
    let chinook = MappingFile::load(&here("mappings/chinook.toml")).unwrap();
    assert_eq!(chinook.mapping.entity("customers").unwrap().targets.len(), 2);
    let crm = MappingFile::load(&here("mappings/crm.toml")).unwrap();
    assert_eq!(crm.tables.iter().find(|t| t.entity == "products").unwrap().key, "sku");
}

#[test]
fn a_table_name_that_is_not_an_identifier_is_refused() {
    let text = std::fs::read_to_string(here("mappings/chinook.toml")).unwrap();
    let broken = text.replacen(r#"table = "tracks""#, r#"table = "tracks; DROP TABLE x""#, 1);
    assert!(MappingFile::parse(&broken).is_err());
}

#[test]
fn a_misspelt_setting_or_a_zero_poll_interval_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(here("connector.example.toml")).unwrap();
    let load = |text: &str| {
        let path = dir.path().join("connector.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path).err().map(|e| e.to_string())
    };
    assert_eq!(load(&example), None, "the example itself loads");

    let misspelt = example.replacen("poll_interval", "poll_intervall", 1);
    let error = load(&misspelt).expect("a misspelt key is refused");
    assert!(error.contains("poll_intervall"), "{error}");
    let zero = example.replacen("poll_interval = ", "poll_interval = 0 #", 1);
    let error = load(&zero).expect("a zero poll interval is refused");
    assert!(error.contains("poll_interval"), "{error}");

    let mapping = std::fs::read_to_string(here("mappings/chinook.toml")).unwrap();
    let misspelt = mapping.replacen("convert = ", "convrt = ", 1);
    assert!(mapping.contains("convert = "), "the mapping has a conversion to misspell");
    let error = MappingFile::parse(&misspelt).expect_err("a misspelt mapping key is refused").to_string();
    assert!(error.contains("convrt"), "{error}");
}

#[tokio::test]
async fn an_unreachable_database_is_named_with_its_cause_at_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = std::time::Instant::now();
    let url = format!("postgres://someone:secret@127.0.0.1:{port}/crm");
    let error = sharehub_sql_connector::db::Db::connect(&url).await.err().expect("nothing listens there").to_string();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "answered after {:?}", started.elapsed());
    assert!(error.contains(&format!("127.0.0.1:{port}/crm")), "names the database: {error}");
    assert!(!error.contains("secret"), "without the password: {error}");
    assert!(!error.contains("timed out"), "the cause, not the pool's timeout: {error}");

    let missing = Path::new("/nonexistent-folder/app.db");
    let error = sharehub_sql_connector::db::Db::connect(&format!("sqlite://{}", missing.display())).await.err();
    let error = error.expect("no such folder").to_string();
    assert!(error.contains("/nonexistent-folder/app.db"), "names the file: {error}");
}
