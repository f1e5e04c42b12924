//! Bitmaps and string bit operations (SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO LCS SUBSTR).
//!
//! Empty until that work lands; the rows of the command table go in `table.rs` between its
//! markers for this family.
