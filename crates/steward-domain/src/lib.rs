//! Steward's domain: identifiers, parsed values, CRM records, and the data
//! inventory from which policy (minimisation, purposes, roles, retention) is
//! derived. Pure: no I/O beyond reading an inventory file, no clocks, no
//! randomness except id generation.

pub mod art15;
pub mod deadlines;
pub mod export;
pub mod ids;
pub mod incident;
pub mod inventory;
pub mod receipt;
pub mod records;
pub mod retention;
pub mod ropa;
pub mod values;

pub use ids::{ContactId, DealId, InteractionId, OrganizationId, SubjectId, TokenId, UserId};
pub use inventory::{Inventory, InventoryError, LawfulBasis, Verb};
pub use records::{Deal, DealStage, FieldError, Interaction, InteractionKind, Organization};
