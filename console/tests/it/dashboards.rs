//! The process definitions shipped in dashboards/processes are valid.

use collector::keys::KeyTypes;
use collector::process::Processes;

#[test]
fn shipped_process_definitions_load() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards/processes");
    let processes = Processes::load_dir(std::path::Path::new(dir), &KeyTypes::default())
        .unwrap_or_else(|e| panic!("{e}"));
    for id in ["order-to-delivery", "quality-hold", "production-delay"] {
        assert!(processes.get(id).is_some(), "{id}");
    }
}
