//! HTTP API integration tests: the real server on a random port, over real
//! storage (SQLite always; PostgreSQL when STEWARD_TEST_DATABASE_URL is set).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod audit;
mod breach;
mod browser;
mod consent;
mod drp;
mod dsr;
mod encryption;
mod helpers;
mod openapi;
mod reports;
mod retention;
mod scim;
mod stories;
