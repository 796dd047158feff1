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
