//! Domain types and rules. Nothing here knows about HTTP or SQL.

pub mod app;
pub mod checkout;
pub mod currency;
pub mod customer;
pub mod invoice;
pub mod money;
pub mod portal;
pub mod profile;
