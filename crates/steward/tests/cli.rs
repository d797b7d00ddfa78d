//! Integration tests of the `steward` binary: each test runs the real
//! executable in its own temporary data dir and checks exit codes, output
//! and the files it leaves behind, as scripts and operators see them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "cli/support.rs"]
mod support;

#[path = "cli/admin.rs"]
mod admin;
#[path = "cli/audit.rs"]
mod audit;
#[path = "cli/config.rs"]
mod config;
#[path = "cli/contacts.rs"]
mod contacts;
#[path = "cli/doctor.rs"]
mod doctor;
#[path = "cli/init.rs"]
mod init;
#[path = "cli/keys.rs"]
mod keys;
#[path = "cli/readme_tour.rs"]
mod readme_tour;
#[path = "cli/retention.rs"]
mod retention;
#[path = "cli/scim.rs"]
mod scim;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/tls.rs"]
mod tls;
#[path = "cli/users.rs"]
mod users;
