//! Contacts (the data subjects) and their interactions: create, read,
//! update, delete, list and search, with minimisation on every write and
//! purpose scoping on every read.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use steward_domain::inventory::{FieldKind, SearchKind, CONTACT, INTERACTION};
use steward_domain::records::{normalise_contact_field, search_words};
use steward_domain::{FieldError, InteractionId, InteractionKind, OrganizationId, SubjectId, Verb};
use steward_store::{ContactRow, IndexTerm, InteractionRow, StoreError, WriteOp};

use uuid::Uuid;

use crate::context::RequestContext;
use crate::crypto::{KeyringError, SubjectKey};
use crate::error::{ServiceError, ServiceResult};
use crate::Service;
use steward_crypto::{CryptoError, FieldAad};

/// A contact as a caller may see it: only the fields the request's purpose
/// needs. Fields absent here are left out of responses, not shown as null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactView {
    pub id: SubjectId,
    pub purposes: Vec<String>,
    pub fields: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// Processing is restricted (GDPR Art. 18): only compliance reads it.
    pub restricted: bool,
}

/// A page of results and the cursor for the next page, if any.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// How to pick contacts in a list.
#[derive(Debug, Clone, Default)]
pub struct ContactQuery {
    /// Exact match on a field the inventory marks `search = "exact"`
    /// (by default `email` and `phone`): (field, value).
    pub exact: Option<(String, String)>,
    /// Whole-word match over the name fields.
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

/// The pseudo-field under which word terms of all `search = "words"` fields
/// are indexed, so one word query searches every name field.
const WORDS: &str = "_words";

#[derive(Debug, Clone)]
pub struct InteractionView {
    pub id: InteractionId,
    pub contact_id: SubjectId,
    pub kind: InteractionKind,
    /// Absent when the purpose does not need it.
    pub summary: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InteractionInput {
    #[schemars(extend("enum" = steward_domain::InteractionKind::NAMES))]
    pub kind: String,
    #[schemars(length(max = 10000))]
    #[schemars(extend("pattern" = steward_domain::values::NOT_BLANK_PATTERN, "maxLength" = 10_000))]
    pub summary: String,
    #[serde(default)]
    #[schemars(extend("format" = "date-time"))]
    pub occurred_at: Option<String>,
}

pub(crate) fn parse_cursor<T: std::str::FromStr>(cursor: Option<&str>) -> ServiceResult<Option<T>> {
    cursor
        .map(|c| {
            c.parse::<T>()
                .map_err(|_| ServiceError::invalid("cursor", "is not a cursor returned by this list"))
        })
        .transpose()
}

pub(crate) fn page_size(limit: Option<u32>) -> ServiceResult<u32> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ServiceError::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        )),
    }
}

impl Service {
    /// Parses and normalises `fields` (null means "remove" and is returned
    /// as `None`). Collects every problem.
    fn parse_contact_fields(
        &self,
        fields: &Map<String, Value>,
    ) -> Result<BTreeMap<String, Option<String>>, Vec<FieldError>> {
        let mut out = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, value) in fields {
            if value.is_null() {
                if self.inventory.field(CONTACT, name).is_some() {
                    out.insert(name.clone(), None);
                } else {
                    errors.push(FieldError::new(name, "is not a contact field in the data inventory"));
                }
                continue;
            }
            match normalise_contact_field(&self.inventory, name, value) {
                Ok(v) => {
                    out.insert(name.clone(), Some(v));
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// Checks the collection purposes named in a write.
    fn parse_purposes(&self, purposes: &Value) -> Result<Vec<String>, FieldError> {
        let list = purposes
            .as_array()
            .ok_or_else(|| FieldError::new("purposes", "must be a list of purpose names"))?;
        if list.is_empty() {
            return Err(FieldError::new("purposes", "must name at least one purpose"));
        }
        let mut out: Vec<String> = Vec::with_capacity(list.len());
        for p in list {
            let name = p
                .as_str()
                .ok_or_else(|| FieldError::new("purposes", "must be a list of purpose names"))?;
            match self.inventory.purpose(name) {
                Some(purpose) if purpose.collection => {}
                Some(_) => {
                    return Err(FieldError::new(
                        "purposes",
                        format!("'{name}' is not a purpose data may be collected for"),
                    ))
                }
                None => {
                    let known: Vec<_> = self.inventory.collection_purposes().collect();
                    return Err(FieldError::new(
                        "purposes",
                        format!("must be among {}", known.join(", ")),
                    ));
                }
            }
            if !out.iter().any(|o| o == name) {
                out.push(name.to_string());
            }
        }
        Ok(out)
    }

    /// Data minimisation: every stored field must be needed by at least one
    /// collection purpose.
    pub(crate) fn check_minimal<'a>(
        &self,
        record_type: &str,
        fields: impl Iterator<Item = &'a String>,
        purposes: &[String],
    ) -> Vec<FieldError> {
        let allowed = self.inventory.fields_for_purposes(record_type, purposes);
        fields
            .filter(|f| !allowed.contains(f.as_str()))
            .map(|f| {
                FieldError::new(
                    f.as_str(),
                    format!(
                        "is not needed by any of the purposes the data is collected for ({})",
                        purposes.join(", ")
                    ),
                )
            })
            .collect()
    }

    /// Checks that referenced records exist.
    async fn check_references(&self, fields: &BTreeMap<String, String>) -> ServiceResult<Vec<FieldError>> {
        let mut errors = Vec::new();
        for (name, value) in fields {
            let Some(spec) = self.inventory.field(CONTACT, name) else {
                continue;
            };
            if spec.kind != FieldKind::Reference {
                continue;
            }
            let exists = match spec.references.as_deref() {
                Some("organization") => match value.parse::<OrganizationId>() {
                    Ok(id) => self.store.get_organization(id).await?.is_some(),
                    Err(_) => false,
                },
                Some("contact") => match value.parse::<SubjectId>() {
                    Ok(id) => self.store.get_contact(id).await?.is_some(),
                    Err(_) => false,
                },
                _ => true,
            };
            if !exists {
                errors.push(FieldError::new(name.as_str(), "refers to a record that does not exist"));
            }
        }
        Ok(errors)
    }

    /// The usable data key of a stored contact. A destroyed key (erased
    /// subject) reads as "not found".
    pub(crate) fn key_of(&self, row: &ContactRow) -> ServiceResult<SubjectKey> {
        self.crypto
            .subject_key(row.subject_id, row.key.as_ref())
            .map_err(|e| match e {
                KeyringError::Crypto(CryptoError::KeyDestroyed) => ServiceError::NotFound("contact"),
                other => {
                    tracing::error!(subject_id = %row.subject_id, error = %other, "subject key could not be unwrapped");
                    ServiceError::Internal(format!("the key of contact {} could not be unwrapped", row.subject_id))
                }
            })
    }

    pub(crate) fn seal_fields(
        &self,
        key: &SubjectKey,
        id: SubjectId,
        fields: &BTreeMap<String, String>,
    ) -> ServiceResult<Vec<(String, Vec<u8>)>> {
        fields
            .iter()
            .map(|(name, value)| {
                let aad = FieldAad {
                    record_type: CONTACT,
                    record_id: id.as_bytes(),
                    field: name,
                    subject_id: id.as_bytes(),
                };
                let sealed = self
                    .crypto
                    .seal(key, &aad, value)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                Ok((name.clone(), sealed))
            })
            .collect()
    }

    /// Decrypts the sealed fields of `row` that `wanted` admits (and only those).
    fn open_fields(
        &self,
        row: &ContactRow,
        key: &SubjectKey,
        wanted: impl Fn(&str) -> bool,
    ) -> ServiceResult<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (name, sealed) in &row.fields {
            if !wanted(name) {
                continue;
            }
            let id = row.subject_id.as_bytes();
            let aad = FieldAad {
                record_type: CONTACT,
                record_id: id,
                field: name,
                subject_id: id,
            };
            match self.crypto.open(key, &aad, sealed) {
                Ok(v) => {
                    out.insert(name.clone(), v);
                }
                Err(_) => {
                    tracing::error!(subject_id = %row.subject_id, field = %name, "stored field could not be decrypted");
                    return Err(ServiceError::Internal(format!(
                        "field {name} of contact {} could not be decrypted",
                        row.subject_id
                    )));
                }
            }
        }
        Ok(out)
    }

    /// The blind-index terms of a contact's fields.
    pub(crate) fn index_terms(&self, fields: &BTreeMap<String, String>) -> Vec<IndexTerm> {
        let mut terms = Vec::new();
        for (name, value) in fields {
            let Some(spec) = self.inventory.field(CONTACT, name) else {
                continue;
            };
            match spec.search {
                Some(SearchKind::Exact) => terms.push(IndexTerm {
                    term: self.crypto.blind().term(CONTACT, name, &exact_key(spec.kind, value)),
                    unique: spec.unique,
                }),
                Some(SearchKind::Words) => {
                    for w in search_words(value) {
                        terms.push(IndexTerm {
                            term: self.crypto.blind().term(CONTACT, WORDS, &w),
                            unique: false,
                        });
                    }
                }
                None => {}
            }
        }
        terms
    }

    /// Which unique field a duplicate came from, for a clear 409.
    async fn duplicate_field(&self, id: SubjectId, fields: &BTreeMap<String, String>) -> ServiceResult<Option<String>> {
        for (name, value) in fields {
            let Some(spec) = self.inventory.field(CONTACT, name) else {
                continue;
            };
            if spec.unique {
                let term = self.crypto.blind().term(CONTACT, name, &exact_key(spec.kind, value));
                let holders = self.store.find_contacts_by_term(&term, None, 2).await?;
                if holders.iter().any(|h| h.subject_id != id) {
                    return Ok(Some(name.clone()));
                }
            }
        }
        Ok(None)
    }

    fn conflict_for(field: Option<String>) -> ServiceError {
        match field {
            Some(f) => ServiceError::Conflict(format!("another contact already has this {f}")),
            None => ServiceError::Conflict("another contact already has one of these unique values".into()),
        }
    }

    /// The view of a contact for the request's purpose.
    fn view(&self, row: &ContactRow, key: &SubjectKey, purpose: &str) -> ServiceResult<ContactView> {
        let needed = self.inventory.fields_for_purpose(CONTACT, purpose);
        let fields = self.open_fields(row, key, |f| needed.iter().any(|n| n == f))?;
        Ok(ContactView {
            id: row.subject_id,
            purposes: row.purposes.clone(),
            fields,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
            restricted: row.restricted,
        })
    }

    /// Loads a contact the request may act on for its purpose, with its key.
    async fn usable_contact(
        &self,
        ctx: &RequestContext,
        id: SubjectId,
    ) -> ServiceResult<(ContactRow, SubjectKey, String)> {
        let purpose = self.require_purpose(ctx)?.to_string();
        let row = self
            .store
            .get_contact(id)
            .await?
            .ok_or(ServiceError::NotFound("contact"))?;
        let key = self.key_of(&row)?;
        self.purpose_usable(&purpose, &row).map_err(ServiceError::Forbidden)?;
        Ok((row, key, purpose))
    }

    /// Creates a contact from a JSON object of inventory fields plus
    /// `purposes` (default: the request's purpose). Returns every stored field.
    pub async fn create_contact(&self, ctx: &RequestContext, body: Map<String, Value>) -> ServiceResult<ContactView> {
        self.guard(ctx, "contact.create", None, self.create_contact_inner(ctx, body))
            .await
    }

    async fn create_contact_inner(
        &self,
        ctx: &RequestContext,
        mut body: Map<String, Value>,
    ) -> ServiceResult<ContactView> {
        self.require_action(ctx, CONTACT, Verb::Write)?;
        let purpose = self.require_purpose(ctx)?.to_string();
        let purposes_value = body
            .remove("purposes")
            .unwrap_or_else(|| Value::Array(vec![Value::String(purpose)]));
        let mut errors = Vec::new();
        let purposes = self
            .parse_purposes(&purposes_value)
            .map_err(|e| errors.push(e))
            .unwrap_or_default();
        let fields: BTreeMap<String, String> = match self.parse_contact_fields(&body) {
            Ok(f) => f.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect(),
            Err(e) => {
                errors.extend(e);
                BTreeMap::new()
            }
        };
        if !purposes.is_empty() {
            errors.extend(self.check_minimal(CONTACT, fields.keys(), &purposes));
        }
        if errors.is_empty() {
            errors.extend(self.check_references(&fields).await?);
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let (row, _, mut ops) = self.new_contact_ops(purposes, &fields)?;
        // A person erased before is not silently re-created: the writer
        // checks the proof of erasure in the creating transaction (its
        // cache is warm; a reader's is emptied by every commit).
        ops.splice(0..0, self.erasure_guards(fields.iter()));
        let id = row.subject_id;
        ops.push(self.audit_ok(
            ctx,
            "contact.create",
            Some(id),
            &[*id.as_uuid()],
            fields.keys().cloned().collect(),
        ));
        match self.store.write(ops).await {
            Ok(()) => {}
            Err(StoreError::Duplicate) => return Err(Self::conflict_for(self.duplicate_field(id, &fields).await?)),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(subject_id = %id, fields = fields.len(), "contact created");
        Ok(ContactView {
            id,
            purposes: row.purposes,
            fields,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: 1,
            restricted: false,
        })
    }

    pub async fn get_contact(&self, ctx: &RequestContext, id: SubjectId) -> ServiceResult<ContactView> {
        self.guard(ctx, "contact.read", Some(id), self.get_contact_inner(ctx, id))
            .await
    }

    async fn get_contact_inner(&self, ctx: &RequestContext, id: SubjectId) -> ServiceResult<ContactView> {
        self.require_action(ctx, CONTACT, Verb::Read)?;
        let (row, key, purpose) = self.usable_contact(ctx, id).await?;
        let view = self.view(&row, &key, &purpose)?;
        let fields = view.fields.keys().cloned().collect();
        self.audit_reads(vec![self.ok_record(
            ctx,
            "contact.read",
            Some(id),
            &[*id.as_uuid()],
            fields,
        )])
        .await?;
        Ok(view)
    }

    /// Applies a partial update: fields given replace stored ones, `null`
    /// removes one, `purposes` (if given) replaces the collection purposes.
    /// The result must still be minimal for its purposes.
    pub async fn update_contact(
        &self,
        ctx: &RequestContext,
        id: SubjectId,
        body: Map<String, Value>,
    ) -> ServiceResult<ContactView> {
        self.guard(
            ctx,
            "contact.update",
            Some(id),
            self.update_contact_inner(ctx, id, body),
        )
        .await
    }

    async fn update_contact_inner(
        &self,
        ctx: &RequestContext,
        id: SubjectId,
        mut body: Map<String, Value>,
    ) -> ServiceResult<ContactView> {
        self.require_action(ctx, CONTACT, Verb::Write)?;
        let (row, key, purpose) = self.usable_contact(ctx, id).await?;
        let mut errors = Vec::new();
        let purposes = match body.remove("purposes") {
            Some(v) => self.parse_purposes(&v).map_err(|e| errors.push(e)).unwrap_or_default(),
            None => row.purposes.clone(),
        };
        let changes = self
            .parse_contact_fields(&body)
            .map_err(|e| errors.extend(e))
            .unwrap_or_default();
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let mut fields = self.open_fields(&row, &key, |_| true)?;
        for (name, value) in &changes {
            match value {
                Some(v) => fields.insert(name.clone(), v.clone()),
                None => fields.remove(name),
            };
        }
        let mut errors = self.check_minimal(CONTACT, fields.keys(), &purposes);
        if errors.is_empty() {
            let changed: BTreeMap<String, String> = changes
                .iter()
                .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
                .collect();
            errors.extend(self.check_references(&changed).await?);
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let now = Utc::now().max(row.updated_at);
        let new_row = ContactRow {
            subject_id: id,
            purposes,
            fields: self.seal_fields(&key, id, &fields)?,
            created_at: row.created_at,
            updated_at: now,
            version: row.version + 1,
            key: None,
            restricted: row.restricted,
            consented: row.consented.clone(),
        };
        let terms = self.index_terms(&fields);
        let mut touched: Vec<String> = changes.keys().cloned().collect();
        if new_row.purposes != row.purposes {
            touched.push("purposes".into());
        }
        let audit = self.audit_ok(ctx, "contact.update", Some(id), &[*id.as_uuid()], touched);
        let update = WriteOp::UpdateContact {
            row: new_row.clone(),
            expected_version: row.version,
            terms,
        };
        // Setting an identifier to an erased person's (PATCH, rectification)
        // must not bring them back any more than a create may.
        let old_fields = self.open_fields(&row, &key, |f| changes.contains_key(f))?;
        let set: Vec<(&String, &String)> = changes
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .filter(|(k, v)| old_fields.get(*k) != Some(*v))
            .collect();
        let mut ops = self.erasure_guards(set.into_iter());
        ops.push(update);
        ops.push(audit);
        match self.store.write(ops).await {
            Ok(()) => {}
            Err(StoreError::Duplicate) => return Err(Self::conflict_for(self.duplicate_field(id, &fields).await?)),
            Err(StoreError::NotFound) => return Err(ServiceError::NotFound("contact")),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(subject_id = %id, changed = changes.len(), "contact updated");
        let needed = self.inventory.fields_for_purpose(CONTACT, &purpose);
        fields.retain(|k, _| needed.iter().any(|n| n == k));
        Ok(ContactView {
            id,
            purposes: new_row.purposes,
            fields,
            created_at: row.created_at,
            updated_at: now,
            version: new_row.version,
            restricted: new_row.restricted,
        })
    }

    /// Deletes a contact with its interactions and index terms; deals are
    /// kept but unlinked. (Erasure with crypto-shredding is the DSR's job.)
    pub async fn delete_contact(&self, ctx: &RequestContext, id: SubjectId) -> ServiceResult<()> {
        self.guard(ctx, "contact.delete", Some(id), self.delete_contact_inner(ctx, id))
            .await
    }

    async fn delete_contact_inner(&self, ctx: &RequestContext, id: SubjectId) -> ServiceResult<()> {
        self.require_action(ctx, CONTACT, Verb::Delete)?;
        self.usable_contact(ctx, id).await?;
        self.ensure_no_legal_hold(id).await?;
        let audit = self.audit_ok(ctx, "contact.delete", Some(id), &[*id.as_uuid()], vec![]);
        match self
            .store
            .write(vec![
                WriteOp::RequireNoLegalHold { subject_id: id },
                WriteOp::DeleteContact { subject_id: id },
                audit,
            ])
            .await
        {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Err(ServiceError::NotFound("contact")),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(subject_id = %id, "contact deleted");
        Ok(())
    }

    /// Crypto-shredding: destroys the subject's data key, so every
    /// ciphertext of the subject — in this database, its WAL, old pages and
    /// backups — becomes unreadable at once. The building block of erasure;
    /// only for the `compliance` purpose.
    pub async fn crypto_shred(&self, ctx: &RequestContext, id: SubjectId) -> ServiceResult<()> {
        self.guard(ctx, "subject.shred", Some(id), self.crypto_shred_inner(ctx, id))
            .await
    }

    async fn crypto_shred_inner(&self, ctx: &RequestContext, id: SubjectId) -> ServiceResult<()> {
        self.require_action(ctx, CONTACT, Verb::Delete)?;
        if ctx.purpose.as_deref() != Some(steward_domain::inventory::COMPLIANCE) {
            return Err(ServiceError::Forbidden(
                "destroying a subject's key is done for the compliance purpose only".into(),
            ));
        }
        self.ensure_no_legal_hold(id).await?;
        let audit = self.audit_ok(ctx, "subject.shred", Some(id), &[*id.as_uuid()], vec![]);
        match self
            .store
            .write(vec![
                WriteOp::RequireNoLegalHold { subject_id: id },
                WriteOp::DestroySubjectKey { subject_id: id },
                audit,
            ])
            .await
        {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Err(ServiceError::NotFound("contact")),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(subject_id = %id, "subject data key destroyed");
        Ok(())
    }

    /// Restricts processing of a subject's data (GDPR Art. 18), or lifts
    /// the restriction. Only for the `compliance` purpose.
    pub async fn set_restriction(&self, ctx: &RequestContext, id: SubjectId, restricted: bool) -> ServiceResult<()> {
        self.guard(ctx, "subject.restrict", Some(id), async {
            self.require_action(ctx, CONTACT, Verb::Write)?;
            if self.require_purpose(ctx)? != steward_domain::inventory::COMPLIANCE {
                return Err(ServiceError::Forbidden(
                    "restriction of processing is set for the compliance purpose only".into(),
                ));
            }
            let action = if restricted {
                "subject.restrict"
            } else {
                "subject.unrestrict"
            };
            let audit = self.audit_ok(ctx, action, Some(id), &[*id.as_uuid()], vec![]);
            match self
                .store
                .write(vec![
                    WriteOp::SetRestricted {
                        subject_id: id,
                        restricted,
                    },
                    audit,
                ])
                .await
            {
                Err(StoreError::NotFound) => Err(ServiceError::NotFound("contact")),
                other => other.map_err(ServiceError::from),
            }
        })
        .await
    }

    /// The ops that refuse a write (in its own transaction, with
    /// [`StoreError::Erased`]) if it sets an identifier of a person whose
    /// data was erased: every write that sets one — create, update, import,
    /// rectification, public consent — goes through here. Erasure keeps a
    /// proof of the e-mail address, so that is the identifier checked.
    pub(crate) fn erasure_guards<'a>(&self, fields: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<WriteOp> {
        fields
            .filter(|(name, _)| name.as_str() == "email")
            .map(|(_, value)| WriteOp::RequireNotErased {
                identifier_hash: self.identifier_hash(value),
            })
            .collect()
    }

    /// A new contact with its own data key: the row (fields sealed), its
    /// stored key, and the ops that insert both with the index terms.
    pub(crate) fn new_contact_ops(
        &self,
        purposes: Vec<String>,
        fields: &BTreeMap<String, String>,
    ) -> ServiceResult<(ContactRow, Option<steward_store::StoredKey>, Vec<WriteOp>)> {
        let id = SubjectId::new();
        let now = Utc::now();
        let (key, stored_key) = self
            .crypto
            .new_subject_key(id)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let row = ContactRow {
            subject_id: id,
            purposes,
            fields: self.seal_fields(&key, id, fields)?,
            created_at: now,
            updated_at: now,
            version: 1,
            key: None,
            restricted: false,
            consented: vec![],
        };
        let mut ops = vec![WriteOp::InsertContact {
            row: row.clone(),
            terms: self.index_terms(fields),
        }];
        if let Some(k) = stored_key.clone() {
            ops.push(WriteOp::InsertSubjectKey { subject_id: id, key: k });
        }
        Ok((row, stored_key, ops))
    }

    /// One decrypted field of a stored contact, if present.
    pub(crate) fn open_fields_pub(
        &self,
        row: &ContactRow,
        key: &SubjectKey,
        field: &str,
    ) -> ServiceResult<Option<String>> {
        Ok(self.open_fields(row, key, |f| f == field)?.remove(field))
    }

    /// Every decrypted field of a stored contact.
    pub(crate) fn open_all_fields(
        &self,
        row: &ContactRow,
        key: &SubjectKey,
    ) -> ServiceResult<BTreeMap<String, String>> {
        self.open_fields(row, key, |_| true)
    }

    /// An interaction with its summary, for exports.
    pub(crate) fn interaction_json(
        &self,
        row: &InteractionRow,
        key: &SubjectKey,
    ) -> ServiceResult<crate::dsr::ExportInteraction> {
        let v = self.interaction_view(row, key, steward_domain::inventory::COMPLIANCE)?;
        Ok(crate::dsr::ExportInteraction {
            id: *v.id.as_uuid(),
            kind: v.kind.as_str().into(),
            summary: v.summary,
            occurred_at: v.occurred_at,
            created_at: v.created_at,
        })
    }

    /// Lists contacts usable for the request's purpose, optionally by exact
    /// e-mail or by a word of their names. Contacts the purpose may not be
    /// used for are skipped.
    pub async fn list_contacts(&self, ctx: &RequestContext, query: &ContactQuery) -> ServiceResult<Page<ContactView>> {
        self.guard(ctx, "contact.list", None, self.list_contacts_inner(ctx, query))
            .await
    }

    async fn list_contacts_inner(
        &self,
        ctx: &RequestContext,
        query: &ContactQuery,
    ) -> ServiceResult<Page<ContactView>> {
        self.require_action(ctx, CONTACT, Verb::Read)?;
        let purpose = self.require_purpose(ctx)?.to_string();
        let limit = page_size(query.limit)?;
        let after: Option<SubjectId> = parse_cursor(query.cursor.as_deref())?;
        let mut words: Vec<String> = Vec::new();
        let rows = match (&query.exact, &query.q) {
            (Some((field, _)), Some(_)) => {
                return Err(ServiceError::BadRequest(format!(
                    "search by {} or by q, not both",
                    sanitize_name(field)
                )))
            }
            (Some((field, value)), None) => {
                let spec = self
                    .inventory
                    .field(CONTACT, field)
                    .filter(|f| f.search == Some(SearchKind::Exact))
                    .ok_or_else(|| {
                        ServiceError::BadRequest(format!("{} is not a field to search by", sanitize_name(field)))
                    })?;
                let normal = normalise_contact_field(&self.inventory, field, &Value::String(value.clone()))
                    .map_err(|e| ServiceError::Invalid(vec![e]))?;
                let term = self.crypto.blind().term(CONTACT, field, &exact_key(spec.kind, &normal));
                self.store.find_contacts_by_term(&term, after, limit).await?
            }
            (None, Some(q)) => {
                words = search_words(q).collect();
                let Some(first) = words.first() else {
                    return Err(ServiceError::invalid("q", "must contain at least one letter or digit"));
                };
                self.store
                    .find_contacts_by_term(&self.crypto.blind().term(CONTACT, WORDS, first), after, limit)
                    .await?
            }
            (None, None) => self.store.list_contacts(after, limit).await?,
        };
        let next_cursor = (rows.len() == limit as usize)
            .then(|| rows.last().map(|r| r.subject_id.to_string()))
            .flatten();
        let word_fields: Vec<&str> = self
            .inventory
            .record_type(CONTACT)
            .map(|rt| {
                rt.fields
                    .iter()
                    .filter(|(_, f)| f.search == Some(SearchKind::Words))
                    .map(|(n, _)| n.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            if self.purpose_usable(&purpose, row).is_err() {
                continue;
            }
            // Erased (crypto-shredded) subjects are not listed; a record that
            // fails to decrypt is logged by id and skipped, so one damaged
            // record does not take the whole list down.
            let Ok(key) = self.key_of(row) else { continue };
            if words.len() > 1 {
                // Further words must all occur in some searchable field.
                let names = self.open_fields(row, &key, |f| word_fields.contains(&f))?;
                let have: std::collections::BTreeSet<String> = names
                    .values()
                    .flat_map(|v| search_words(v).collect::<Vec<_>>())
                    .collect();
                if !words.iter().all(|w| have.contains(w)) {
                    continue;
                }
            }
            match self.view(row, &key, &purpose) {
                Ok(v) => items.push(v),
                Err(ServiceError::Internal(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let action = if query.exact.is_some() || query.q.is_some() {
            "contact.search"
        } else {
            "contact.list"
        };
        let audit = items
            .iter()
            .map(|v: &ContactView| {
                self.ok_record(
                    ctx,
                    action,
                    Some(v.id),
                    &[*v.id.as_uuid()],
                    v.fields.keys().cloned().collect(),
                )
            })
            .collect();
        self.audit_reads(audit).await?;
        Ok(Page { items, next_cursor })
    }

    fn interaction_view(
        &self,
        row: &InteractionRow,
        key: &SubjectKey,
        purpose: &str,
    ) -> ServiceResult<InteractionView> {
        let summary = if self.inventory.purpose_needs(INTERACTION, purpose, "summary") {
            let aad = FieldAad {
                record_type: INTERACTION,
                record_id: row.id.as_bytes(),
                field: "summary",
                subject_id: row.subject_id.as_bytes(),
            };
            Some(self.crypto.open(key, &aad, &row.summary).map_err(|_| {
                tracing::error!(interaction_id = %row.id, subject_id = %row.subject_id, "stored interaction could not be decrypted");
                ServiceError::Internal(format!("interaction {} could not be decrypted", row.id))
            })?)
        } else {
            None
        };
        Ok(InteractionView {
            id: row.id,
            contact_id: row.subject_id,
            kind: row.kind,
            summary,
            occurred_at: row.occurred_at,
            created_at: row.created_at,
        })
    }

    pub async fn add_interaction(
        &self,
        ctx: &RequestContext,
        contact: SubjectId,
        input: InteractionInput,
    ) -> ServiceResult<InteractionView> {
        self.guard(
            ctx,
            "interaction.create",
            Some(contact),
            self.add_interaction_inner(ctx, contact, input),
        )
        .await
    }

    async fn add_interaction_inner(
        &self,
        ctx: &RequestContext,
        contact: SubjectId,
        input: InteractionInput,
    ) -> ServiceResult<InteractionView> {
        self.require_action(ctx, INTERACTION, Verb::Write)?;
        let (row, key, purpose) = self.usable_contact(ctx, contact).await?;
        let mut errors = Vec::new();
        let kind = InteractionKind::parse(&input.kind)
            .map_err(|m| errors.push(FieldError::new("kind", m)))
            .ok();
        let summary = input.summary.trim().to_string();
        if summary.is_empty() {
            errors.push(FieldError::new("summary", "must not be empty"));
        } else if summary.chars().count() > 10_000 {
            errors.push(FieldError::new("summary", "must be at most 10000 characters"));
        }
        let now = Utc::now();
        let occurred_at = match input.occurred_at.as_deref() {
            None => Some(now),
            Some(s) => DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|_| {
                    errors.push(FieldError::new(
                        "occurred_at",
                        "must be an RFC 3339 date-time, e.g. 2026-01-31T09:30:00Z",
                    ))
                })
                .ok(),
        };
        let provided = ["kind".to_string(), "summary".to_string(), "occurred_at".to_string()];
        errors.extend(self.check_minimal(INTERACTION, provided.iter(), &row.purposes));
        let (Some(kind), Some(occurred_at), true) = (kind, occurred_at, errors.is_empty()) else {
            return Err(ServiceError::Invalid(errors));
        };
        let id = InteractionId::new();
        let aad = FieldAad {
            record_type: INTERACTION,
            record_id: id.as_bytes(),
            field: "summary",
            subject_id: contact.as_bytes(),
        };
        let sealed = self
            .crypto
            .seal(&key, &aad, &summary)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let irow = InteractionRow {
            id,
            subject_id: contact,
            kind,
            occurred_at,
            created_at: now,
            summary: sealed,
        };
        let fields = vec!["kind".to_string(), "summary".to_string(), "occurred_at".to_string()];
        let audit = self.audit_ok(ctx, "interaction.create", Some(contact), &[*id.as_uuid()], fields);
        match self
            .store
            .write(vec![WriteOp::InsertInteraction(irow.clone()), audit])
            .await
        {
            Err(StoreError::MissingReference) => return Err(ServiceError::NotFound("contact")),
            other => other?,
        }
        tracing::info!(subject_id = %contact, interaction_id = %id, "interaction added");
        self.interaction_view(&irow, &key, &purpose)
    }

    pub async fn list_interactions(
        &self,
        ctx: &RequestContext,
        contact: SubjectId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> ServiceResult<Page<InteractionView>> {
        self.guard(
            ctx,
            "interaction.read",
            Some(contact),
            self.list_interactions_inner(ctx, contact, cursor, limit),
        )
        .await
    }

    async fn list_interactions_inner(
        &self,
        ctx: &RequestContext,
        contact: SubjectId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> ServiceResult<Page<InteractionView>> {
        self.require_action(ctx, INTERACTION, Verb::Read)?;
        let (_, key, purpose) = self.usable_contact(ctx, contact).await?;
        let limit = page_size(limit)?;
        let rows = self
            .store
            .list_interactions(contact, parse_cursor(cursor)?, limit)
            .await?;
        let next_cursor = (rows.len() == limit as usize)
            .then(|| rows.last().map(|r| r.id.to_string()))
            .flatten();
        let items = rows
            .iter()
            .map(|r| self.interaction_view(r, &key, &purpose))
            .collect::<ServiceResult<Vec<_>>>()?;
        let ids: Vec<Uuid> = items.iter().map(|i: &InteractionView| *i.id.as_uuid()).collect();
        let fields = if items.iter().any(|i| i.summary.is_some()) {
            vec!["kind".into(), "summary".into(), "occurred_at".into()]
        } else {
            vec!["kind".into(), "occurred_at".into()]
        };
        self.audit_reads(vec![self.ok_record(
            ctx,
            "interaction.read",
            Some(contact),
            &ids,
            fields,
        )])
        .await?;
        Ok(Page { items, next_cursor })
    }
}

/// A field name as it may be echoed in a message.
fn sanitize_name(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

/// The normalised form of a value for exact-match indexing.
pub(crate) fn exact_key(kind: FieldKind, value: &str) -> String {
    match kind {
        FieldKind::Email | FieldKind::Text => value.to_lowercase(),
        _ => value.to_string(),
    }
}
