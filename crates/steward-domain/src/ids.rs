//! Identifiers: UUIDv7 newtypes, one per kind of record, so ids of different
//! kinds cannot be mixed up. UUIDv7 sorts by creation time, which keeps
//! B-tree inserts local and gives cursor pagination a stable order.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered (v7) id.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            #[must_use]
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            #[must_use]
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
            #[must_use]
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A contact, which is also the data subject: every personal-data row
    /// carries the subject id of the contact it belongs to.
    SubjectId
);
id_type!(
    /// An organisation (company).
    OrganizationId
);
id_type!(
    /// A deal (sales opportunity).
    DealId
);
id_type!(
    /// An interaction (note, call, e-mail, meeting) with a contact.
    InteractionId
);
id_type!(
    /// A staff user.
    UserId
);
id_type!(
    /// An API token or session token.
    TokenId
);

/// Contacts are the data subjects; the contact id and the subject id are one.
pub type ContactId = SubjectId;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_creation() {
        let a = SubjectId::new();
        let b = SubjectId::new();
        assert!(a < b);
        let parsed: SubjectId = a.to_string().parse().expect("parse");
        assert_eq!(parsed, a);
        assert!("not-a-uuid".parse::<SubjectId>().is_err());
    }
}
