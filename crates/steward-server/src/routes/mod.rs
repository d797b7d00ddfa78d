//! HTTP handlers: thin adapters that parse input, call the service and
//! render the result. No policy and no SQL here.

pub mod audit;
pub mod auth;
pub mod consent;
pub mod contacts;
pub mod crm;
pub mod dsr;
pub mod incidents;
pub mod meta;
pub mod reports;
pub mod retention;
pub mod users;

/// A list answer, `{"items": [...]}`, named after its item (`UserList`).
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "{T}List")]
pub struct Items<T> {
    pub items: Vec<T>,
}
