//! Alert rule file text -> validated rules (or the error), against the
//! demo's process definitions so rules can name real processes and SLAs.
#![no_main]

use std::sync::OnceLock;

use domain::keys::KeyTypes;
use domain::process::definition::Processes;
use engine::alerts::rules::Rules;
use libfuzzer_sys::fuzz_target;

fn processes() -> &'static Processes {
    static PROCESSES: OnceLock<Processes> = OnceLock::new();
    PROCESSES.get_or_init(|| {
        let keys = KeyTypes::default();
        let texts = [
            include_str!("../../sample-data/processes/order-to-delivery.toml"),
            include_str!("../../sample-data/processes/production-delay.toml"),
            include_str!("../../sample-data/processes/quality-hold.toml"),
        ];
        Processes {
            list: texts
                .iter()
                .map(|t| Processes::parse(t, "demo.toml", &keys).unwrap())
                .collect(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Rules::parse_all([("fuzz.toml", text)], processes()) {
        let _ = e.to_string();
    }
});
