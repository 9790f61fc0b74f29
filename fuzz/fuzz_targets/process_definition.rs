//! Process definition file text -> a validated definition (or its error).
#![no_main]

use domain::keys::KeyTypes;
use domain::process::definition::Processes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Processes::parse(text, "fuzz.toml", &KeyTypes::default()) {
        let _ = e.to_string();
    }
});
