//! The storage conformance suite: one set of behaviours every backend must
//! show. `tests/conformance.rs` runs it against SQLite always and against
//! PostgreSQL when `STEWARD_TEST_DATABASE_URL` is set.
//!
//! Each case is an async function over a fresh, empty store.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use steward_domain::values::{Amount, CurrencyCode};
use steward_domain::{
    Deal, DealId, DealStage, InteractionId, InteractionKind, Organization, OrganizationId, SubjectId, TokenId, UserId,
};

use crate::{
    AuditFilter, ContactRow, CredentialRow, DsrRow, IndexTerm, InteractionRow, Store, StoreError, StoredKey, TokenKind,
    TokenRow, TrainingRow, UserRow, WriteOp,
};

/// Generates one `#[tokio::test]` per conformance case. `$setup` is an
/// expression of type `impl Future<Output = Option<F>>` where `F` has a
/// `store(&self) -> Arc<dyn Store>` method; `None` skips the test.
#[macro_export]
macro_rules! conformance_tests {
    ($setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(fixture) = $setup.await else {
                    eprintln!("skipped: backend not configured");
                    return;
                };
                $crate::conformance::$case(&*fixture.store()).await;
                fixture.store().close().await;
            }
        )*
    };
}

/// Every case, for the macro.
#[macro_export]
macro_rules! all_conformance_tests {
    ($setup:expr) => {
        $crate::conformance_tests!($setup;
            contact_lifecycle, unique_terms, paging, batch_atomicity, group_commit_isolates_failures,
            organizations_and_deals, interactions, users_and_tokens, sealed_bytes_and_instants, subject_and_instance_keys,
            repeated_terms_collapse, audit_log_appends_atomically, token_revocation_and_use,
            user_updates_and_lockout, credentials_and_steps, recovery_codes, training_records, settings_upsert,
            consent_records_and_notices,
            restriction_of_processing, data_subject_requests, read_audit_entries,
            legal_hold_guard, audit_queries_by_subject, erasure_proof_guard, pending_consents_are_used_once,
            audit_queries_by_user_and_token, incidents_register_and_entries, retention_reads_and_purges,
            scim_tokens_are_stored_revoked_and_touched, scim_users_upsert_and_look_up,
            drp_agents_requests_and_nonces);
    };
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 123_456_000)
        .single()
        .unwrap_or_default()
}

fn contact(fields: &[(&str, &[u8])]) -> ContactRow {
    ContactRow {
        subject_id: SubjectId::new(),
        purposes: vec!["sales".into(), "customer_service".into()],
        fields: fields.iter().map(|(n, v)| ((*n).to_string(), v.to_vec())).collect(),
        created_at: t(0),
        updated_at: t(0),
        version: 1,
        key: None,
        restricted: false,
        consented: vec![],
    }
}

fn term(s: &str, unique: bool) -> IndexTerm {
    IndexTerm {
        term: s.as_bytes().to_vec(),
        unique,
    }
}

async fn insert(store: &dyn Store, row: &ContactRow, terms: Vec<IndexTerm>) {
    store
        .write(vec![WriteOp::InsertContact {
            row: row.clone(),
            terms,
        }])
        .await
        .expect("insert contact");
}

pub async fn contact_lifecycle(store: &dyn Store) {
    let mut row = contact(&[("given_name", b"sealed-1"), ("email", b"sealed-2")]);
    insert(store, &row, vec![term("e1", true)]).await;
    assert_eq!(store.get_contact(row.subject_id).await.expect("get"), Some(row.clone()));
    assert_eq!(store.count_contacts().await.expect("count"), 1);

    let mut updated = row.clone();
    updated.fields = vec![("given_name".into(), b"sealed-3".to_vec())];
    updated.purposes = vec!["sales".into()];
    updated.updated_at = t(10);
    updated.version = 2;
    store
        .write(vec![WriteOp::UpdateContact {
            row: updated.clone(),
            expected_version: 1,
            terms: vec![term("e2", true)],
        }])
        .await
        .expect("update");
    assert_eq!(
        store.get_contact(row.subject_id).await.expect("get"),
        Some(updated.clone())
    );
    // Terms were replaced.
    assert!(store
        .find_contacts_by_term(b"e1", None, 10)
        .await
        .expect("find")
        .is_empty());
    assert_eq!(
        store.find_contacts_by_term(b"e2", None, 10).await.expect("find").len(),
        1
    );

    // A stale version is refused and changes nothing.
    row.version = 3;
    let stale = store
        .write(vec![WriteOp::UpdateContact {
            row: row.clone(),
            expected_version: 1,
            terms: vec![],
        }])
        .await;
    assert!(matches!(stale, Err(StoreError::VersionConflict)), "{stale:?}");
    assert_eq!(store.get_contact(row.subject_id).await.expect("get"), Some(updated));

    let missing = contact(&[]);
    let r = store
        .write(vec![WriteOp::UpdateContact {
            row: missing.clone(),
            expected_version: 1,
            terms: vec![],
        }])
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");

    store
        .write(vec![WriteOp::DeleteContact {
            subject_id: row.subject_id,
        }])
        .await
        .expect("delete");
    assert_eq!(store.get_contact(row.subject_id).await.expect("get"), None);
    assert!(store
        .find_contacts_by_term(b"e2", None, 10)
        .await
        .expect("find")
        .is_empty());
    let again = store
        .write(vec![WriteOp::DeleteContact {
            subject_id: row.subject_id,
        }])
        .await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
    let dup_id = contact(&[]);
    insert(store, &dup_id, vec![]).await;
    let dup = store
        .write(vec![WriteOp::InsertContact {
            row: dup_id,
            terms: vec![],
        }])
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate)), "{dup:?}");
}

pub async fn unique_terms(store: &dyn Store) {
    let a = contact(&[("email", b"a")]);
    insert(store, &a, vec![term("mail:x", true), term("word:smith", false)]).await;
    let b = contact(&[("email", b"b")]);
    let r = store
        .write(vec![WriteOp::InsertContact {
            row: b.clone(),
            terms: vec![term("mail:x", true)],
        }])
        .await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");
    assert_eq!(
        store.get_contact(b.subject_id).await.expect("get"),
        None,
        "a refused insert leaves nothing"
    );

    // Non-unique terms may be shared.
    insert(store, &b, vec![term("mail:y", true), term("word:smith", false)]).await;
    let smiths = store
        .find_contacts_by_term(b"word:smith", None, 10)
        .await
        .expect("find");
    assert_eq!(
        smiths.iter().map(|c| c.subject_id).collect::<Vec<_>>(),
        vec![a.subject_id, b.subject_id]
    );

    // Taking another contact's unique term by update is refused atomically.
    let mut b2 = b.clone();
    b2.version = 2;
    let r = store
        .write(vec![WriteOp::UpdateContact {
            row: b2.clone(),
            expected_version: 1,
            terms: vec![term("mail:x", true)],
        }])
        .await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");
    assert_eq!(
        store.get_contact(b.subject_id).await.expect("get").map(|c| c.version),
        Some(1)
    );
    assert_eq!(
        store
            .find_contacts_by_term(b"mail:y", None, 10)
            .await
            .expect("find")
            .len(),
        1
    );

    // Once the holder is gone the term is free.
    store
        .write(vec![WriteOp::DeleteContact {
            subject_id: a.subject_id,
        }])
        .await
        .expect("delete");
    store
        .write(vec![WriteOp::UpdateContact {
            row: b2,
            expected_version: 1,
            terms: vec![term("mail:x", true)],
        }])
        .await
        .expect("update takes the freed term");
}

pub async fn paging(store: &dyn Store) {
    let mut ids = Vec::new();
    for i in 0..25 {
        let c = contact(&[("n", format!("{i}").as_bytes())]);
        let terms = if i % 2 == 0 { vec![term("even", false)] } else { vec![] };
        insert(store, &c, terms).await;
        ids.push(c.subject_id);
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_contacts(after, 10).await.expect("list");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        after = page.last().map(|c| c.subject_id);
        seen.extend(page.into_iter().map(|c| c.subject_id));
    }
    assert_eq!(seen, ids, "pages cover every contact once, in id order");

    let mut evens = Vec::new();
    let mut after = None;
    loop {
        let page = store.find_contacts_by_term(b"even", after, 4).await.expect("find");
        if page.is_empty() {
            break;
        }
        after = page.last().map(|c| c.subject_id);
        evens.extend(page.into_iter().map(|c| c.subject_id));
    }
    let expected: Vec<_> = ids.iter().step_by(2).copied().collect();
    assert_eq!(evens, expected);
    assert_eq!(
        store.list_contacts(None, 0).await.expect("list").len(),
        1,
        "limit is clamped to at least 1"
    );
}

pub async fn batch_atomicity(store: &dyn Store) {
    let c = contact(&[("x", b"1")]);
    let orphan = InteractionRow {
        id: InteractionId::new(),
        subject_id: SubjectId::new(),
        kind: InteractionKind::Call,
        occurred_at: t(1),
        created_at: t(1),
        summary: b"sealed".to_vec(),
    };
    let r = store
        .write(vec![
            WriteOp::InsertContact {
                row: c.clone(),
                terms: vec![term("t", true)],
            },
            WriteOp::InsertInteraction(orphan),
        ])
        .await;
    assert!(matches!(r, Err(StoreError::MissingReference)), "{r:?}");
    assert_eq!(
        store.get_contact(c.subject_id).await.expect("get"),
        None,
        "the whole batch rolled back"
    );
    assert!(store
        .find_contacts_by_term(b"t", None, 10)
        .await
        .expect("find")
        .is_empty());
    assert_eq!(store.count_contacts().await.expect("count"), 0);
}

pub async fn group_commit_isolates_failures(store: &dyn Store) {
    let taken = contact(&[]);
    insert(store, &taken, vec![term("taken", true)]).await;
    let mut rows = Vec::new();
    for i in 0..200 {
        let c = contact(&[("i", format!("{i}").as_bytes())]);
        let terms = if i % 10 == 5 {
            vec![term("taken", true)]
        } else {
            vec![term(&format!("u{i}"), true)]
        };
        rows.push((c, terms));
    }
    let results = futures_join_all(store, &rows).await;
    for (i, (result, (row, _))) in results.iter().zip(&rows).enumerate() {
        let stored = store.get_contact(row.subject_id).await.expect("get");
        if i % 10 == 5 {
            assert!(matches!(result, Err(StoreError::Duplicate)), "{i}: {result:?}");
            assert_eq!(stored, None);
        } else {
            assert!(result.is_ok(), "{i}: {result:?}");
            assert_eq!(stored.as_ref(), Some(row));
        }
    }
    assert_eq!(store.count_contacts().await.expect("count"), 181);
}

/// Issues every write concurrently (so a backend can group them) and
/// returns the results in order.
async fn futures_join_all(store: &dyn Store, rows: &[(ContactRow, Vec<IndexTerm>)]) -> Vec<Result<(), StoreError>> {
    let futs: Vec<_> = rows
        .iter()
        .map(|(row, terms)| {
            store.write(vec![WriteOp::InsertContact {
                row: row.clone(),
                terms: terms.clone(),
            }])
        })
        .collect();
    let mut out = Vec::with_capacity(futs.len());
    let mut pinned = futs;
    // Poll all futures concurrently without an extra dependency.
    let mut done: Vec<Option<Result<(), StoreError>>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => done[i] = Some(r),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    for d in done {
        out.push(d.unwrap_or(Err(StoreError::Backend("not polled".into()))));
    }
    out
}

pub async fn organizations_and_deals(store: &dyn Store) {
    let org = Organization {
        id: OrganizationId::new(),
        name: "Acme".into(),
        domain: Some("acme.test".into()),
        created_at: t(0),
        updated_at: t(0),
    };
    let org2 = Organization {
        id: OrganizationId::new(),
        name: "Beta".into(),
        domain: None,
        created_at: t(1),
        updated_at: t(1),
    };
    store
        .write(vec![
            WriteOp::InsertOrganization(org.clone()),
            WriteOp::InsertOrganization(org2.clone()),
        ])
        .await
        .expect("orgs");
    assert_eq!(store.get_organization(org.id).await.expect("get"), Some(org.clone()));
    assert_eq!(
        store.list_organizations(None, 10).await.expect("list"),
        vec![org.clone(), org2.clone()]
    );
    assert_eq!(
        store.list_organizations(Some(org.id), 10).await.expect("list"),
        vec![org2]
    );

    let person = contact(&[]);
    insert(store, &person, vec![]).await;
    let deal = Deal {
        id: DealId::new(),
        title: "Renewal".into(),
        stage: DealStage::Proposal,
        amount: Some(Amount::from_minor(123_456)),
        currency: CurrencyCode::parse("EUR").ok(),
        organization_id: Some(org.id),
        contact_id: Some(person.subject_id),
        created_at: t(2),
        updated_at: t(3),
    };
    let bare = Deal {
        id: DealId::new(),
        title: "Bare".into(),
        stage: DealStage::Lead,
        amount: None,
        currency: None,
        organization_id: None,
        contact_id: None,
        created_at: t(4),
        updated_at: t(4),
    };
    store
        .write(vec![
            WriteOp::InsertDeal(deal.clone()),
            WriteOp::InsertDeal(bare.clone()),
        ])
        .await
        .expect("deals");
    assert_eq!(store.get_deal(deal.id).await.expect("get"), Some(deal.clone()));
    assert_eq!(
        store.list_deals(None, 10).await.expect("list"),
        vec![deal.clone(), bare]
    );

    let bad = Deal {
        id: DealId::new(),
        organization_id: Some(OrganizationId::new()),
        ..deal.clone()
    };
    let r = store.write(vec![WriteOp::InsertDeal(bad)]).await;
    assert!(matches!(r, Err(StoreError::MissingReference)), "{r:?}");
    assert_eq!(
        store
            .deals_of_subject(person.subject_id)
            .await
            .expect("deals of subject"),
        vec![deal.clone()],
        "deals linked to a subject, by index"
    );

    // Deleting the contact unlinks, but keeps, the deal.
    store
        .write(vec![WriteOp::DeleteContact {
            subject_id: person.subject_id,
        }])
        .await
        .expect("delete");
    let kept = store.get_deal(deal.id).await.expect("get").expect("deal kept");
    assert_eq!(kept.contact_id, None);
    assert_eq!(kept.organization_id, Some(org.id));
    assert!(store
        .deals_of_subject(person.subject_id)
        .await
        .expect("deals")
        .is_empty());
    assert_eq!(store.get_deal(DealId::new()).await.expect("get"), None);
}

pub async fn interactions(store: &dyn Store) {
    let a = contact(&[]);
    let b = contact(&[]);
    insert(store, &a, vec![]).await;
    insert(store, &b, vec![]).await;
    let mut mine = Vec::new();
    for (i, kind) in InteractionKind::ALL.into_iter().enumerate() {
        let row = InteractionRow {
            id: InteractionId::new(),
            subject_id: a.subject_id,
            kind,
            occurred_at: t(i as i64 * 60),
            created_at: t(1000),
            summary: format!("sealed {i}").into_bytes(),
        };
        store
            .write(vec![WriteOp::InsertInteraction(row.clone())])
            .await
            .expect("insert");
        mine.push(row);
    }
    assert_eq!(
        store.list_interactions(a.subject_id, None, 10).await.expect("list"),
        mine
    );
    assert_eq!(
        store
            .list_interactions(a.subject_id, Some(mine[1].id), 2)
            .await
            .expect("list"),
        mine[2..4].to_vec()
    );
    assert!(store
        .list_interactions(b.subject_id, None, 10)
        .await
        .expect("list")
        .is_empty());
    // A narrowed erasure: the subject's interactions and export bundles go,
    // the contact and other subjects' records stay.
    let other = InteractionRow {
        id: InteractionId::new(),
        subject_id: b.subject_id,
        kind: InteractionKind::ALL[0],
        occurred_at: t(5),
        created_at: t(5),
        summary: b"sealed other".to_vec(),
    };
    let bundle = crate::ExportBundleRow {
        dsr_id: uuid::Uuid::now_v7(),
        subject_id: b.subject_id,
        sealed: vec![5; 40],
        created_at: t(1),
        expires_at: t(50),
    };
    store
        .write(vec![
            WriteOp::InsertInteraction(other.clone()),
            WriteOp::PutExportBundle(Box::new(bundle.clone())),
        ])
        .await
        .expect("insert");
    store
        .write(vec![WriteOp::DeleteSubjectRecords {
            subject_id: b.subject_id,
        }])
        .await
        .expect("delete the subject's records");
    assert!(store
        .list_interactions(b.subject_id, None, 10)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(store.get_export_bundle(bundle.dsr_id).await.expect("bundle"), None);
    assert!(
        store.get_contact(b.subject_id).await.expect("get").is_some(),
        "the contact stays"
    );
    assert_eq!(
        store.list_interactions(a.subject_id, None, 10).await.expect("list"),
        mine
    );
    let r = store
        .write(vec![WriteOp::DeleteSubjectRecords {
            subject_id: SubjectId::new(),
        }])
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    store
        .write(vec![WriteOp::DeleteContact {
            subject_id: a.subject_id,
        }])
        .await
        .expect("delete");
    assert!(
        store
            .list_interactions(a.subject_id, None, 10)
            .await
            .expect("list")
            .is_empty(),
        "interactions go with their subject"
    );
}

pub async fn users_and_tokens(store: &dyn Store) {
    assert_eq!(store.count_users().await.expect("count"), 0);
    let user = UserRow {
        id: UserId::new(),
        username: "alice".into(),
        role: "sales".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        disabled: false,
        created_at: t(0),
        failed_logins: 0,
        locked_until: None,
    };
    store
        .write(vec![WriteOp::InsertUser(user.clone())])
        .await
        .expect("user");
    let dup = UserRow {
        id: UserId::new(),
        ..user.clone()
    };
    let r = store.write(vec![WriteOp::InsertUser(dup)]).await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");
    assert_eq!(
        store.get_user_by_username("alice").await.expect("get"),
        Some(user.clone())
    );
    assert_eq!(store.get_user_by_username("ALICE").await.expect("get"), None);
    assert_eq!(store.get_user(user.id).await.expect("get"), Some(user.clone()));
    assert_eq!(store.count_users().await.expect("count"), 1);

    let token = TokenRow {
        id: TokenId::new(),
        user_id: user.id,
        kind: TokenKind::Api,
        name: Some("ci".into()),
        hash: vec![7; 32],
        created_at: t(5),
        expires_at: Some(t(5) + Duration::days(30)),
        revoked_at: None,
        last_used_at: None,
        purpose: Some("sales".into()),
        mfa: false,
    };
    let session = TokenRow {
        id: TokenId::new(),
        kind: TokenKind::Session,
        name: None,
        hash: vec![8; 32],
        expires_at: None,
        ..token.clone()
    };
    store
        .write(vec![
            WriteOp::InsertToken(token.clone()),
            WriteOp::InsertToken(session.clone()),
        ])
        .await
        .expect("tokens");
    assert_eq!(
        store.get_token_by_hash(&[7; 32]).await.expect("get"),
        Some((token, user.clone()))
    );
    assert_eq!(
        store.get_token_by_hash(&[8; 32]).await.expect("get"),
        Some((session, user))
    );
    assert_eq!(store.get_token_by_hash(&[9; 32]).await.expect("get"), None);
    let orphan = TokenRow {
        id: TokenId::new(),
        user_id: UserId::new(),
        kind: TokenKind::Api,
        name: None,
        hash: vec![1],
        created_at: t(0),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        purpose: None,
        mfa: false,
    };
    let r = store.write(vec![WriteOp::InsertToken(orphan)]).await;
    assert!(matches!(r, Err(StoreError::MissingReference)), "{r:?}");
}

pub async fn sealed_bytes_and_instants(store: &dyn Store) {
    let all_bytes: Vec<u8> = (0..=255).collect();
    let mut row = contact(&[("empty", b""), ("binary", &all_bytes), ("zero", b"\0\0")]);
    row.created_at = Utc
        .timestamp_opt(1_234_567_890, 987_654_000)
        .single()
        .unwrap_or_default();
    row.updated_at = row.created_at + Duration::microseconds(1);
    insert(
        store,
        &row,
        vec![IndexTerm {
            term: all_bytes.clone(),
            unique: false,
        }],
    )
    .await;
    let got = store.get_contact(row.subject_id).await.expect("get").expect("present");
    assert_eq!(got, row, "sealed bytes and microsecond instants round-trip exactly");
    let found: BTreeSet<_> = store
        .find_contacts_by_term(&all_bytes, None, 5)
        .await
        .expect("find")
        .into_iter()
        .map(|c| c.subject_id)
        .collect();
    assert_eq!(found, BTreeSet::from([row.subject_id]));
    store.ping().await.expect("ping");
}

fn stored(master: &str, n: u8) -> StoredKey {
    StoredKey {
        master_key_id: master.into(),
        version: 1,
        wrapped: vec![n; 60],
    }
}

pub async fn subject_and_instance_keys(store: &dyn Store) {
    let mut ids = Vec::new();
    for i in 0..5u8 {
        let c = contact(&[("f", &[i])]);
        store
            .write(vec![
                WriteOp::InsertContact {
                    row: c.clone(),
                    terms: vec![term("shared", false)],
                },
                WriteOp::InsertSubjectKey {
                    subject_id: c.subject_id,
                    key: stored("m1", i),
                },
            ])
            .await
            .expect("insert with key");
        ids.push(c.subject_id);
    }
    let got = store.get_contact(ids[0]).await.expect("get").expect("present");
    assert_eq!(got.key, Some(stored("m1", 0)), "reads carry the wrapped key");
    assert!(store
        .list_contacts(None, 10)
        .await
        .expect("list")
        .iter()
        .all(|c| c.key.is_some()));
    assert!(store
        .find_contacts_by_term(b"shared", None, 10)
        .await
        .expect("find")
        .iter()
        .all(|c| c.key.is_some()));

    let r = store
        .write(vec![WriteOp::InsertSubjectKey {
            subject_id: SubjectId::new(),
            key: stored("m1", 9),
        }])
        .await;
    assert!(matches!(r, Err(StoreError::MissingReference)), "{r:?}");
    let r = store
        .write(vec![WriteOp::InsertSubjectKey {
            subject_id: ids[0],
            key: stored("m1", 9),
        }])
        .await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");

    // Paging over keys of one master key.
    let page1 = store.list_subject_keys("m1", None, 3).await.expect("keys");
    let page2 = store
        .list_subject_keys("m1", page1.last().map(|k| k.0), 3)
        .await
        .expect("keys");
    let all: Vec<SubjectId> = page1.iter().chain(&page2).map(|k| k.0).collect();
    assert_eq!(all, ids);
    assert_eq!(store.count_subject_keys_not_under("m2").await.expect("count"), 5);

    // Rewrapping moves a key to another master key, once.
    store
        .write(vec![WriteOp::RewrapSubjectKey {
            subject_id: ids[1],
            from_master: "m1".into(),
            key: stored("m2", 42),
        }])
        .await
        .expect("rewrap");
    let again = store
        .write(vec![WriteOp::RewrapSubjectKey {
            subject_id: ids[1],
            from_master: "m1".into(),
            key: stored("m2", 43),
        }])
        .await;
    assert!(matches!(again, Err(StoreError::VersionConflict)), "{again:?}");
    assert_eq!(
        store.get_contact(ids[1]).await.expect("get").and_then(|c| c.key),
        Some(stored("m2", 42))
    );
    assert_eq!(store.count_subject_keys_not_under("m2").await.expect("count"), 4);
    assert_eq!(store.list_subject_keys("m2", None, 10).await.expect("keys").len(), 1);

    // Destroying a key leaves the (unreadable) row without a key.
    store
        .write(vec![WriteOp::DestroySubjectKey { subject_id: ids[2] }])
        .await
        .expect("destroy");
    let shredded = store.get_contact(ids[2]).await.expect("get").expect("row kept");
    assert_eq!(shredded.key, None);
    let r = store
        .write(vec![WriteOp::DestroySubjectKey { subject_id: ids[2] }])
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    // Deleting a contact deletes its key.
    store
        .write(vec![WriteOp::DeleteContact { subject_id: ids[3] }])
        .await
        .expect("delete");
    assert_eq!(store.count_subject_keys_not_under("m2").await.expect("count"), 2);

    // Instance keys: insert, then replace.
    assert!(store.get_instance_keys().await.expect("instance").is_empty());
    store
        .write(vec![
            WriteOp::PutInstanceKey {
                name: "token".into(),
                key: stored("m1", 1),
            },
            WriteOp::PutInstanceKey {
                name: "index".into(),
                key: stored("m1", 2),
            },
        ])
        .await
        .expect("put");
    store
        .write(vec![WriteOp::PutInstanceKey {
            name: "token".into(),
            key: stored("m2", 3),
        }])
        .await
        .expect("replace");
    assert_eq!(
        store.get_instance_keys().await.expect("instance"),
        vec![
            ("index".to_string(), stored("m1", 2)),
            ("token".to_string(), stored("m2", 3))
        ]
    );
}

pub async fn repeated_terms_collapse(store: &dyn Store) {
    let c = contact(&[]);
    insert(
        store,
        &c,
        vec![
            term("mary", false),
            term("mary", false),
            term("m@x", true),
            term("m@x", true),
        ],
    )
    .await;
    assert_eq!(
        store
            .find_contacts_by_term(b"mary", None, 10)
            .await
            .expect("find")
            .len(),
        1
    );
    let mut updated = c.clone();
    updated.version = 2;
    store
        .write(vec![WriteOp::UpdateContact {
            row: updated,
            expected_version: 1,
            terms: vec![term("x", false), term("x", false)],
        }])
        .await
        .expect("update with repeated terms");
}

fn legal_hold(subject: SubjectId, at: i64) -> crate::LegalHoldRow {
    crate::LegalHoldRow {
        id: uuid::Uuid::now_v7(),
        subject_id: subject,
        reason: "litigation".into(),
        created_by: None,
        created_at: t(at),
        released_at: None,
        released_by: None,
    }
}

/// An active legal hold fails a batch that requires none, in the batch's own
/// transaction: nothing of the batch is applied. A released hold does not.
#[allow(clippy::unwrap_used)]
pub async fn legal_hold_guard(store: &dyn Store) {
    let c = contact(&[("email", b"sealed")]);
    let subject = c.subject_id;
    insert(store, &c, vec![]).await;
    let guarded_delete = || {
        vec![
            WriteOp::RequireNoLegalHold { subject_id: subject },
            WriteOp::DeleteContact { subject_id: subject },
        ]
    };
    let mut hold = legal_hold(subject, 1);
    store
        .write(vec![WriteOp::PutLegalHold(Box::new(hold.clone()))])
        .await
        .unwrap();
    let r = store.write(guarded_delete()).await;
    assert!(matches!(r, Err(StoreError::LegalHold)), "{r:?}");
    assert!(
        store.get_contact(subject).await.unwrap().is_some(),
        "nothing was deleted"
    );
    // No hold on another subject stands in the way of its own deletion.
    let other = contact(&[]);
    insert(store, &other, vec![]).await;
    store
        .write(vec![
            WriteOp::RequireNoLegalHold {
                subject_id: other.subject_id,
            },
            WriteOp::DeleteContact {
                subject_id: other.subject_id,
            },
        ])
        .await
        .unwrap();
    hold.released_at = Some(t(2));
    store.write(vec![WriteOp::PutLegalHold(Box::new(hold))]).await.unwrap();
    store.write(guarded_delete()).await.unwrap();
    assert!(store.get_contact(subject).await.unwrap().is_none());
}

/// Entries of reads, recorded without waiting for a commit, are sealed into
/// the log in order with writes and visible to the very next audit query.
#[allow(clippy::unwrap_used)]
pub async fn read_audit_entries(store: &dyn Store) {
    let subject = contact(&[]);
    store
        .write(vec![
            WriteOp::InsertContact {
                row: subject.clone(),
                terms: vec![],
            },
            audit("contact.create", Some(subject.subject_id), None, 1),
        ])
        .await
        .expect("create");
    let record = |action: &str, secs: i64| match audit(action, Some(subject.subject_id), None, secs) {
        WriteOp::AppendAudit(r) => *r,
        _ => unreachable!(),
    };
    // Many readers at once, one of them with two entries.
    let mut futs = Vec::new();
    for i in 0..40 {
        let mut records = vec![record("contact.read", 10 + i)];
        if i == 7 {
            records.push(record("interaction.list", 10 + i));
        }
        futs.push(store.append_read_audit(records));
    }
    for f in futs {
        f.await.expect("read audit");
    }
    store.append_read_audit(vec![]).await.expect("nothing to record");
    // Visible at once, without an explicit flush.
    assert_eq!(store.audit_size().await.expect("size"), 42);
    let by_subject = store
        .query_audit(&AuditFilter {
            subject: Some(subject.subject_id),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("q");
    assert_eq!(by_subject.len(), 42);
    assert_eq!(
        by_subject
            .iter()
            .filter(|e| e.bytes.windows(16).any(|w| w == b"interaction.list"))
            .count(),
        1
    );
    // A write after them follows them in the log, and the chain holds.
    store
        .write(vec![audit("contact.update", Some(subject.subject_id), None, 99)])
        .await
        .expect("write");
    store
        .append_read_audit(vec![record("contact.read", 100)])
        .await
        .expect("read");
    store.flush_audit().await.expect("flush");
    let entries = store.audit_entries(0, 1000).await.expect("entries");
    assert_eq!(entries.len(), 44);
    let mut prev = [0u8; 32];
    for (i, e) in entries.iter().enumerate() {
        let decoded = steward_audit::decode_entry(&e.bytes).expect("canonical entry");
        assert_eq!(decoded.index, i as u64);
        assert_eq!(decoded.prev, prev, "entry {i} links its predecessor");
        prev = e.leaf_hash;
    }
    assert_eq!(
        steward_audit::decode_entry(&entries[42].bytes).unwrap().record.action,
        "contact.update"
    );
    assert_eq!(
        steward_audit::decode_entry(&entries[43].bytes).unwrap().record.action,
        "contact.read"
    );

    // The borrowing pass sees each entry's facts (written with it), in
    // order, in its range only, and stops when asked.
    let mut seen = Vec::new();
    store
        .scan_audit(3, 40, &mut |i, row| {
            seen.push((i, format!("{row:?}")));
            true
        })
        .await
        .expect("scan");
    let expected: Vec<_> = entries[3..40]
        .iter()
        .map(|e| {
            let record = steward_audit::decode_entry(&e.bytes).expect("entry").record;
            let facts = steward_audit::facts::encode(&record).expect("facts");
            (e.index, format!("{:?}", crate::ScanRow::Facts(&facts)))
        })
        .collect();
    assert_eq!(seen, expected);
    let mut visited = 0;
    store
        .scan_audit(0, u64::MAX, &mut |_, _| {
            visited += 1;
            visited < 5
        })
        .await
        .expect("scan");
    assert_eq!(visited, 5, "the pass stops when the visitor says so");
    let mut all = 0;
    store
        .scan_audit(40, 10_000, &mut |_, _| {
            all += 1;
            true
        })
        .await
        .expect("scan");
    assert_eq!(all, 4, "a range past the end ends at the last entry");
}

/// A batch that requires an identity not to have been erased fails, with
/// the erasure's request and date, once a proof exists, and writes nothing.
pub async fn erasure_proof_guard(store: &dyn Store) {
    let request = uuid::Uuid::now_v7();
    store
        .write(vec![WriteOp::InsertErasureProof {
            identifier_hash: b"erased-hash".to_vec(),
            request_id: request,
            at: t(5),
        }])
        .await
        .expect("proof");
    let c = contact(&[]);
    let r = store
        .write(vec![
            WriteOp::RequireNotErased {
                identifier_hash: b"erased-hash".to_vec(),
            },
            WriteOp::InsertContact {
                row: c.clone(),
                terms: vec![],
            },
        ])
        .await;
    match r {
        Err(StoreError::Erased { request_id, at }) => {
            assert_eq!(request_id, request);
            assert_eq!(at, t(5));
        }
        other => panic!("expected Erased, got {other:?}"),
    }
    assert!(store.get_contact(c.subject_id).await.expect("get").is_none());
    store
        .write(vec![
            WriteOp::RequireNotErased {
                identifier_hash: b"another-hash".to_vec(),
            },
            WriteOp::InsertContact {
                row: c.clone(),
                terms: vec![],
            },
        ])
        .await
        .expect("a never-erased identity");
    assert!(store.get_contact(c.subject_id).await.expect("get").is_some());
}

/// A pending public consent is found by its code's hash, can be used once
/// and only before it expires, and expired ones are purged.
pub async fn pending_consents_are_used_once(store: &dyn Store) {
    let pending = |hash: &[u8], expires: i64| crate::PendingConsentRow {
        token_hash: hash.to_vec(),
        id: uuid::Uuid::now_v7(),
        sealed: "sealed:v1:opaque".into(),
        created_at: t(0),
        expires_at: t(expires),
        used_at: None,
    };
    let a = pending(b"code-a", 100);
    let b = pending(b"code-b", 10);
    for p in [&a, &b] {
        store
            .write(vec![WriteOp::PutPendingConsent(Box::new(p.clone()))])
            .await
            .expect("put");
    }
    assert_eq!(
        store.get_pending_consent(b"code-a").await.expect("get"),
        Some(a.clone())
    );
    assert_eq!(store.get_pending_consent(b"nope").await.expect("get"), None);
    let use_at = |hash: &[u8], at: i64| WriteOp::UsePendingConsent {
        token_hash: hash.to_vec(),
        at: t(at),
    };
    // Expired: refused, and nothing else of the batch is written.
    let c = contact(&[]);
    let r = store
        .write(vec![
            use_at(b"code-b", 20),
            WriteOp::InsertContact {
                row: c.clone(),
                terms: vec![],
            },
        ])
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    assert!(store.get_contact(c.subject_id).await.expect("get").is_none());
    store.write(vec![use_at(b"code-a", 50)]).await.expect("first use");
    let used = store.get_pending_consent(b"code-a").await.expect("get").expect("row");
    assert_eq!(used.used_at, Some(t(50)));
    assert!(matches!(
        store.write(vec![use_at(b"code-a", 51)]).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.write(vec![use_at(b"unknown", 51)]).await,
        Err(StoreError::NotFound)
    ));
    store
        .write(vec![WriteOp::PurgePendingConsents { before: t(50) }])
        .await
        .expect("purge");
    assert_eq!(store.get_pending_consent(b"code-b").await.expect("get"), None);
    assert!(store.get_pending_consent(b"code-a").await.expect("get").is_some());
}

/// Queries by subject, actor and time over a log long enough that the
/// SQLite backend's subject index (written in batches of 4,096) covers part
/// of it and the rest is its unindexed tail: every page, compared with what
/// a scan of the whole log finds.
pub async fn audit_queries_by_subject(store: &dyn Store) {
    let subjects = [SubjectId::new(), SubjectId::new(), SubjectId::new()];
    let users = [UserId::new(), UserId::new()];
    let record = |i: usize| {
        // Every seventh entry has no subject.
        let subject = (!i.is_multiple_of(7)).then(|| subjects[i % 3]);
        match audit("contact.read", subject, Some(users[i % 2]), i as i64) {
            WriteOp::AppendAudit(r) => *r,
            _ => unreachable!(),
        }
    };
    let total = 5_300usize;
    // 5,000 entries and a flush (which indexes a batch), then 300 more
    // that stay in the tail.
    for range in [0..5_000, 5_000..total] {
        for chunk in range.collect::<Vec<_>>().chunks(250) {
            store
                .append_read_audit(chunk.iter().map(|&i| record(i)).collect())
                .await
                .expect("read audit");
        }
        store.flush_audit().await.expect("flush");
    }
    assert_eq!(store.audit_size().await.expect("size"), total as u64);
    let expected = |subject: usize, user: Option<usize>, from: i64, to: i64| -> Vec<u64> {
        (0..total)
            .filter(|&i| !i.is_multiple_of(7) && i % 3 == subject)
            .filter(|&i| user.is_none_or(|u| i % 2 == u))
            .filter(|&i| (from..to).contains(&(i as i64)))
            .map(|i| i as u64)
            .collect()
    };
    let cases = [
        (0, None, 0, 1_000_000),
        (1, Some(1), 0, 1_000_000),
        (2, None, 4_000, 5_000),
        (2, Some(0), 4_090, 4_110),
    ];
    for (subject, user, from, to) in cases {
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .query_audit(&AuditFilter {
                    subject: Some(subjects[subject]),
                    actor: user.map(|u: usize| *users[u].as_uuid()),
                    from: Some(t(from)),
                    to: Some(t(to)),
                    after,
                    limit: 97,
                    ..Default::default()
                })
                .await
                .expect("query");
            if page.is_empty() {
                break;
            }
            after = page.last().map(|e| e.index);
            got.extend(page.iter().map(|e| e.index));
        }
        assert_eq!(
            got,
            expected(subject, user, from, to),
            "subject {subject}, user {user:?}, {from}..{to}"
        );
    }
}

/// One query of `audit_queries_by_user_and_token`: indexes into its users,
/// tokens and subjects, entry numbers for times.
#[derive(Debug, Clone, Copy, Default)]
struct ActorCase {
    user: Option<usize>,
    token: Option<usize>,
    /// An actor id: `Ok(user)` or `Err(token)`.
    actor: Option<Result<usize, usize>>,
    subject: Option<usize>,
    from: Option<i64>,
    to: Option<i64>,
    after: Option<u64>,
    before: Option<u64>,
    limit: u32,
}

/// Queries by actor user, actor token and index bound (`before`), alone
/// and with subject, time, cursor and page size, over a log of entries
/// recorded both as reads (the spool) and through `write`, long enough
/// that the SQLite backend's subject and token indexes (written in batches
/// of 4,096) cover its first part and the rest is their unindexed tail:
/// every page, compared with what a scan of the whole log finds.
pub async fn audit_queries_by_user_and_token(store: &dyn Store) {
    let users = [UserId::new(), UserId::new()];
    let tokens = [TokenId::new(), TokenId::new(), TokenId::new()];
    let subjects = [SubjectId::new(), SubjectId::new(), SubjectId::new()];
    // Entry i: no subject every fifth, no user every eleventh, no token
    // every fourth; the rest cycle (tokens out of step with subjects).
    let subject_of = |i: usize| (!i.is_multiple_of(5)).then_some(i % 3);
    let user_of = |i: usize| (!i.is_multiple_of(11)).then_some(i % 2);
    let token_of = |i: usize| (!i.is_multiple_of(4)).then_some((i / 7) % 3);
    let record = |i: usize| {
        let mut actor = steward_audit::Actor::system();
        actor.user_id = user_of(i).map(|u| *users[u].as_uuid());
        actor.token_id = token_of(i).map(|k| *tokens[k].as_uuid());
        let mut r = steward_audit::AuditRecord::new(t(i as i64), actor, "contact.read", steward_audit::Outcome::Ok);
        r.subject_id = subject_of(i).map(|s| *subjects[s].as_uuid());
        r
    };
    // 4,200 entries and a flush: the SQLite writer indexes one batch
    // (somewhere from entry 4,096 on), the rest stays in the tail with the
    // 300 that follow. A chunk in four goes through `write`.
    let total = 4_500usize;
    for (range, chunk_size) in [(0..4_200, 200), (4_200..total, 50)] {
        for (n, chunk) in range.collect::<Vec<_>>().chunks(chunk_size).enumerate() {
            let records: Vec<_> = chunk.iter().map(|&i| record(i)).collect();
            if n % 4 == 1 {
                store.write(crate::append_ops(records)).await.expect("write audit");
            } else {
                store.append_read_audit(records).await.expect("read audit");
            }
        }
        store.flush_audit().await.expect("flush");
    }
    assert_eq!(store.audit_size().await.expect("size"), total as u64);

    let expected = |c: &ActorCase| -> Vec<u64> {
        (0..total)
            .filter(|&i| c.user.is_none_or(|u| user_of(i) == Some(u)))
            .filter(|&i| c.token.is_none_or(|k| token_of(i) == Some(k)))
            .filter(|&i| match c.actor {
                None => true,
                Some(Ok(u)) => user_of(i) == Some(u),
                Some(Err(k)) => token_of(i) == Some(k),
            })
            .filter(|&i| c.subject.is_none_or(|s| subject_of(i) == Some(s)))
            .filter(|&i| c.from.is_none_or(|f| i as i64 >= f) && c.to.is_none_or(|to| (i as i64) < to))
            .filter(|&i| c.after.is_none_or(|a| i as u64 > a) && c.before.is_none_or(|b| (i as u64) < b))
            .map(|i| i as u64)
            .collect()
    };
    let filter = |c: &ActorCase, after: Option<u64>| AuditFilter {
        subject: c.subject.map(|s| subjects[s]),
        actor: c.actor.map(|a| match a {
            Ok(u) => *users[u].as_uuid(),
            Err(k) => *tokens[k].as_uuid(),
        }),
        from: c.from.map(t),
        to: c.to.map(t),
        after,
        limit: c.limit,
        user: c.user.map(|u| *users[u].as_uuid()),
        token: c.token.map(|k| *tokens[k].as_uuid()),
        before: c.before,
    };
    let all = ActorCase {
        limit: 1000,
        ..ActorCase::default()
    };
    let cases = [
        ActorCase { user: Some(0), ..all },
        ActorCase { token: Some(1), ..all },
        ActorCase {
            token: Some(2),
            user: Some(1),
            ..all
        },
        ActorCase {
            token: Some(0),
            before: Some(4_300),
            ..all
        },
        ActorCase {
            token: Some(0),
            before: Some(4_000),
            ..all
        },
        ActorCase {
            token: Some(1),
            from: Some(4_000),
            to: Some(4_400),
            limit: 13,
            ..all
        },
        ActorCase {
            token: Some(2),
            subject: Some(1),
            ..all
        },
        ActorCase {
            token: Some(1),
            subject: Some(2),
            user: Some(0),
            before: Some(4_350),
            ..all
        },
        ActorCase {
            user: Some(1),
            subject: Some(0),
            from: Some(100),
            to: Some(4_450),
            limit: 97,
            ..all
        },
        ActorCase {
            token: Some(0),
            after: Some(4_150),
            limit: 7,
            ..all
        },
        ActorCase {
            token: Some(2),
            after: Some(3_000),
            before: Some(4_480),
            limit: 250,
            ..all
        },
        ActorCase {
            user: Some(0),
            before: Some(50),
            ..all
        },
        ActorCase {
            user: Some(1),
            before: Some(4_420),
            after: Some(4_090),
            limit: 9,
            ..all
        },
        ActorCase {
            before: Some(4_100),
            after: Some(4_000),
            limit: 33,
            ..all
        },
        ActorCase { before: Some(0), ..all },
        ActorCase {
            actor: Some(Err(2)),
            ..all
        },
        ActorCase {
            actor: Some(Ok(1)),
            token: Some(0),
            ..all
        },
        ActorCase {
            actor: Some(Err(1)),
            subject: Some(1),
            user: Some(1),
            from: Some(4_000),
            ..all
        },
    ];
    for case in &cases {
        let want = expected(case);
        let first = store.query_audit(&filter(case, case.after)).await.expect("query");
        assert_eq!(
            first.iter().map(|e| e.index).collect::<Vec<_>>(),
            want.iter().copied().take(case.limit as usize).collect::<Vec<_>>(),
            "first page of {case:?}"
        );
        let mut got = Vec::new();
        let mut after = case.after;
        loop {
            let page = store.query_audit(&filter(case, after)).await.expect("query");
            let Some(last) = page.last() else { break };
            after = Some(last.index);
            got.extend(page.iter().map(|e| e.index));
        }
        assert!(
            !want.is_empty() || case.before == Some(0),
            "a case that finds nothing: {case:?}"
        );
        assert_eq!(got, want, "{case:?}");
    }
    // An unknown user or token finds nothing, below and above the index.
    for unknown in [
        AuditFilter {
            token: Some(*TokenId::new().as_uuid()),
            limit: 1000,
            ..Default::default()
        },
        AuditFilter {
            user: Some(*UserId::new().as_uuid()),
            limit: 1000,
            ..Default::default()
        },
        AuditFilter {
            user: Some(*users[0].as_uuid()),
            token: Some(*tokens[0].as_uuid()),
            subject: Some(SubjectId::new()),
            limit: 1000,
            ..Default::default()
        },
    ] {
        assert!(
            store.query_audit(&unknown).await.expect("query").is_empty(),
            "{unknown:?}"
        );
    }
    // Entries appended after the queries are found too (the tail grows).
    let late = total + 1;
    store.append_read_audit(vec![record(late)]).await.expect("read audit");
    let latest = store
        .query_audit(&AuditFilter {
            token: Some(*tokens[token_of(late).expect("a token")].as_uuid()),
            after: Some(total as u64 - 1),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("query");
    assert_eq!(latest.iter().map(|e| e.index).collect::<Vec<_>>(), vec![total as u64]);
}

fn incident(created: i64) -> crate::IncidentRow {
    crate::IncidentRow {
        id: uuid::Uuid::now_v7(),
        status: "open".into(),
        aware_at: t(created - 5),
        due_at: Some(t(created + 72 * 3600)),
        created_at: t(created),
        updated_at: t(created),
        sealed: vec![1, 0, 255, created as u8],
    }
}

fn incident_entry(incident: uuid::Uuid, kind: &str, at: i64) -> crate::IncidentEntryRow {
    crate::IncidentEntryRow {
        id: uuid::Uuid::now_v7(),
        incident_id: incident,
        kind: kind.into(),
        at: t(at),
        sealed: vec![9, at as u8, 0],
    }
}

/// Incidents round-trip, are replaced in place (keeping their entries) and
/// listed newest first; entries are listed by id whatever order they were
/// appended in, refuse an unknown incident and a repeated id, and a refused
/// entry takes its whole batch with it.
pub async fn incidents_register_and_entries(store: &dyn Store) {
    let put = |i: &crate::IncidentRow| WriteOp::PutIncident(Box::new(i.clone()));
    let append = |e: &crate::IncidentEntryRow| WriteOp::AppendIncidentEntry(Box::new(e.clone()));
    assert!(store.list_incidents().await.expect("list").is_empty());
    let a = incident(10);
    let b = incident(20);
    // The same creation instant as `b`, a later id.
    let c = crate::IncidentRow {
        created_at: b.created_at,
        due_at: None,
        ..incident(20)
    };
    for i in [&b, &a, &c] {
        store.write(vec![put(i)]).await.expect("put incident");
    }
    assert_eq!(store.get_incident(a.id).await.expect("get"), Some(a.clone()));
    assert_eq!(store.get_incident(c.id).await.expect("get"), Some(c.clone()));
    assert_eq!(store.get_incident(uuid::Uuid::now_v7()).await.expect("get"), None);
    let ids = |rows: Vec<crate::IncidentRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_incidents().await.expect("list")),
        vec![c.id, b.id, a.id],
        "newest first, ties by id (higher first)"
    );

    // Entries: listed by id, whatever order they were appended in; the
    // incident and its first entry can go in one batch.
    let a1 = incident_entry(a.id, "timeline", 11);
    let a2 = incident_entry(a.id, "evidence", 12);
    let a3 = incident_entry(a.id, "risk_assessment", 13);
    store.write(vec![append(&a2)]).await.expect("append");
    store.write(vec![append(&a3), append(&a1)]).await.expect("append");
    let d = incident(30);
    let d1 = incident_entry(d.id, "timeline", 30);
    store
        .write(vec![put(&d), append(&d1)])
        .await
        .expect("incident with its entry");
    assert_eq!(
        store.incident_entries(a.id).await.expect("entries"),
        vec![a1.clone(), a2.clone(), a3.clone()]
    );
    assert_eq!(store.incident_entries(d.id).await.expect("entries"), vec![d1.clone()]);
    assert!(store.incident_entries(b.id).await.expect("entries").is_empty());
    assert!(store
        .incident_entries(uuid::Uuid::now_v7())
        .await
        .expect("entries")
        .is_empty());

    // An unknown incident: refused, and nothing else of the batch stays.
    let e = incident(40);
    let orphan = incident_entry(uuid::Uuid::now_v7(), "timeline", 41);
    let r = store.write(vec![put(&e), append(&orphan)]).await;
    assert!(matches!(r, Err(StoreError::MissingReference)), "{r:?}");
    assert_eq!(store.get_incident(e.id).await.expect("get"), None);
    assert!(store
        .incident_entries(orphan.incident_id)
        .await
        .expect("entries")
        .is_empty());
    // A repeated entry id: refused, even for another incident; the entry
    // stays as it was.
    let r = store.write(vec![append(&a1)]).await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");
    let moved = crate::IncidentEntryRow {
        incident_id: b.id,
        kind: "notification".into(),
        ..a2.clone()
    };
    let r = store.write(vec![append(&moved)]).await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");
    assert_eq!(store.incident_entries(a.id).await.expect("entries").len(), 3);
    assert!(store.incident_entries(b.id).await.expect("entries").is_empty());

    // Replacing: every column, in place; the entries stay.
    let replaced = crate::IncidentRow {
        status: "notified".into(),
        aware_at: t(7),
        due_at: None,
        created_at: t(50),
        updated_at: t(60),
        sealed: vec![42; 300],
        ..a.clone()
    };
    store.write(vec![put(&replaced)]).await.expect("replace");
    assert_eq!(store.get_incident(a.id).await.expect("get"), Some(replaced.clone()));
    let mut again = replaced.clone();
    again.due_at = Some(t(99));
    again.status = "closed".into();
    store.write(vec![put(&again)]).await.expect("replace again");
    assert_eq!(store.get_incident(a.id).await.expect("get"), Some(again.clone()));
    assert_eq!(
        store.incident_entries(a.id).await.expect("entries"),
        vec![a1, a2, a3],
        "entries outlive a replacement"
    );
    let listed = store.list_incidents().await.expect("list");
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[0], again, "a new creation instant moves it");
    assert_eq!(ids(listed), vec![a.id, d.id, c.id, b.id]);
}

fn audit(action: &str, subject: Option<SubjectId>, user: Option<UserId>, secs: i64) -> WriteOp {
    let mut actor = steward_audit::Actor::system();
    actor.user_id = user.map(|u| *u.as_uuid());
    let mut r = steward_audit::AuditRecord::new(t(secs), actor, action, steward_audit::Outcome::Ok);
    r.subject_id = subject.map(|s| *s.as_uuid());
    WriteOp::AppendAudit(Box::new(r))
}

pub async fn audit_log_appends_atomically(store: &dyn Store) {
    assert_eq!(store.audit_size().await.expect("size"), 0);
    let subject = contact(&[]);
    let user = UserId::new();
    store
        .write(vec![
            WriteOp::InsertContact {
                row: subject.clone(),
                terms: vec![term("taken", true)],
            },
            audit("contact.create", Some(subject.subject_id), Some(user), 1),
        ])
        .await
        .expect("write with audit");
    // A refused operation leaves no audit entry behind, and no gap.
    let dup = contact(&[]);
    let r = store
        .write(vec![
            WriteOp::InsertContact {
                row: dup,
                terms: vec![term("taken", true)],
            },
            audit("contact.create", None, Some(user), 2),
        ])
        .await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");
    assert_eq!(store.audit_size().await.expect("size"), 1);

    // Many concurrent appends, some in failing batches: contiguous indexes.
    let mut futs = Vec::new();
    for i in 0..60 {
        let mut ops = vec![audit("contact.read", Some(subject.subject_id), None, 10 + i)];
        if i % 7 == 3 {
            ops.push(WriteOp::DeleteContact {
                subject_id: SubjectId::new(),
            }); // fails: not found
        }
        futs.push(store.write(ops));
    }
    let mut ok = 0;
    for f in futs {
        if f.await.is_ok() {
            ok += 1;
        }
    }
    let size = store.audit_size().await.expect("size");
    assert_eq!(size, 1 + ok, "only committed batches appended");
    let entries = store.audit_entries(0, 1000).await.expect("entries");
    assert_eq!(entries.len() as u64, size);
    let mut prev = [0u8; 32];
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.index, i as u64, "contiguous from 0");
        assert_eq!(e.leaf_hash, steward_audit::leaf_hash(&e.bytes));
        let decoded = steward_audit::decode_entry(&e.bytes).expect("canonical entry");
        assert_eq!(decoded.index, e.index);
        assert_eq!(decoded.prev, prev, "entry {i} links its predecessor");
        prev = e.leaf_hash;
    }
    let leaves = store.audit_leaf_hashes(1, 4).await.expect("leaves");
    assert_eq!(leaves, entries[1..4].iter().map(|e| e.leaf_hash).collect::<Vec<_>>());
    assert_eq!(
        store.audit_entries(2, 2).await.expect("entries"),
        entries[2..4].to_vec()
    );

    // Filters: subject, actor, time, cursor.
    let by_user = store
        .query_audit(&AuditFilter {
            actor: Some(*user.as_uuid()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("q");
    assert_eq!(by_user.iter().map(|e| e.index).collect::<Vec<_>>(), vec![0]);
    let by_subject = store
        .query_audit(&AuditFilter {
            subject: Some(subject.subject_id),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("q");
    assert_eq!(by_subject.len() as u64, size);
    let page = store
        .query_audit(&AuditFilter {
            subject: Some(subject.subject_id),
            after: Some(2),
            limit: 3,
            ..Default::default()
        })
        .await
        .expect("q");
    assert_eq!(page.iter().map(|e| e.index).collect::<Vec<_>>(), vec![3, 4, 5]);
    let early = store
        .query_audit(&AuditFilter {
            to: Some(t(5)),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("q");
    assert_eq!(early.iter().map(|e| e.index).collect::<Vec<_>>(), vec![0]);
    let late = store
        .query_audit(&AuditFilter {
            from: Some(t(5)),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("q");
    assert_eq!(late.len() as u64, size - 1);

    // Tree heads: stored once per size, listed by size.
    let head = |size: u64| steward_audit::SignedTreeHead {
        tree_size: size,
        timestamp_ms: 1000 + size as i64,
        root: [size as u8; 32],
        signature: vec![7; 64],
        key_id: "k1".into(),
    };
    store
        .write(vec![WriteOp::PutTreeHead(head(5)), WriteOp::PutTreeHead(head(2))])
        .await
        .expect("heads");
    store
        .write(vec![WriteOp::PutTreeHead(head(5))])
        .await
        .expect("idempotent");
    assert_eq!(store.tree_heads().await.expect("heads"), vec![head(2), head(5)]);
}

fn user_row(username: &str) -> UserRow {
    UserRow {
        id: UserId::new(),
        username: username.into(),
        role: "sales".into(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${username}"),
        disabled: false,
        created_at: t(0),
        failed_logins: 0,
        locked_until: None,
    }
}

fn token_row(user: UserId, hash: u8) -> TokenRow {
    TokenRow {
        id: TokenId::new(),
        user_id: user,
        kind: TokenKind::Session,
        name: None,
        hash: vec![hash; 32],
        created_at: t(1),
        expires_at: Some(t(3600)),
        revoked_at: None,
        last_used_at: None,
        purpose: None,
        mfa: false,
    }
}

async fn insert_user(store: &dyn Store, username: &str) -> UserRow {
    let u = user_row(username);
    store
        .write(vec![WriteOp::InsertUser(u.clone())])
        .await
        .expect("insert user");
    u
}

pub async fn token_revocation_and_use(store: &dyn Store) {
    let alice = insert_user(store, "alice").await;
    let bob = insert_user(store, "bob").await;
    let api = TokenRow {
        kind: TokenKind::Api,
        name: Some("ci".into()),
        expires_at: None,
        purpose: Some("marketing".into()),
        ..token_row(alice.id, 1)
    };
    let session = TokenRow {
        mfa: true,
        last_used_at: Some(t(2)),
        ..token_row(alice.id, 2)
    };
    let other = token_row(bob.id, 3);
    store
        .write(vec![
            WriteOp::InsertToken(api.clone()),
            WriteOp::InsertToken(session.clone()),
            WriteOp::InsertToken(other.clone()),
        ])
        .await
        .expect("tokens");
    // Purpose, mfa and last use round-trip; a user's tokens come by id.
    assert_eq!(
        store.list_tokens(alice.id).await.expect("list"),
        vec![api.clone(), session.clone()]
    );
    assert_eq!(store.list_tokens(bob.id).await.expect("list"), vec![other.clone()]);
    assert!(store.list_tokens(UserId::new()).await.expect("list").is_empty());
    assert_eq!(
        store.get_token_by_hash(&[2; 32]).await.expect("get"),
        Some((session.clone(), alice.clone()))
    );

    // Touching records the last use; an unknown token is not an error.
    store
        .write(vec![WriteOp::TouchToken { id: api.id, at: t(60) }])
        .await
        .expect("touch");
    store
        .write(vec![WriteOp::TouchToken {
            id: TokenId::new(),
            at: t(60),
        }])
        .await
        .expect("touching an unknown token");
    let api = TokenRow {
        last_used_at: Some(t(60)),
        ..api
    };
    assert_eq!(
        store.get_token_by_hash(&[1; 32]).await.expect("get"),
        Some((api.clone(), alice.clone()))
    );

    // Revoking one token; a second revocation keeps the first instant.
    store
        .write(vec![WriteOp::RevokeToken { id: api.id, at: t(100) }])
        .await
        .expect("revoke");
    store
        .write(vec![WriteOp::RevokeToken { id: api.id, at: t(200) }])
        .await
        .expect("revoke again");
    let api = TokenRow {
        revoked_at: Some(t(100)),
        ..api
    };
    assert_eq!(
        store.get_token_by_hash(&[1; 32]).await.expect("get"),
        Some((api.clone(), alice.clone()))
    );
    let r = store
        .write(vec![WriteOp::RevokeToken {
            id: TokenId::new(),
            at: t(100),
        }])
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");

    // Revoking all of a user's tokens leaves earlier revocations and other
    // users' tokens alone.
    store
        .write(vec![WriteOp::RevokeUserTokens {
            user_id: alice.id,
            at: t(300),
        }])
        .await
        .expect("revoke all");
    let session = TokenRow {
        revoked_at: Some(t(300)),
        ..session
    };
    assert_eq!(store.list_tokens(alice.id).await.expect("list"), vec![api, session]);
    assert_eq!(store.list_tokens(bob.id).await.expect("list"), vec![other]);
    store
        .write(vec![WriteOp::RevokeUserTokens {
            user_id: UserId::new(),
            at: t(300),
        }])
        .await
        .expect("a user without tokens");
}

pub async fn user_updates_and_lockout(store: &dyn Store) {
    assert!(store.list_users().await.expect("list").is_empty());
    // Bytewise order: upper case sorts first, whatever the collation.
    let bob = insert_user(store, "bob").await;
    let zed = insert_user(store, "Zed").await;
    let alice = insert_user(store, "alice").await;
    assert_eq!(
        store.list_users().await.expect("list"),
        vec![zed.clone(), alice.clone(), bob.clone()]
    );

    // Partial updates change only what is given.
    store
        .write(vec![WriteOp::UpdateUser {
            id: alice.id,
            role: Some("admin".into()),
            disabled: None,
            password_hash: None,
        }])
        .await
        .expect("role");
    let alice = UserRow {
        role: "admin".into(),
        ..alice
    };
    assert_eq!(store.get_user(alice.id).await.expect("get"), Some(alice.clone()));
    store
        .write(vec![WriteOp::UpdateUser {
            id: alice.id,
            role: None,
            disabled: Some(true),
            password_hash: None,
        }])
        .await
        .expect("disable");
    let alice = UserRow {
        disabled: true,
        ..alice
    };
    assert_eq!(store.get_user(alice.id).await.expect("get"), Some(alice.clone()));
    store
        .write(vec![WriteOp::UpdateUser {
            id: alice.id,
            role: None,
            disabled: Some(false),
            password_hash: Some("$argon2id$new".into()),
        }])
        .await
        .expect("password");
    let alice = UserRow {
        disabled: false,
        password_hash: "$argon2id$new".into(),
        ..alice
    };
    assert_eq!(store.get_user(alice.id).await.expect("get"), Some(alice.clone()));
    store
        .write(vec![WriteOp::UpdateUser {
            id: alice.id,
            role: None,
            disabled: None,
            password_hash: None,
        }])
        .await
        .expect("an empty update of an existing user");
    assert_eq!(store.get_user(alice.id).await.expect("get"), Some(alice.clone()));
    let r = store
        .write(vec![WriteOp::UpdateUser {
            id: UserId::new(),
            role: Some("admin".into()),
            disabled: None,
            password_hash: None,
        }])
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");

    // Failures and lockout round-trip, through every user read.
    store
        .write(vec![WriteOp::SetLoginFailures {
            user_id: bob.id,
            failed_logins: 5,
            locked_until: Some(t(900)),
        }])
        .await
        .expect("lock");
    let locked = UserRow {
        failed_logins: 5,
        locked_until: Some(t(900)),
        ..bob.clone()
    };
    assert_eq!(store.get_user(bob.id).await.expect("get"), Some(locked.clone()));
    assert_eq!(
        store.get_user_by_username("bob").await.expect("get"),
        Some(locked.clone())
    );
    let token = token_row(bob.id, 9);
    store
        .write(vec![WriteOp::InsertToken(token.clone())])
        .await
        .expect("token");
    assert_eq!(
        store.get_token_by_hash(&[9; 32]).await.expect("get"),
        Some((token, locked.clone()))
    );
    assert_eq!(
        store.list_users().await.expect("list"),
        vec![zed.clone(), alice.clone(), locked]
    );
    // A count PostgreSQL's INTEGER cannot hold is refused by both backends.
    let r = store
        .write(vec![WriteOp::SetLoginFailures {
            user_id: bob.id,
            failed_logins: u32::MAX,
            locked_until: None,
        }])
        .await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    store
        .write(vec![WriteOp::SetLoginFailures {
            user_id: bob.id,
            failed_logins: 0,
            locked_until: None,
        }])
        .await
        .expect("reset");
    assert_eq!(store.get_user(bob.id).await.expect("get"), Some(bob.clone()));
    let r = store
        .write(vec![WriteOp::SetLoginFailures {
            user_id: UserId::new(),
            failed_logins: 1,
            locked_until: None,
        }])
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");

    // A user inserted with lockout state keeps it.
    let carol = UserRow {
        failed_logins: 2,
        locked_until: Some(t(42)),
        ..user_row("carol")
    };
    store
        .write(vec![WriteOp::InsertUser(carol.clone())])
        .await
        .expect("insert");
    assert_eq!(store.get_user(carol.id).await.expect("get"), Some(carol));
}

fn credential(user: UserId, secret: u8) -> CredentialRow {
    CredentialRow {
        id: uuid::Uuid::now_v7(),
        user_id: user,
        kind: "totp".into(),
        secret: vec![secret; 40],
        confirmed: false,
        last_step: None,
        created_at: t(10),
    }
}

pub async fn credentials_and_steps(store: &dyn Store) {
    let alice = insert_user(store, "alice").await;
    let bob = insert_user(store, "bob").await;
    assert!(store.get_credentials(alice.id).await.expect("get").is_empty());
    let first = credential(alice.id, 1);
    let second = CredentialRow {
        confirmed: true,
        last_step: Some(7),
        ..credential(alice.id, 2)
    };
    let bobs = credential(bob.id, 3);
    store
        .write(vec![
            WriteOp::PutCredential(first.clone()),
            WriteOp::PutCredential(second.clone()),
            WriteOp::PutCredential(bobs.clone()),
        ])
        .await
        .expect("put");
    assert_eq!(
        store.get_credentials(alice.id).await.expect("get"),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(store.get_credentials(bob.id).await.expect("get"), vec![bobs.clone()]);

    // Putting an existing id replaces it.
    let first = CredentialRow {
        secret: vec![9; 40],
        kind: "totp-sha256".into(),
        ..first
    };
    store
        .write(vec![WriteOp::PutCredential(first.clone())])
        .await
        .expect("replace");
    assert_eq!(
        store.get_credentials(alice.id).await.expect("get"),
        vec![first.clone(), second.clone()]
    );
    let r = store
        .write(vec![WriteOp::PutCredential(credential(UserId::new(), 4))])
        .await;
    assert!(matches!(r, Err(StoreError::MissingReference)), "{r:?}");
    let r = store
        .write(vec![WriteOp::PutCredential(CredentialRow {
            last_step: Some(u64::MAX),
            ..credential(alice.id, 5)
        })])
        .await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");

    // Steps: accepted only if later than the last one; the first confirms.
    let accept = |id, step| WriteOp::AcceptCredentialStep { id, step };
    store.write(vec![accept(first.id, 1000)]).await.expect("first step");
    let first = CredentialRow {
        confirmed: true,
        last_step: Some(1000),
        ..first
    };
    assert_eq!(
        store.get_credentials(alice.id).await.expect("get"),
        vec![first.clone(), second.clone()]
    );
    for replay in [1000, 999, 0] {
        let r = store.write(vec![accept(first.id, replay)]).await;
        assert!(matches!(r, Err(StoreError::VersionConflict)), "{replay}: {r:?}");
    }
    store.write(vec![accept(first.id, 1001)]).await.expect("later step");
    let r = store.write(vec![accept(second.id, 7)]).await;
    assert!(matches!(r, Err(StoreError::VersionConflict)), "{r:?}");
    store.write(vec![accept(second.id, 8)]).await.expect("later step");
    let r = store.write(vec![accept(uuid::Uuid::now_v7(), 5)]).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    let r = store.write(vec![accept(first.id, u64::MAX)]).await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    let max = u64::try_from(i64::MAX).unwrap_or_default();
    store.write(vec![accept(first.id, max)]).await.expect("largest step");
    assert_eq!(
        store.get_credentials(alice.id).await.expect("get"),
        vec![
            CredentialRow {
                last_step: Some(max),
                ..first
            },
            CredentialRow {
                last_step: Some(8),
                ..second
            }
        ]
    );

    // Deleting removes a user's credentials (and recovery codes) only.
    store
        .write(vec![WriteOp::ReplaceRecoveryCodes {
            user_id: alice.id,
            hashes: vec![vec![1; 32], vec![2; 32]],
        }])
        .await
        .expect("codes");
    store
        .write(vec![WriteOp::DeleteCredentials { user_id: alice.id }])
        .await
        .expect("delete");
    assert!(store.get_credentials(alice.id).await.expect("get").is_empty());
    assert_eq!(store.count_unused_recovery_codes(alice.id).await.expect("count"), 0);
    assert_eq!(store.get_credentials(bob.id).await.expect("get"), vec![bobs]);
    store
        .write(vec![WriteOp::DeleteCredentials { user_id: alice.id }])
        .await
        .expect("nothing left to delete");
}

pub async fn recovery_codes(store: &dyn Store) {
    let alice = insert_user(store, "alice").await;
    let bob = insert_user(store, "bob").await;
    assert_eq!(store.count_unused_recovery_codes(alice.id).await.expect("count"), 0);
    let code = |n: u8| vec![n; 32];
    store
        .write(vec![
            WriteOp::ReplaceRecoveryCodes {
                user_id: alice.id,
                hashes: vec![code(1), code(2), code(3), code(3)],
            },
            WriteOp::ReplaceRecoveryCodes {
                user_id: bob.id,
                hashes: vec![code(1)],
            },
        ])
        .await
        .expect("codes");
    assert_eq!(
        store.count_unused_recovery_codes(alice.id).await.expect("count"),
        3,
        "a repeated hash counts once"
    );
    let use_code = |user_id, n: u8| WriteOp::UseRecoveryCode {
        user_id,
        hash: code(n),
        at: t(50),
    };
    store.write(vec![use_code(alice.id, 2)]).await.expect("use");
    assert_eq!(store.count_unused_recovery_codes(alice.id).await.expect("count"), 2);
    let r = store.write(vec![use_code(alice.id, 2)]).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "used once only: {r:?}");
    let r = store.write(vec![use_code(alice.id, 4)]).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "unknown code: {r:?}");
    let r = store.write(vec![use_code(bob.id, 2)]).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "another user's code: {r:?}");
    store.write(vec![use_code(bob.id, 1)]).await.expect("bob's own code");
    assert_eq!(store.count_unused_recovery_codes(bob.id).await.expect("count"), 0);
    assert_eq!(store.count_unused_recovery_codes(alice.id).await.expect("count"), 2);

    // Replacing drops every old code, used or not.
    store
        .write(vec![WriteOp::ReplaceRecoveryCodes {
            user_id: alice.id,
            hashes: vec![code(2), code(5)],
        }])
        .await
        .expect("replace");
    assert_eq!(store.count_unused_recovery_codes(alice.id).await.expect("count"), 2);
    let r = store.write(vec![use_code(alice.id, 1)]).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "replaced code: {r:?}");
    store
        .write(vec![use_code(alice.id, 2)])
        .await
        .expect("a fresh code with an old hash");
    store
        .write(vec![WriteOp::ReplaceRecoveryCodes {
            user_id: alice.id,
            hashes: vec![],
        }])
        .await
        .expect("clear");
    assert_eq!(store.count_unused_recovery_codes(alice.id).await.expect("count"), 0);
    let r = store
        .write(vec![WriteOp::ReplaceRecoveryCodes {
            user_id: UserId::new(),
            hashes: vec![code(1)],
        }])
        .await;
    assert!(matches!(r, Err(StoreError::MissingReference)), "{r:?}");
}

pub async fn training_records(store: &dyn Store) {
    let alice = insert_user(store, "alice").await;
    let bob = insert_user(store, "bob").await;
    assert!(store.list_training(None).await.expect("list").is_empty());
    let record = |user_id, course: &str, expires_on: Option<&str>| TrainingRow {
        id: uuid::Uuid::now_v7(),
        user_id,
        course: course.into(),
        completed_on: "2024-03-01".into(),
        expires_on: expires_on.map(str::to_string),
        created_at: t(20),
    };
    let a1 = record(alice.id, "gdpr-basics", Some("2025-03-01"));
    let b1 = record(bob.id, "gdpr-basics", None);
    let a2 = record(alice.id, "security", None);
    for r in [&a1, &b1, &a2] {
        store
            .write(vec![WriteOp::InsertTraining(r.clone())])
            .await
            .expect("insert");
    }
    assert_eq!(
        store.list_training(Some(alice.id)).await.expect("list"),
        vec![a1.clone(), a2.clone()]
    );
    assert_eq!(store.list_training(Some(bob.id)).await.expect("list"), vec![b1.clone()]);
    assert_eq!(store.list_training(None).await.expect("list"), vec![a1.clone(), b1, a2]);
    assert!(store.list_training(Some(UserId::new())).await.expect("list").is_empty());
    let r = store
        .write(vec![WriteOp::InsertTraining(record(UserId::new(), "x", None))])
        .await;
    assert!(matches!(r, Err(StoreError::MissingReference)), "{r:?}");
    let r = store.write(vec![WriteOp::InsertTraining(a1)]).await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");
}

pub async fn settings_upsert(store: &dyn Store) {
    assert!(store.get_settings().await.expect("settings").is_empty());
    let put = |name: &str, value: &str| WriteOp::PutSetting {
        name: name.into(),
        value: value.into(),
    };
    store
        .write(vec![
            put("session_idle_minutes", "30"),
            put("Welcome", ""),
            put("mfa_required", "false"),
        ])
        .await
        .expect("put");
    store.write(vec![put("mfa_required", "true")]).await.expect("replace");
    let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
    assert_eq!(
        store.get_settings().await.expect("settings"),
        vec![
            pair("Welcome", ""),
            pair("mfa_required", "true"),
            pair("session_idle_minutes", "30")
        ],
        "by name, bytewise"
    );
}

pub async fn restriction_of_processing(store: &dyn Store) {
    let plain = contact(&[("email", b"sealed")]);
    insert(store, &plain, vec![term("shared", false)]).await;
    let restricted = ContactRow {
        restricted: true,
        ..contact(&[])
    };
    insert(store, &restricted, vec![term("shared", false)]).await;
    assert_eq!(
        store.get_contact(restricted.subject_id).await.expect("get"),
        Some(restricted.clone()),
        "an insert stores the restriction"
    );

    store
        .write(vec![WriteOp::SetRestricted {
            subject_id: plain.subject_id,
            restricted: true,
        }])
        .await
        .expect("restrict");
    let plain = ContactRow {
        restricted: true,
        ..plain
    };
    assert_eq!(
        store.get_contact(plain.subject_id).await.expect("get"),
        Some(plain.clone()),
        "only the flag changed (the version too is kept)"
    );
    assert_eq!(
        store.list_contacts(None, 10).await.expect("list"),
        vec![plain.clone(), restricted.clone()]
    );
    assert_eq!(
        store.find_contacts_by_term(b"shared", None, 10).await.expect("find"),
        vec![plain.clone(), restricted.clone()]
    );

    // An ordinary update leaves the restriction as it is.
    let updated = ContactRow {
        fields: vec![("email".into(), b"sealed-2".to_vec())],
        version: 2,
        updated_at: t(5),
        restricted: false,
        ..plain.clone()
    };
    store
        .write(vec![WriteOp::UpdateContact {
            row: updated.clone(),
            expected_version: 1,
            terms: vec![],
        }])
        .await
        .expect("update");
    let updated = ContactRow {
        restricted: true,
        ..updated
    };
    assert_eq!(
        store.get_contact(plain.subject_id).await.expect("get"),
        Some(updated.clone())
    );

    store
        .write(vec![WriteOp::SetRestricted {
            subject_id: plain.subject_id,
            restricted: false,
        }])
        .await
        .expect("lift");
    let lifted = ContactRow {
        restricted: false,
        ..updated
    };
    assert_eq!(
        store.list_contacts(None, 10).await.expect("list"),
        vec![lifted, restricted]
    );
    let r = store
        .write(vec![WriteOp::SetRestricted {
            subject_id: SubjectId::new(),
            restricted: true,
        }])
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
}

pub async fn consent_records_and_notices(store: &dyn Store) {
    let c = contact(&[]);
    insert(store, &c, vec![]).await;
    let notice = |v: &str, material: bool, secs: i64| crate::NoticeRow {
        id: uuid::Uuid::now_v7(),
        version: v.into(),
        language: "en".into(),
        text: format!("Notice {v}"),
        text_hash: vec![1; 32],
        material,
        published_at: t(secs),
    };
    let (n1, n2) = (notice("2026-01", false, 1), notice("2026-06", true, 2));
    store
        .write(vec![
            WriteOp::InsertNotice(n1.clone()),
            WriteOp::InsertNotice(n2.clone()),
        ])
        .await
        .expect("notices");
    assert_eq!(store.list_notices().await.expect("notices"), vec![n1.clone(), n2]);
    let dup = store
        .write(vec![WriteOp::InsertNotice(notice("2026-01", false, 3))])
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate)), "{dup:?}");

    let consent = |purpose: &str, status: &str, secs: i64| crate::ConsentRow {
        id: uuid::Uuid::now_v7(),
        subject_id: c.subject_id,
        purpose: purpose.into(),
        status: status.into(),
        recorded_at: t(secs),
        source: "api".into(),
        notice_version: Some("2026-01".into()),
        notice_hash: Some(vec![1; 32]),
        evidence: Some(b"sealed".to_vec()),
        recorded_by: None,
        expires_at: Some(t(secs + 1000)),
        confirmation_hash: None,
        confirmation_expires_at: None,
        confirmed_at: None,
    };
    let granted = consent("marketing_email", "granted", 10);
    let withdrawn = consent("marketing_email", "withdrawn", 20);
    let mut pending = consent("analytics", "pending", 30);
    pending.confirmation_hash = Some(vec![9; 32]);
    pending.confirmation_expires_at = Some(t(100));
    for r in [&granted, &withdrawn, &pending] {
        store
            .write(vec![WriteOp::InsertConsent(Box::new(r.clone()))])
            .await
            .expect("consent");
    }
    let orphan = crate::ConsentRow {
        id: uuid::Uuid::now_v7(),
        subject_id: SubjectId::new(),
        ..granted.clone()
    };
    let r = store.write(vec![WriteOp::InsertConsent(Box::new(orphan))]).await;
    assert!(matches!(r, Err(StoreError::MissingReference)), "{r:?}");
    assert_eq!(
        store.list_consents(c.subject_id).await.expect("list"),
        vec![granted.clone(), withdrawn, pending.clone()]
    );
    assert_eq!(
        store.find_consent_by_confirmation(&[9; 32]).await.expect("find"),
        Some(pending.clone())
    );
    store
        .write(vec![WriteOp::UseConsentConfirmation {
            hash: vec![9; 32],
            at: t(40),
        }])
        .await
        .expect("confirm");
    let again = store
        .write(vec![WriteOp::UseConsentConfirmation {
            hash: vec![9; 32],
            at: t(41),
        }])
        .await;
    assert!(
        matches!(again, Err(StoreError::NotFound)),
        "a confirmation token works once: {again:?}"
    );
    let confirmed = store
        .list_consents(c.subject_id)
        .await
        .expect("list")
        .pop()
        .expect("pending");
    assert_eq!(confirmed.confirmed_at, Some(t(40)));
    assert_eq!(confirmed.confirmation_hash, None);
    assert_eq!(store.consent_summaries().await.expect("summaries").len(), 3);

    // The denormalised state round-trips through contact reads.
    let state = vec![
        ("marketing_email".to_string(), Some(t(500))),
        ("analytics".to_string(), None),
    ];
    store
        .write(vec![WriteOp::SetConsentState {
            subject_id: c.subject_id,
            consented: state.clone(),
        }])
        .await
        .expect("state");
    assert_eq!(
        store
            .get_contact(c.subject_id)
            .await
            .expect("get")
            .expect("contact")
            .consented,
        state
    );
    let r = store
        .write(vec![WriteOp::SetConsentState {
            subject_id: SubjectId::new(),
            consented: vec![],
        }])
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    // Consents go with their subject.
    store
        .write(vec![WriteOp::DeleteContact {
            subject_id: c.subject_id,
        }])
        .await
        .expect("delete");
    assert!(store.list_consents(c.subject_id).await.expect("list").is_empty());
}

fn dsr(kind: &str, status: &str, due: i64) -> DsrRow {
    DsrRow {
        id: uuid::Uuid::now_v7(),
        kind: kind.into(),
        regime: "gdpr".into(),
        subject_id: None,
        identifier_hash: None,
        status: status.into(),
        received_at: t(0),
        received_offset: 3600,
        due_at: t(due),
        extensions: 0,
        extension_reason: None,
        verified_at: None,
        verified_by: None,
        verification_method: None,
        completed_at: None,
        outcome: None,
        details: None,
        created_by: None,
        created_at: t(0),
        updated_at: t(0),
    }
}

/// Requests round-trip every field, update in place, list open ones by due
/// date; proofs of erasure outlive the contact and are found by hash.
#[allow(clippy::unwrap_used)]
pub async fn data_subject_requests(store: &dyn Store) {
    let c = contact(&[("email", b"sealed")]);
    let subject = c.subject_id;
    insert(store, &c, vec![]).await;

    let mut late = dsr("erasure", "received", 100);
    late.subject_id = Some(subject);
    late.identifier_hash = Some(vec![7; 32]);
    late.details = Some(vec![0, 1, 2, 255]);
    late.created_by = Some(UserId::new());
    let early = dsr("access", "in_progress", 50);
    let done = dsr("access", "completed", 10);
    for d in [&late, &early, &done] {
        store.write(vec![WriteOp::PutDsr(Box::new(d.clone()))]).await.unwrap();
    }
    assert_eq!(
        store.get_dsr(late.id).await.unwrap().as_ref(),
        Some(&late),
        "every field round-trips"
    );
    // A stored export bundle goes with the contact.
    let bundle = crate::ExportBundleRow {
        dsr_id: late.id,
        subject_id: subject,
        sealed: vec![5; 40],
        created_at: t(1),
        expires_at: t(50),
    };
    store
        .write(vec![WriteOp::PutExportBundle(Box::new(bundle.clone()))])
        .await
        .unwrap();
    assert_eq!(store.get_export_bundle(late.id).await.unwrap(), Some(bundle));
    assert_eq!(store.get_export_bundle(early.id).await.unwrap(), None);
    assert_eq!(store.get_dsr(uuid::Uuid::now_v7()).await.unwrap(), None);

    let open: Vec<_> = store.list_dsr(true).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(open, vec![early.id, late.id], "open requests by due date");
    let all: Vec<_> = store.list_dsr(false).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(all, vec![done.id, early.id, late.id]);

    // An update replaces the row.
    let mut updated = late.clone();
    updated.status = "completed".into();
    updated.extensions = 1;
    updated.extension_reason = Some("complex".into());
    updated.verified_at = Some(t(5));
    updated.verified_by = Some(UserId::new());
    updated.verification_method = Some("letter".into());
    updated.completed_at = Some(t(6));
    updated.outcome = Some("erased".into());
    updated.due_at = t(200);
    updated.updated_at = t(6);
    store
        .write(vec![
            WriteOp::PutDsr(Box::new(updated.clone())),
            WriteOp::DeleteContact { subject_id: subject },
            WriteOp::InsertErasureProof {
                identifier_hash: vec![7; 32],
                request_id: late.id,
                at: t(6),
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        store.get_dsr(late.id).await.unwrap(),
        Some(updated),
        "the request outlives the contact"
    );
    assert_eq!(store.list_dsr(true).await.unwrap().len(), 1);
    assert_eq!(store.erasure_proof(&[7; 32]).await.unwrap(), Some((late.id, t(6))));
    assert_eq!(store.erasure_proof(&[8; 32]).await.unwrap(), None);
    assert_eq!(
        store.get_export_bundle(late.id).await.unwrap(),
        None,
        "deleted with the contact"
    );
    assert_eq!(store.get_contact(subject).await.unwrap(), None);
    // Legal holds round-trip and update in place; they outlive the contact.
    let mut hold = crate::LegalHoldRow {
        created_by: Some(UserId::new()),
        ..legal_hold(subject, 7)
    };
    store
        .write(vec![WriteOp::PutLegalHold(Box::new(hold.clone()))])
        .await
        .unwrap();
    assert_eq!(store.legal_holds(subject).await.unwrap(), vec![hold.clone()]);
    hold.released_at = Some(t(8));
    hold.released_by = Some(UserId::new());
    store
        .write(vec![WriteOp::PutLegalHold(Box::new(hold.clone()))])
        .await
        .unwrap();
    assert_eq!(store.legal_holds(subject).await.unwrap(), vec![hold]);
    assert!(store.legal_holds(SubjectId::new()).await.unwrap().is_empty());
    // Outbox messages and verification links round-trip; replacing marks them sent / used.
    let mut mail = crate::OutboxRow {
        id: uuid::Uuid::now_v7(),
        kind: "k".into(),
        message: vec![1, 2, 3],
        created_at: t(1),
        sent_at: None,
    };
    let mut link = crate::DsrVerificationRow {
        token_hash: vec![9; 32],
        dsr_id: early.id,
        expires_at: t(100),
        used_at: None,
    };
    store
        .write(vec![
            WriteOp::PutOutbox(Box::new(mail.clone())),
            WriteOp::PutDsrVerification(Box::new(link.clone())),
        ])
        .await
        .unwrap();
    assert_eq!(store.list_outbox(true).await.unwrap(), vec![mail.clone()]);
    assert_eq!(store.get_dsr_verification(&[9; 32]).await.unwrap(), Some(link.clone()));
    assert_eq!(store.get_dsr_verification(&[8; 32]).await.unwrap(), None);
    mail.sent_at = Some(t(2));
    link.used_at = Some(t(3));
    store
        .write(vec![
            WriteOp::PutOutbox(Box::new(mail.clone())),
            WriteOp::PutDsrVerification(Box::new(link.clone())),
        ])
        .await
        .unwrap();
    assert!(store.list_outbox(true).await.unwrap().is_empty());
    let mail_id = mail.id;
    assert_eq!(store.list_outbox(false).await.unwrap(), vec![mail]);
    assert_eq!(store.get_dsr_verification(&[9; 32]).await.unwrap(), Some(link));
    let mut second = crate::OutboxRow {
        id: uuid::Uuid::now_v7(),
        kind: "k".into(),
        message: vec![4],
        created_at: t(4),
        sent_at: None,
    };
    store
        .write(vec![WriteOp::PutOutbox(Box::new(second.clone()))])
        .await
        .unwrap();
    store
        .write(vec![WriteOp::MarkOutboxSent {
            id: second.id,
            at: t(5),
        }])
        .await
        .unwrap();
    second.sent_at = Some(t(5));
    assert_eq!(store.list_outbox(false).await.unwrap().last(), Some(&second));
    // Sent mail created before the cut-off is purged; newer and unsent mail stays.
    let unsent = crate::OutboxRow {
        id: uuid::Uuid::now_v7(),
        kind: "k".into(),
        message: vec![5],
        created_at: t(0),
        sent_at: None,
    };
    store
        .write(vec![WriteOp::PutOutbox(Box::new(unsent.clone()))])
        .await
        .unwrap();
    store
        .write(vec![WriteOp::PurgeSentOutbox { before: t(4) }])
        .await
        .unwrap();
    let left: Vec<uuid::Uuid> = store.list_outbox(false).await.unwrap().iter().map(|m| m.id).collect();
    assert!(!left.contains(&mail_id), "the old sent message is purged");
    assert!(left.contains(&second.id) && left.contains(&unsent.id), "{left:?}");
    let again = store
        .write(vec![WriteOp::MarkOutboxSent {
            id: second.id,
            at: t(6),
        }])
        .await;
    assert!(
        matches!(again, Err(StoreError::NotFound)),
        "only an unsent message can be marked sent: {again:?}"
    );
    // A second proof for the same identifier keeps the first.
    store
        .write(vec![WriteOp::InsertErasureProof {
            identifier_hash: vec![7; 32],
            request_id: early.id,
            at: t(9),
        }])
        .await
        .unwrap();
    assert_eq!(store.erasure_proof(&[7; 32]).await.unwrap(), Some((late.id, t(6))));
}

/// The retention reads and writes: a page of contact facts (interactions,
/// deals, each purpose's latest consent, holds), candidate records per kind
/// and event (held subjects and open requests never), purges and unlinks
/// that re-check the hold, and the run counts and aggregates that add up.
#[allow(clippy::unwrap_used, clippy::too_many_lines)]
pub async fn retention_reads_and_purges(store: &dyn Store) {
    use crate::retention::{AggregateRow, PurgeKind, RetentionLogRow, RetentionQuery};
    use steward_domain::retention::RetentionEvent;
    let a = contact(&[("email", b"a")]);
    let mut b = contact(&[("email", b"b")]);
    b.created_at = t(5);
    b.updated_at = t(50);
    insert(store, &a, vec![]).await;
    insert(store, &b, vec![]).await;
    let interaction = |s: SubjectId, occurred: i64, created: i64| InteractionRow {
        id: InteractionId::new(),
        subject_id: s,
        kind: InteractionKind::Call,
        occurred_at: t(occurred),
        created_at: t(created),
        summary: b"sealed".to_vec(),
    };
    let i1 = interaction(a.subject_id, 100, 10);
    let i2 = interaction(a.subject_id, 20, 30);
    let deal = |s: SubjectId, stage: DealStage, updated: i64| Deal {
        id: DealId::new(),
        title: "Renewal".into(),
        stage,
        amount: Some(Amount::from_minor(100)),
        currency: CurrencyCode::parse("EUR").ok(),
        organization_id: None,
        contact_id: Some(s),
        created_at: t(1),
        updated_at: t(updated),
    };
    let won = deal(a.subject_id, DealStage::Won, 40);
    let open = deal(b.subject_id, DealStage::Proposal, 41);
    let consent = |s: SubjectId, purpose: &str, status: &str, secs: i64| crate::ConsentRow {
        id: uuid::Uuid::now_v7(),
        subject_id: s,
        purpose: purpose.into(),
        status: status.into(),
        recorded_at: t(secs),
        source: "api".into(),
        notice_version: None,
        notice_hash: None,
        evidence: None,
        recorded_by: None,
        expires_at: None,
        confirmation_hash: None,
        confirmation_expires_at: None,
        confirmed_at: None,
    };
    let g1 = consent(a.subject_id, "marketing_email", "granted", 10);
    let w1 = consent(a.subject_id, "marketing_email", "withdrawn", 20);
    let g2 = consent(a.subject_id, "analytics", "granted", 30);
    let mut ops = vec![
        WriteOp::InsertInteraction(i1.clone()),
        WriteOp::InsertInteraction(i2.clone()),
        WriteOp::InsertDeal(won.clone()),
        WriteOp::InsertDeal(open.clone()),
    ];
    for c in [&g1, &w1, &g2] {
        ops.push(WriteOp::InsertConsent(Box::new(c.clone())));
    }
    store.write(ops).await.unwrap();

    let mut facts = store.retention_facts(None, 10).await.unwrap();
    facts.sort_by_key(|f| f.subject_id);
    assert_eq!(facts.len(), 2);
    let fa = facts.iter().find(|f| f.subject_id == a.subject_id).unwrap();
    assert_eq!(fa.last_interaction, Some(t(100)), "the latest of occurred and created");
    assert!(!fa.open_deal);
    assert_eq!(fa.last_deal_closed, Some(t(40)));
    let mut latest = fa.latest_consents.clone();
    latest.sort();
    assert_eq!(
        latest,
        vec![
            ("analytics".to_string(), "granted".to_string(), t(30)),
            ("marketing_email".to_string(), "withdrawn".to_string(), t(20)),
        ]
    );
    assert!(!fa.held);
    let fb = facts.iter().find(|f| f.subject_id == b.subject_id).unwrap();
    assert_eq!((fb.created_at, fb.updated_at), (t(5), t(50)));
    assert!(fb.open_deal && fb.last_deal_closed.is_none() && fb.last_interaction.is_none());
    assert_eq!(fb.purposes, b.purposes);
    // Paging: one at a time, in subject order.
    let first = store.retention_facts(None, 1).await.unwrap();
    let second = store.retention_facts(Some(first[0].subject_id), 1).await.unwrap();
    assert_eq!(
        vec![first[0].subject_id, second[0].subject_id],
        facts.iter().map(|f| f.subject_id).collect::<Vec<_>>()
    );

    let q = |kind, from, before: i64| RetentionQuery {
        kind,
        from,
        purpose: None,
        before: t(before),
        anonymise: false,
        after: None,
        limit: 100,
    };
    let ids = |c: Vec<crate::retention::RetentionCandidate>| {
        let mut v: Vec<uuid::Uuid> = c.into_iter().map(|c| c.id).collect();
        v.sort();
        v
    };
    // Interactions by creation, with their kind and month kept for aggregates.
    let found = store
        .retention_candidates(&q(PurgeKind::Interaction, RetentionEvent::Created, 20))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, *i1.id.as_uuid());
    assert_eq!(found[0].subject_id, Some(a.subject_id));
    assert_eq!(found[0].attribute, Some(("call".to_string(), t(100))));
    // Deals closed (won/lost) only; anonymised ones are not picked again.
    let closed = q(PurgeKind::Deal, RetentionEvent::DealClosed, 1_000);
    assert_eq!(
        ids(store.retention_candidates(&closed).await.unwrap()),
        vec![*won.id.as_uuid()]
    );
    // Paging in id order.
    let mut every = q(PurgeKind::Deal, RetentionEvent::Created, 1_000);
    every.limit = 1;
    let page1 = store.retention_candidates(&every).await.unwrap();
    every.after = Some(page1[0].id);
    let page2 = store.retention_candidates(&every).await.unwrap();
    every.after = Some(page2[0].id);
    assert!(store.retention_candidates(&every).await.unwrap().is_empty());
    let mut two = vec![*won.id.as_uuid(), *open.id.as_uuid()];
    two.sort();
    assert_eq!(vec![page1[0].id, page2[0].id], two);
    let by_update = q(PurgeKind::Deal, RetentionEvent::LastUpdate, 41);
    assert_eq!(
        ids(store.retention_candidates(&by_update).await.unwrap()),
        vec![*won.id.as_uuid()]
    );
    // Consent records: superseded by creation; a withdrawn purpose's records.
    let superseded = q(PurgeKind::ConsentRecord, RetentionEvent::Created, 1_000);
    assert_eq!(ids(store.retention_candidates(&superseded).await.unwrap()), vec![g1.id]);
    let mut after_withdrawal = q(PurgeKind::ConsentRecord, RetentionEvent::ConsentWithdrawn, 21);
    after_withdrawal.purpose = Some("marketing_email".into());
    let mut both = vec![g1.id, w1.id];
    both.sort();
    assert_eq!(ids(store.retention_candidates(&after_withdrawal).await.unwrap()), both);
    after_withdrawal.before = t(20);
    assert!(store.retention_candidates(&after_withdrawal).await.unwrap().is_empty());
    after_withdrawal.before = t(21);
    after_withdrawal.purpose = Some("analytics".into());
    assert!(store.retention_candidates(&after_withdrawal).await.unwrap().is_empty());

    // A hold keeps everything of its subject out of the candidates and
    // makes a purge skip it even when asked.
    let hold = legal_hold(a.subject_id, 1);
    store
        .write(vec![WriteOp::PutLegalHold(Box::new(hold.clone()))])
        .await
        .unwrap();
    assert!(store.retention_facts(None, 10).await.unwrap().iter().any(|f| f.held));
    assert!(store
        .retention_candidates(&q(PurgeKind::Interaction, RetentionEvent::Created, 1_000))
        .await
        .unwrap()
        .is_empty());
    store
        .write(vec![
            WriteOp::PurgeRecords {
                kind: PurgeKind::Interaction,
                ids: vec![*i1.id.as_uuid()],
            },
            WriteOp::UnlinkDeals {
                ids: vec![*won.id.as_uuid()],
            },
        ])
        .await
        .unwrap();
    assert_eq!(store.list_interactions(a.subject_id, None, 10).await.unwrap().len(), 2);
    assert_eq!(
        store.get_deal(won.id).await.unwrap().unwrap().contact_id,
        Some(a.subject_id)
    );
    let mut released = hold;
    released.released_at = Some(t(2));
    store
        .write(vec![WriteOp::PutLegalHold(Box::new(released))])
        .await
        .unwrap();
    store
        .write(vec![
            WriteOp::PurgeRecords {
                kind: PurgeKind::Interaction,
                ids: vec![*i1.id.as_uuid(), uuid::Uuid::now_v7()],
            },
            WriteOp::PurgeRecords {
                kind: PurgeKind::ConsentRecord,
                ids: vec![g1.id],
            },
            WriteOp::UnlinkDeals {
                ids: vec![*won.id.as_uuid()],
            },
        ])
        .await
        .unwrap();
    let left = store.list_interactions(a.subject_id, None, 10).await.unwrap();
    assert_eq!(left.iter().map(|i| i.id).collect::<Vec<_>>(), vec![i2.id]);
    assert_eq!(store.list_consents(a.subject_id).await.unwrap().len(), 2);
    let unlinked = store.get_deal(won.id).await.unwrap().unwrap();
    assert_eq!(unlinked.contact_id, None);
    assert_eq!((unlinked.amount, unlinked.stage), (won.amount, DealStage::Won));
    let mut anonymise = closed.clone();
    anonymise.anonymise = true;
    assert!(store.retention_candidates(&anonymise).await.unwrap().is_empty());
    store
        .write(vec![WriteOp::PurgeRecords {
            kind: PurgeKind::Deal,
            ids: vec![*won.id.as_uuid()],
        }])
        .await
        .unwrap();
    assert!(store.get_deal(won.id).await.unwrap().is_none());

    // Requests: only closed ones, by creation or closing; the purge takes
    // the export bundle and verification codes with it.
    let open_case = dsr("access", "verified", 100);
    let mut closed_case = dsr("access", "fulfilled", 100);
    closed_case.subject_id = Some(b.subject_id);
    closed_case.completed_at = Some(t(60));
    let bundle = crate::ExportBundleRow {
        dsr_id: closed_case.id,
        subject_id: b.subject_id,
        sealed: vec![1, 2],
        created_at: t(60),
        expires_at: t(1_000),
    };
    store
        .write(vec![
            WriteOp::PutDsr(Box::new(open_case.clone())),
            WriteOp::PutDsr(Box::new(closed_case.clone())),
            WriteOp::PutExportBundle(Box::new(bundle.clone())),
        ])
        .await
        .unwrap();
    let cases = q(PurgeKind::DsrCase, RetentionEvent::Created, 1_000);
    assert_eq!(
        ids(store.retention_candidates(&cases).await.unwrap()),
        vec![closed_case.id]
    );
    let since_closed = q(PurgeKind::DsrCase, RetentionEvent::RequestClosed, 60);
    assert!(store.retention_candidates(&since_closed).await.unwrap().is_empty());
    let bundles = q(PurgeKind::ExportBundle, RetentionEvent::Created, 61);
    assert_eq!(
        ids(store.retention_candidates(&bundles).await.unwrap()),
        vec![closed_case.id]
    );
    store
        .write(vec![WriteOp::PurgeRecords {
            kind: PurgeKind::DsrCase,
            ids: vec![closed_case.id, open_case.id],
        }])
        .await
        .unwrap();
    assert!(store.get_dsr(closed_case.id).await.unwrap().is_none());
    assert!(store.get_export_bundle(closed_case.id).await.unwrap().is_none());
    assert!(
        store.get_dsr(open_case.id).await.unwrap().is_some(),
        "open requests stay"
    );

    // Incidents: closed ones only, with their entries.
    let open_incident = incident(10);
    let mut closed_incident = incident(20);
    closed_incident.status = "closed".into();
    closed_incident.updated_at = t(90);
    let entry = crate::IncidentEntryRow {
        id: uuid::Uuid::now_v7(),
        incident_id: closed_incident.id,
        kind: "timeline".into(),
        at: t(21),
        sealed: vec![3],
    };
    store
        .write(vec![
            WriteOp::PutIncident(Box::new(open_incident.clone())),
            WriteOp::PutIncident(Box::new(closed_incident.clone())),
            WriteOp::AppendIncidentEntry(Box::new(entry)),
        ])
        .await
        .unwrap();
    let incidents = q(PurgeKind::Incident, RetentionEvent::RequestClosed, 91);
    let found = store.retention_candidates(&incidents).await.unwrap();
    assert_eq!(ids(found.clone()), vec![closed_incident.id]);
    assert_eq!(found[0].subject_id, None);
    store
        .write(vec![WriteOp::PurgeRecords {
            kind: PurgeKind::Incident,
            ids: vec![closed_incident.id, open_incident.id],
        }])
        .await
        .unwrap();
    assert!(store.get_incident(closed_incident.id).await.unwrap().is_none());
    assert!(store.incident_entries(closed_incident.id).await.unwrap().is_empty());
    assert!(store.get_incident(open_incident.id).await.unwrap().is_some());

    // Counts add up within a run and stay apart across runs.
    let run = uuid::Uuid::now_v7();
    let log = |run_id, count| RetentionLogRow {
        run_id,
        rule: "contacts-3y".into(),
        record: "contact".into(),
        action: "erase".into(),
        at: t(500),
        count,
    };
    let agg = |count| AggregateRow {
        record: "contact".into(),
        period: "2026-01".into(),
        attribute: "country".into(),
        value: "DE".into(),
        count,
    };
    for n in [2, 3] {
        store
            .write(vec![
                WriteOp::CountRetention(Box::new(log(run, n))),
                WriteOp::AddAggregate(Box::new(agg(n))),
            ])
            .await
            .unwrap();
    }
    let other = uuid::Uuid::now_v7();
    store
        .write(vec![WriteOp::CountRetention(Box::new(log(other, 1)))])
        .await
        .unwrap();
    let mut logged = store.retention_log(t(0)).await.unwrap();
    logged.sort_by_key(|r| r.run_id);
    assert_eq!(logged, vec![log(run, 5), log(other, 1)]);
    assert!(store.retention_log(t(501)).await.unwrap().is_empty());
    assert_eq!(store.retention_aggregates().await.unwrap(), vec![agg(5)]);
}

pub async fn scim_tokens_are_stored_revoked_and_touched(store: &dyn Store) {
    use crate::ScimTokenRow;
    assert!(store.list_scim_tokens().await.expect("list").is_empty());
    let row = |n: u8, name: &str| ScimTokenRow {
        id: uuid::Uuid::now_v7(),
        name: name.into(),
        default_role: "support".into(),
        hash: vec![n; 32],
        created_at: t(1),
        revoked_at: None,
        last_used_at: None,
    };
    let okta = row(1, "okta");
    let entra = row(2, "entra");
    store
        .write(vec![
            WriteOp::InsertScimToken(okta.clone()),
            WriteOp::InsertScimToken(entra.clone()),
        ])
        .await
        .expect("insert");
    assert_eq!(
        store.get_scim_token_by_hash(&[1; 32]).await.expect("get"),
        Some(okta.clone())
    );
    assert_eq!(store.get_scim_token_by_hash(&[3; 32]).await.expect("get"), None);
    assert_eq!(
        store.list_scim_tokens().await.expect("list"),
        vec![okta.clone(), entra.clone()]
    );
    // The hash is unique.
    let r = store.write(vec![WriteOp::InsertScimToken(row(1, "again"))]).await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");
    // Touch, revoke; a second revocation keeps the first instant.
    store
        .write(vec![WriteOp::TouchScimToken { id: okta.id, at: t(5) }])
        .await
        .expect("touch");
    store
        .write(vec![WriteOp::RevokeScimToken { id: okta.id, at: t(10) }])
        .await
        .expect("revoke");
    store
        .write(vec![WriteOp::RevokeScimToken { id: okta.id, at: t(20) }])
        .await
        .expect("revoke again");
    let got = store
        .get_scim_token_by_hash(&[1; 32])
        .await
        .expect("get")
        .expect("token");
    assert_eq!(got.last_used_at, Some(t(5)));
    assert_eq!(got.revoked_at, Some(t(10)));
    assert_eq!(
        store.get_scim_token_by_hash(&[2; 32]).await.expect("get"),
        Some(entra),
        "the other token is untouched"
    );
    let r = store
        .write(vec![WriteOp::RevokeScimToken {
            id: uuid::Uuid::now_v7(),
            at: t(10),
        }])
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    // Touching an unknown token is not an error.
    store
        .write(vec![WriteOp::TouchScimToken {
            id: uuid::Uuid::now_v7(),
            at: t(10),
        }])
        .await
        .expect("touch unknown");
}

pub async fn scim_users_upsert_and_look_up(store: &dyn Store) {
    use crate::ScimUserRow;
    let alice = insert_user(store, "alice").await;
    let bob = insert_user(store, "bob").await;
    assert!(store.list_scim_users().await.expect("list").is_empty());
    assert_eq!(store.get_scim_user(alice.id).await.expect("get"), None);
    let a = ScimUserRow {
        user_id: alice.id,
        external_id_hash: Some(vec![7; 32]),
        profile: b"sealed alice".to_vec(),
        updated_at: t(1),
        deleted_at: None,
    };
    let b = ScimUserRow {
        user_id: bob.id,
        external_id_hash: None,
        profile: b"sealed bob".to_vec(),
        updated_at: t(2),
        deleted_at: None,
    };
    store
        .write(vec![WriteOp::PutScimUser(a.clone()), WriteOp::PutScimUser(b.clone())])
        .await
        .expect("put");
    assert_eq!(store.get_scim_user(alice.id).await.expect("get"), Some(a.clone()));
    assert_eq!(
        store.find_scim_user_by_external_id(&[7; 32]).await.expect("find"),
        Some(a.clone())
    );
    assert_eq!(store.find_scim_user_by_external_id(&[8; 32]).await.expect("find"), None);
    let mut both = vec![a.clone(), b.clone()];
    both.sort_by_key(|r| *r.user_id.as_uuid());
    assert_eq!(store.list_scim_users().await.expect("list"), both);
    // Replacing keeps one row per user and changes every column.
    let a2 = ScimUserRow {
        external_id_hash: Some(vec![9; 32]),
        profile: b"sealed alice v2".to_vec(),
        updated_at: t(3),
        deleted_at: Some(t(4)),
        ..a.clone()
    };
    store
        .write(vec![WriteOp::PutScimUser(a2.clone())])
        .await
        .expect("replace");
    assert_eq!(store.get_scim_user(alice.id).await.expect("get"), Some(a2.clone()));
    assert_eq!(store.find_scim_user_by_external_id(&[7; 32]).await.expect("find"), None);
    assert_eq!(store.list_scim_users().await.expect("list").len(), 2);
    // externalId is unique across accounts; the failed batch changes nothing.
    let clash = ScimUserRow {
        external_id_hash: Some(vec![9; 32]),
        ..b.clone()
    };
    let r = store.write(vec![WriteOp::PutScimUser(clash)]).await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");
    assert_eq!(store.get_scim_user(bob.id).await.expect("get"), Some(b));
    // An unknown user is refused.
    let r = store
        .write(vec![WriteOp::PutScimUser(ScimUserRow {
            user_id: UserId::new(),
            external_id_hash: Some(vec![10; 32]),
            ..a2
        })])
        .await;
    assert!(matches!(r, Err(StoreError::MissingReference)), "{r:?}");
}

/// Data Rights Protocol state: agents (by id, by token hash, replaced,
/// removed), agents' requests (inserted once) and accepted-message digests
/// (a digest is accepted once, until purged after it expires; a replay
/// fails its whole batch).
pub async fn drp_agents_requests_and_nonces(store: &dyn Store) {
    let agent = |id: &str, token: Option<Vec<u8>>| crate::DrpAgentRow {
        id: id.into(),
        name: format!("Agent {id}"),
        verify_key: vec![7; 32],
        token_hash: token,
        token_issued_at: None,
        created_by: Some(UserId::new()),
        created_at: t(1),
    };
    let mut b = agent("B_AGENT", None);
    let a = agent("A_AGENT", Some(vec![1; 32]));
    store
        .write(vec![
            WriteOp::PutDrpAgent(Box::new(b.clone())),
            WriteOp::PutDrpAgent(Box::new(a.clone())),
        ])
        .await
        .expect("put agents");
    assert_eq!(store.get_drp_agent("A_AGENT").await.expect("read"), Some(a.clone()));
    assert_eq!(
        store.get_drp_agent("a_agent").await.expect("read"),
        None,
        "ids are exact"
    );
    assert_eq!(store.drp_agent_by_token(&[1; 32]).await.expect("read"), Some(a.clone()));
    assert_eq!(store.drp_agent_by_token(&[2; 32]).await.expect("read"), None);
    assert_eq!(
        store.list_drp_agents().await.expect("read"),
        vec![a.clone(), b.clone()],
        "by id"
    );
    // Replacing issues a new token; the old one no longer finds the agent.
    b.token_hash = Some(vec![2; 32]);
    b.token_issued_at = Some(t(5));
    store
        .write(vec![WriteOp::PutDrpAgent(Box::new(b.clone()))])
        .await
        .expect("replace");
    assert_eq!(store.drp_agent_by_token(&[2; 32]).await.expect("read"), Some(b.clone()));
    // A token hash is one agent's.
    let mut clash = b.clone();
    clash.token_hash = Some(vec![1; 32]);
    assert!(matches!(
        store.write(vec![WriteOp::PutDrpAgent(Box::new(clash))]).await,
        Err(StoreError::Duplicate)
    ));
    assert_eq!(store.get_drp_agent("B_AGENT").await.expect("read"), Some(b.clone()));

    let request = crate::DrpRequestRow {
        dsr_id: uuid::Uuid::now_v7(),
        agent_id: "A_AGENT".into(),
        exercise: "sale:opt_out".into(),
        agent_request_id: Some("sealed-reference".into()),
        attested: vec!["email_verified".into(), "phone_number_verified".into()],
        created_at: t(2),
    };
    let bare = crate::DrpRequestRow {
        dsr_id: uuid::Uuid::now_v7(),
        agent_request_id: None,
        attested: vec![],
        ..request.clone()
    };
    store
        .write(vec![
            WriteOp::InsertDrpRequest(Box::new(request.clone())),
            WriteOp::InsertDrpRequest(Box::new(bare.clone())),
        ])
        .await
        .expect("requests");
    assert_eq!(
        store.get_drp_request(request.dsr_id).await.expect("read"),
        Some(request.clone())
    );
    assert_eq!(store.get_drp_request(bare.dsr_id).await.expect("read"), Some(bare));
    assert_eq!(store.get_drp_request(uuid::Uuid::now_v7()).await.expect("read"), None);
    assert!(matches!(
        store
            .write(vec![WriteOp::InsertDrpRequest(Box::new(request.clone()))])
            .await,
        Err(StoreError::Duplicate)
    ));

    // Removing an agent keeps its requests; removing it twice is NotFound.
    store
        .write(vec![WriteOp::DeleteDrpAgent { id: "A_AGENT".into() }])
        .await
        .expect("delete");
    assert_eq!(store.get_drp_agent("A_AGENT").await.expect("read"), None);
    assert_eq!(store.drp_agent_by_token(&[1; 32]).await.expect("read"), None);
    assert!(matches!(
        store
            .write(vec![WriteOp::DeleteDrpAgent { id: "A_AGENT".into() }])
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.get_drp_request(request.dsr_id).await.expect("read"),
        Some(request)
    );

    // A digest is accepted once; a replay fails its batch (nothing of it lands).
    let nonce = |d: u8, exp: i64| WriteOp::InsertDrpNonce {
        digest: vec![d; 32],
        expires_at: t(exp),
    };
    store.write(vec![nonce(1, 10)]).await.expect("first");
    let after = crate::DrpRequestRow {
        dsr_id: uuid::Uuid::now_v7(),
        agent_id: "B_AGENT".into(),
        exercise: "access".into(),
        agent_request_id: None,
        attested: vec![],
        created_at: t(3),
    };
    assert!(matches!(
        store
            .write(vec![WriteOp::InsertDrpRequest(Box::new(after.clone())), nonce(1, 10)])
            .await,
        Err(StoreError::Duplicate)
    ));
    assert_eq!(
        store.get_drp_request(after.dsr_id).await.expect("read"),
        None,
        "the batch was rolled back"
    );
    // Purging forgets only digests that expired before the instant.
    store.write(vec![nonce(2, 30)]).await.expect("second");
    store
        .write(vec![WriteOp::PurgeDrpNonces { before: t(20) }])
        .await
        .expect("purge");
    store.write(vec![nonce(1, 40)]).await.expect("expired digest forgotten");
    assert!(matches!(
        store.write(vec![nonce(2, 30)]).await,
        Err(StoreError::Duplicate)
    ));
}
