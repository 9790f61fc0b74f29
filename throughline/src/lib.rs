//! The `throughline` binary's library: the command line (`cli`), the
//! configuration file, environment and flags composed per component, each
//! subcommand loading only the components it uses (`config`), what each
//! subcommand starts and how it stops (`run`), and the credential commands
//! (`credentials`, `terminal`). It wires the other
//! crates together and owns no domain rule, SQL or page of its own.

pub mod cli;
pub mod config;
pub mod credentials;
pub mod run;
pub mod terminal;
