//! Receivers: the only code that knows wire formats. Each decodes a request,
//! converts it by hand into canonical records ([`crate::model`]), hands the
//! valid ones to the [`crate::pipeline::Pipeline`] and answers the sender in
//! its protocol's terms.

pub mod otlp;
