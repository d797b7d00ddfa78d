//! SCIM discovery (RFC 7643 §5–7, RFC 7644 §4): what this service provider
//! supports, the schemas of its resources and their resource types —
//! truthful: PATCH yes, filter yes (equality on a few attributes), bulk,
//! sort, ETags and password changes no.

use serde_json::{json, Value};
use steward_service::scim::resource::{GROUP_SCHEMA, USER_SCHEMA};

pub const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";

/// Most resources in one list response (and the default page size).
pub const MAX_RESULTS: usize = 200;

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A SCIM token from `steward scim token create`, sent as Authorization: Bearer",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

/// One attribute definition (RFC 7643 §7).
struct Attr {
    name: &'static str,
    kind: &'static str,
    multi: bool,
    required: bool,
    case_exact: bool,
    mutability: &'static str,
    uniqueness: &'static str,
    description: &'static str,
    sub: Vec<Attr>,
}

const fn attr(name: &'static str, kind: &'static str, description: &'static str) -> Attr {
    Attr {
        name,
        kind,
        multi: false,
        required: false,
        case_exact: false,
        mutability: "readWrite",
        uniqueness: "none",
        description,
        sub: Vec::new(),
    }
}

impl Attr {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "type": self.kind,
            "multiValued": self.multi,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": "default",
            "uniqueness": self.uniqueness,
        });
        if !self.sub.is_empty() {
            v["subAttributes"] = Value::Array(self.sub.iter().map(Attr::to_json).collect());
        }
        if self.kind == "reference" {
            v["referenceTypes"] = json!(["User", "Group"]);
        }
        v
    }
}

fn user_attributes() -> Vec<Attr> {
    vec![
        Attr {
            required: true,
            uniqueness: "server",
            ..attr(
                "userName",
                "string",
                "The Steward username: 1 to 64 lower-case letters, digits, '.', '_' or '-' (upper case is lowered; not an e-mail address). Cannot be changed once created.",
            )
        },
        Attr {
            case_exact: true,
            ..attr("externalId", "string", "The identity provider's id of the account; unique")
        },
        Attr {
            sub: vec![
                attr("formatted", "string", "The full name"),
                attr("familyName", "string", "The family name"),
                attr("givenName", "string", "The given name"),
                attr("middleName", "string", "The middle name"),
            ],
            ..attr("name", "complex", "The person's name")
        },
        attr("displayName", "string", "The name to display"),
        Attr {
            multi: true,
            sub: vec![
                attr("value", "string", "An e-mail address"),
                attr("type", "string", "work, home or other"),
                attr("primary", "boolean", "The primary address (at most one)"),
            ],
            ..attr("emails", "complex", "E-mail addresses (at most 10)")
        },
        attr(
            "active",
            "boolean",
            "false disables the account and revokes its sessions and tokens",
        ),
        Attr {
            multi: true,
            sub: vec![
                attr("value", "string", "The group's id (a Steward role)"),
                Attr {
                    mutability: "readOnly",
                    ..attr("$ref", "reference", "The group's URI")
                },
                Attr {
                    mutability: "readOnly",
                    ..attr("display", "string", "The group's name")
                },
            ],
            ..attr(
                "groups",
                "complex",
                "The account's role as its one group; setting it (here or through the Group) moves the account to that role",
            )
        },
    ]
}

fn group_attributes() -> Vec<Attr> {
    vec![
        Attr {
            required: true,
            mutability: "readOnly",
            uniqueness: "server",
            ..attr("displayName", "string", "The Steward role (from the data inventory)")
        },
        Attr {
            multi: true,
            sub: vec![
                Attr {
                    mutability: "immutable",
                    ..attr("value", "string", "A User's id")
                },
                Attr {
                    mutability: "readOnly",
                    ..attr("$ref", "reference", "The User's URI")
                },
                Attr {
                    mutability: "readOnly",
                    ..attr("display", "string", "The User's userName")
                },
            ],
            ..attr(
                "members",
                "complex",
                "Accounts with this role; adding one moves it here, removing one moves it to the SCIM token's default role",
            )
        },
    ]
}

pub fn schemas(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": USER_SCHEMA,
            "name": "User",
            "description": "A Steward staff account",
            "attributes": user_attributes().iter().map(Attr::to_json).collect::<Vec<_>>(),
            "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{USER_SCHEMA}")},
        }),
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": GROUP_SCHEMA,
            "name": "Group",
            "description": "A Steward role",
            "attributes": group_attributes().iter().map(Attr::to_json).collect::<Vec<_>>(),
            "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{GROUP_SCHEMA}")},
        }),
    ]
}

pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "Staff accounts",
            "schema": USER_SCHEMA,
            "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
        }),
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Roles",
            "schema": GROUP_SCHEMA,
            "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")},
        }),
    ]
}
