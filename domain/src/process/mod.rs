//! Process definitions: named flows rooted at one key type, with ordered
//! stages and SLAs between them, kept as TOML files in a deployment's
//! `processes_dir` (the demo's are in `sample-data/processes/`).
//! `definition` parses and validates them; every mistake names the file, the
//! line and the fix, and stops the start.

pub mod definition;
pub mod duration;
pub mod owners;
pub mod slo;

pub use definition::{DefinitionError, ProcessDef, Processes, SlaDef, StageDef};
pub use owners::{Holdings, SystemDef, UNOWNED};
pub use slo::{SloDef, SloTarget};
