//! The process definitions shipped in dashboards/processes are valid.

use collector::keys::KeyTypes;
use collector::process::Processes;

#[test]
fn shipped_process_definitions_load() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards/processes");
    let processes = Processes::load_dir(std::path::Path::new(dir), &KeyTypes::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(processes.get("order-to-delivery").is_some());
}
