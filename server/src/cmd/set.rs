//! Set commands.
//!
//! Empty until that work lands; the rows of the command table go in `table.rs` between its
//! markers for this family.
