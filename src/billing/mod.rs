//! Domain types and rules. Nothing here knows about HTTP or SQL.

pub mod currency;
pub mod customer;
