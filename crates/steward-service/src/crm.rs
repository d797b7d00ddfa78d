//! Organisations and deals: business records. Organisations hold no
//! personal data; a deal may link a contact, so reading one respects the
//! role and the purpose's field needs from the inventory.

use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use steward_domain::inventory::{DEAL, ORGANIZATION};
use steward_domain::records::parse_domain;
use steward_domain::values::{Amount, CurrencyCode};
use steward_domain::{Deal, DealId, DealStage, FieldError, Organization, OrganizationId, SubjectId, Verb};
use steward_store::{StoreError, WriteOp};

use crate::contacts::{page_size, parse_cursor, Page};
use crate::context::RequestContext;
use crate::error::{ServiceError, ServiceResult};
use crate::Service;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationInput {
    #[schemars(length(max = 300), extend("pattern" = steward_domain::values::LINE_PATTERN))]
    pub name: String,
    #[serde(default)]
    #[schemars(extend(
        "pattern" = r"^\s*(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?\s*$",
        "maxLength" = 253
    ))]
    pub domain: Option<String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DealInput {
    #[schemars(length(max = 300), extend("pattern" = steward_domain::values::LINE_PATTERN))]
    pub title: String,
    #[serde(default)]
    #[schemars(extend("enum" = steward_domain::DealStage::NAMES_OR_NULL))]
    pub stage: Option<String>,
    /// Non-negative, at most two decimals: a JSON number or a decimal string.
    #[serde(default)]
    #[schemars(with = "Option<AmountSchema>")]
    pub amount: Option<Value>,
    /// ISO 4217 code, required with an amount.
    #[serde(default)]
    #[schemars(extend("enum" = steward_domain::values::CurrencyCode::all_or_null()))]
    pub currency: Option<String>,
    #[serde(default)]
    #[schemars(extend("format" = "uuid"))]
    pub organization_id: Option<String>,
    #[serde(default)]
    #[schemars(extend("format" = "uuid"))]
    pub contact_id: Option<String>,
}

/// How an amount may be written: a number or a decimal string.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum AmountSchema {
    #[schemars(extend("minimum" = 0, "maximum" = 9_999_999_999_999.99_f64, "multipleOf" = 0.01))]
    Number(f64),
    #[schemars(extend("pattern" = r"^\s*[0-9]{1,13}(\.[0-9]{1,2})?\s*$"))]
    Text(String),
}

/// A deal as the request's purpose may see it: `None` fields are omitted.
#[derive(Debug, Clone)]
pub struct DealView {
    pub deal: Deal,
    /// The deal fields the purpose needs (from the inventory).
    pub visible: Vec<String>,
}

fn text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let t = value.trim();
    if t.is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if t.chars().count() > max {
        errors.push(FieldError::new(field, format!("must be at most {max} characters")));
    } else if t.chars().any(char::is_control) {
        errors.push(FieldError::new(field, "must not contain control characters"));
    }
    t.to_string()
}

impl Service {
    pub async fn create_organization(
        &self,
        ctx: &RequestContext,
        input: OrganizationInput,
    ) -> ServiceResult<Organization> {
        self.guard(
            ctx,
            "organization.create",
            None,
            self.create_organization_inner(ctx, input),
        )
        .await
    }

    async fn create_organization_inner(
        &self,
        ctx: &RequestContext,
        input: OrganizationInput,
    ) -> ServiceResult<Organization> {
        self.require_action(ctx, ORGANIZATION, Verb::Write)?;
        let mut errors = Vec::new();
        let name = text("name", &input.name, 300, &mut errors);
        let domain = input
            .domain
            .as_deref()
            .map(parse_domain)
            .transpose()
            .map_err(|m| errors.push(FieldError::new("domain", m)))
            .ok()
            .flatten();
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let now = Utc::now();
        let org = Organization {
            id: OrganizationId::new(),
            name,
            domain,
            created_at: now,
            updated_at: now,
        };
        self.store.write(vec![WriteOp::InsertOrganization(org.clone())]).await?;
        tracing::info!(organization_id = %org.id, "organization created");
        Ok(org)
    }

    pub async fn get_organization(&self, ctx: &RequestContext, id: OrganizationId) -> ServiceResult<Organization> {
        self.guard(ctx, "organization.read", None, self.get_organization_inner(ctx, id))
            .await
    }

    async fn get_organization_inner(&self, ctx: &RequestContext, id: OrganizationId) -> ServiceResult<Organization> {
        self.require_action(ctx, ORGANIZATION, Verb::Read)?;
        self.store
            .get_organization(id)
            .await?
            .ok_or(ServiceError::NotFound("organization"))
    }

    pub async fn list_organizations(
        &self,
        ctx: &RequestContext,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> ServiceResult<Page<Organization>> {
        self.guard(
            ctx,
            "organization.list",
            None,
            self.list_organizations_inner(ctx, cursor, limit),
        )
        .await
    }

    async fn list_organizations_inner(
        &self,
        ctx: &RequestContext,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> ServiceResult<Page<Organization>> {
        self.require_action(ctx, ORGANIZATION, Verb::Read)?;
        let limit = page_size(limit)?;
        let items = self.store.list_organizations(parse_cursor(cursor)?, limit).await?;
        let next_cursor = (items.len() == limit as usize)
            .then(|| items.last().map(|o| o.id.to_string()))
            .flatten();
        Ok(Page { items, next_cursor })
    }

    pub async fn create_deal(&self, ctx: &RequestContext, input: DealInput) -> ServiceResult<DealView> {
        self.guard(ctx, "deal.create", None, self.create_deal_inner(ctx, input))
            .await
    }

    async fn create_deal_inner(&self, ctx: &RequestContext, input: DealInput) -> ServiceResult<DealView> {
        self.require_action(ctx, DEAL, Verb::Write)?;
        let purpose = self.require_purpose(ctx)?.to_string();
        let mut errors = Vec::new();
        let title = text("title", &input.title, 300, &mut errors);
        let stage = match input.stage.as_deref() {
            None => DealStage::Lead,
            Some(s) => DealStage::parse(s)
                .map_err(|m| errors.push(FieldError::new("stage", m)))
                .unwrap_or(DealStage::Lead),
        };
        let amount = match &input.amount {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Amount::from_json(n)
                .map_err(|e| errors.push(FieldError::new("amount", e.0)))
                .ok(),
            Some(Value::String(s)) => Amount::parse(s)
                .map_err(|e| errors.push(FieldError::new("amount", e.0)))
                .ok(),
            Some(_) => {
                errors.push(FieldError::new("amount", "must be a number"));
                None
            }
        };
        let currency = input
            .currency
            .as_deref()
            .map(CurrencyCode::parse)
            .transpose()
            .map_err(|e| errors.push(FieldError::new("currency", e.0)))
            .ok()
            .flatten();
        if amount.is_some() && currency.is_none() && !errors.iter().any(|e| e.field == "currency") {
            errors.push(FieldError::new("currency", "is required with an amount"));
        }
        let organization_id = match input.organization_id.as_deref().map(str::parse::<OrganizationId>) {
            None => None,
            Some(Ok(id)) if self.store.get_organization(id).await?.is_some() => Some(id),
            Some(_) => {
                errors.push(FieldError::new(
                    "organization_id",
                    "refers to an organization that does not exist",
                ));
                None
            }
        };
        let contact_id = match input.contact_id.as_deref().map(str::parse::<SubjectId>) {
            None => None,
            Some(Ok(id)) => match self.store.get_contact(id).await? {
                Some(c) => {
                    // Linking a deal to a person is processing their data.
                    if let Err(m) = self.purpose_usable(&purpose, &c) {
                        return Err(ServiceError::Forbidden(m));
                    }
                    Some(id)
                }
                None => {
                    errors.push(FieldError::new("contact_id", "refers to a contact that does not exist"));
                    None
                }
            },
            Some(Err(_)) => {
                errors.push(FieldError::new("contact_id", "refers to a contact that does not exist"));
                None
            }
        };
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let now = Utc::now();
        let deal = Deal {
            id: DealId::new(),
            title,
            stage,
            amount,
            currency,
            organization_id,
            contact_id,
            created_at: now,
            updated_at: now,
        };
        let mut ops = vec![WriteOp::InsertDeal(deal.clone())];
        if let Some(contact) = deal.contact_id {
            ops.push(self.audit_ok(
                ctx,
                "deal.create",
                Some(contact),
                &[*deal.id.as_uuid()],
                vec!["contact_id".into()],
            ));
        }
        match self.store.write(ops).await {
            Err(StoreError::MissingReference) => {
                return Err(ServiceError::Conflict("a linked record was deleted meanwhile".into()))
            }
            other => other?,
        }
        tracing::info!(deal_id = %deal.id, "deal created");
        Ok(self.deal_view(deal, &purpose))
    }

    fn deal_view(&self, deal: Deal, purpose: &str) -> DealView {
        DealView {
            deal,
            visible: self.inventory.fields_for_purpose(DEAL, purpose).to_vec(),
        }
    }

    pub async fn get_deal(&self, ctx: &RequestContext, id: DealId) -> ServiceResult<DealView> {
        self.guard(ctx, "deal.read", None, self.get_deal_inner(ctx, id)).await
    }

    async fn get_deal_inner(&self, ctx: &RequestContext, id: DealId) -> ServiceResult<DealView> {
        self.require_action(ctx, DEAL, Verb::Read)?;
        let purpose = self.require_purpose(ctx)?.to_string();
        let deal = self.store.get_deal(id).await?.ok_or(ServiceError::NotFound("deal"))?;
        let view = self.deal_view(deal, &purpose);
        self.audit_reads(self.deal_read_audit(ctx, std::slice::from_ref(&view)))
            .await?;
        Ok(view)
    }

    /// Reading a deal linked to a contact is an access to that person's data.
    fn deal_read_audit(&self, ctx: &RequestContext, views: &[DealView]) -> Vec<steward_audit::AuditRecord> {
        views
            .iter()
            .filter(|v| v.visible.iter().any(|f| f == "contact_id"))
            .filter_map(|v| v.deal.contact_id.map(|c| (c, v.deal.id)))
            .map(|(c, d)| self.ok_record(ctx, "deal.read", Some(c), &[*d.as_uuid()], vec!["contact_id".into()]))
            .collect()
    }

    pub async fn list_deals(
        &self,
        ctx: &RequestContext,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> ServiceResult<Page<DealView>> {
        self.guard(ctx, "deal.list", None, self.list_deals_inner(ctx, cursor, limit))
            .await
    }

    async fn list_deals_inner(
        &self,
        ctx: &RequestContext,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> ServiceResult<Page<DealView>> {
        self.require_action(ctx, DEAL, Verb::Read)?;
        let purpose = self.require_purpose(ctx)?.to_string();
        let limit = page_size(limit)?;
        let deals = self.store.list_deals(parse_cursor(cursor)?, limit).await?;
        let next_cursor = (deals.len() == limit as usize)
            .then(|| deals.last().map(|d| d.id.to_string()))
            .flatten();
        let items: Vec<DealView> = deals.into_iter().map(|d| self.deal_view(d, &purpose)).collect();
        self.audit_reads(self.deal_read_audit(ctx, &items)).await?;
        Ok(Page { items, next_cursor })
    }
}
