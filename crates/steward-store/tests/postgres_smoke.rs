//! PostgreSQL-specific checks of `PgStore` (the shared behaviour is in the
//! conformance suite). Each test makes its own database; all are skipped
//! when `STEWARD_TEST_DATABASE_URL` is unset.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use steward_domain::{InteractionId, InteractionKind, SubjectId, TokenId, UserId};
use steward_store::postgres::testing::{fresh_test_database, test_database_url, TestDatabase};
use steward_store::postgres::PgStore;
use steward_store::{ContactRow, IndexTerm, InteractionRow, Store, StoreError, TokenKind, TokenRow, UserRow, WriteOp};

async fn fixture() -> Option<(PgStore, TestDatabase)> {
    let Some(admin) = test_database_url() else {
        println!("skipped: STEWARD_TEST_DATABASE_URL is not set");
        return None;
    };
    let (url, db) = fresh_test_database(&admin).await.expect("create test database");
    let store = PgStore::connect(&url, &db.vault_path()).await.expect("connect");
    Some((store, db))
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 654_321_000)
        .single()
        .unwrap_or_default()
}

fn contact() -> ContactRow {
    ContactRow {
        subject_id: SubjectId::new(),
        purposes: vec!["sales".into(), "support".into()],
        fields: vec![("email".into(), b"sealed\0bytes".to_vec())],
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

fn insert(row: &ContactRow, terms: Vec<IndexTerm>) -> Vec<WriteOp> {
    vec![WriteOp::InsertContact {
        row: row.clone(),
        terms,
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_paths() {
    let Some((store, db)) = fixture().await else {
        return;
    };
    assert_eq!(store.backend(), "postgres");
    store.ping().await.expect("ping");

    let a = contact();
    store
        .write(insert(&a, vec![term("mail:a", true), term("w:x", false)]))
        .await
        .expect("insert");
    assert_eq!(store.get_contact(a.subject_id).await.expect("get"), Some(a.clone()));

    // Duplicate unique term: refused, nothing of the batch stays.
    let b = contact();
    let r = store.write(insert(&b, vec![term("mail:a", true)])).await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");
    assert_eq!(store.get_contact(b.subject_id).await.expect("get"), None);
    // Duplicate subject id.
    let r = store.write(insert(&a, vec![])).await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");

    // Update with the right version, then a stale one.
    let mut a2 = a.clone();
    a2.version = 2;
    a2.purposes = vec![];
    a2.updated_at = t(5);
    a2.created_at = t(99); // ignored: created_at never changes
    store
        .write(vec![WriteOp::UpdateContact {
            row: a2.clone(),
            expected_version: 1,
            terms: vec![term("mail:a2", true)],
        }])
        .await
        .expect("update");
    let got = store.get_contact(a.subject_id).await.expect("get").expect("present");
    assert_eq!(got.version, 2);
    assert_eq!(got.purposes, Vec::<String>::new());
    assert_eq!(got.created_at, a.created_at);
    assert_eq!(got.updated_at, t(5));
    let r = store
        .write(vec![WriteOp::UpdateContact {
            row: a2.clone(),
            expected_version: 1,
            terms: vec![],
        }])
        .await;
    assert!(matches!(r, Err(StoreError::VersionConflict)), "{r:?}");
    let r = store
        .write(vec![WriteOp::UpdateContact {
            row: contact(),
            expected_version: 1,
            terms: vec![],
        }])
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    assert!(store
        .find_contacts_by_term(b"mail:a", None, 10)
        .await
        .expect("find")
        .is_empty());
    assert_eq!(
        store
            .find_contacts_by_term(b"mail:a2", None, 10)
            .await
            .expect("find")
            .len(),
        1
    );

    // Interactions go with the contact.
    let i = InteractionRow {
        id: InteractionId::new(),
        subject_id: a.subject_id,
        kind: InteractionKind::Meeting,
        occurred_at: t(1),
        created_at: t(2),
        summary: vec![0, 1, 2],
    };
    store
        .write(vec![WriteOp::InsertInteraction(i.clone())])
        .await
        .expect("interaction");
    assert_eq!(
        store.list_interactions(a.subject_id, None, 10).await.expect("list"),
        vec![i]
    );
    store
        .write(vec![WriteOp::DeleteContact {
            subject_id: a.subject_id,
        }])
        .await
        .expect("delete");
    assert!(store
        .list_interactions(a.subject_id, None, 10)
        .await
        .expect("list")
        .is_empty());
    let r = store
        .write(vec![WriteOp::DeleteContact {
            subject_id: a.subject_id,
        }])
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    assert_eq!(store.count_contacts().await.expect("count"), 0);

    store.close().await;
    db.drop_now().await.expect("drop database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_and_terms() {
    let Some((store, db)) = fixture().await else {
        return;
    };
    let mut ids = Vec::new();
    for n in 0..23 {
        let c = contact();
        let terms = if n % 3 == 0 { vec![term("third", false)] } else { vec![] };
        store.write(insert(&c, terms)).await.expect("insert");
        ids.push(c.subject_id);
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_contacts(after, 5).await.expect("list");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 5);
        after = page.last().map(|c| c.subject_id);
        seen.extend(page.iter().map(|c| c.subject_id));
    }
    assert_eq!(seen, ids);
    assert_eq!(store.list_contacts(None, 0).await.expect("list").len(), 1);
    assert_eq!(store.list_contacts(None, u32::MAX).await.expect("list").len(), 23);

    let thirds: Vec<_> = ids.iter().step_by(3).copied().collect();
    let first = store.find_contacts_by_term(b"third", None, 3).await.expect("find");
    assert_eq!(first.iter().map(|c| c.subject_id).collect::<Vec<_>>(), thirds[..3]);
    let rest = store
        .find_contacts_by_term(b"third", first.last().map(|c| c.subject_id), 100)
        .await
        .expect("find");
    assert_eq!(rest.iter().map(|c| c.subject_id).collect::<Vec<_>>(), thirds[3..]);
    store.close().await;
    db.drop_now().await.expect("drop database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_tokens_and_safe_errors() {
    let Some((store, db)) = fixture().await else {
        return;
    };
    let user = UserRow {
        id: UserId::new(),
        username: "bob".into(),
        role: "admin".into(),
        password_hash: "$argon2id$x".into(),
        disabled: true,
        created_at: t(0),
        failed_logins: 3,
        locked_until: Some(t(50)),
    };
    store
        .write(vec![WriteOp::InsertUser(user.clone())])
        .await
        .expect("user");
    let r = store
        .write(vec![WriteOp::InsertUser(UserRow {
            id: UserId::new(),
            ..user.clone()
        })])
        .await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");
    let token = TokenRow {
        id: TokenId::new(),
        user_id: user.id,
        kind: TokenKind::Session,
        name: None,
        hash: vec![3; 32],
        created_at: t(1),
        expires_at: Some(t(100)),
        revoked_at: None,
        last_used_at: Some(t(2)),
        purpose: Some("support".into()),
        mfa: true,
    };
    store
        .write(vec![WriteOp::InsertToken(token.clone())])
        .await
        .expect("token");
    assert_eq!(
        store.get_token_by_hash(&[3; 32]).await.expect("get"),
        Some((token.clone(), user.clone()))
    );
    let r = store
        .write(vec![WriteOp::InsertToken(TokenRow {
            id: TokenId::new(),
            ..token.clone()
        })])
        .await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");
    let r = store
        .write(vec![WriteOp::InsertToken(TokenRow {
            id: TokenId::new(),
            user_id: UserId::new(),
            hash: vec![4],
            ..token
        })])
        .await;
    assert!(matches!(r, Err(StoreError::MissingReference)), "{r:?}");

    // PostgreSQL refuses NUL in text; the error must not quote the value.
    let r = store
        .write(vec![WriteOp::InsertUser(UserRow {
            id: UserId::new(),
            username: "secret\0value".into(),
            ..user
        })])
        .await;
    match r {
        Err(StoreError::Backend(m)) => assert!(!m.contains("secret"), "{m}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert_eq!(store.count_users().await.expect("count"), 1);
    store.close().await;
    db.drop_now().await.expect("drop database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_under_concurrency() {
    let Some((store, db)) = fixture().await else {
        return;
    };
    let store = Arc::new(store);
    // Many concurrent writers, some colliding on unique terms (and so
    // possibly deadlocking across writer groups).
    let mut handles = Vec::new();
    for n in 0..400u32 {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            let c = contact();
            let terms = vec![
                term(&format!("k{}", n % 50), true),
                term(&format!("k{}", (n + 7) % 50), false),
            ];
            store.write(insert(&c, terms)).await
        }));
    }
    let mut ok = 0;
    for h in handles {
        match h.await.expect("task") {
            Ok(()) => ok += 1,
            Err(StoreError::Duplicate) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(ok, 50, "each unique term is taken exactly once");
    assert_eq!(store.count_contacts().await.expect("count"), 50);

    // Close finishes queued writes, then refuses new ones.
    let mut pending = Vec::new();
    for _ in 0..20 {
        let store = Arc::clone(&store);
        pending.push(tokio::spawn(
            async move { store.write(insert(&contact(), vec![])).await },
        ));
    }
    tokio::task::yield_now().await;
    store.close().await;
    for p in pending {
        match p.await.expect("task") {
            Ok(()) => {}
            Err(StoreError::Backend(m)) => assert_eq!(m, "the store is closed"),
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    let r = store.write(insert(&contact(), vec![])).await;
    assert!(
        matches!(&r, Err(StoreError::Backend(m)) if m == "the store is closed"),
        "{r:?}"
    );
    assert!(store.get_contact(SubjectId::new()).await.is_err());
    store.close().await; // twice is fine
    db.drop_now().await.expect("drop database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_race_free() {
    let Some(admin) = test_database_url() else {
        println!("skipped: STEWARD_TEST_DATABASE_URL is not set");
        return;
    };
    let (url, db) = fresh_test_database(&admin).await.expect("create test database");
    // Several processes starting at once.
    let mut starts = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        let vault = db.vault_path();
        starts.push(tokio::spawn(async move { PgStore::connect(&url, &vault).await }));
    }
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.expect("task").expect("connect"));
    }
    let again = PgStore::connect(&url, &db.vault_path()).await.expect("reconnect");
    let c = contact();
    again.write(insert(&c, vec![])).await.expect("insert");
    for s in &stores {
        assert_eq!(s.count_contacts().await.expect("count"), 1);
        s.close().await;
    }
    again.close().await;

    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let rows = client
        .query("SELECT version, name FROM schema_migrations ORDER BY version", &[])
        .await
        .expect("query");
    let applied: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        applied,
        [
            (1, "init"),
            (2, "keys"),
            (3, "audit"),
            (4, "access"),
            (5, "consent"),
            (6, "dsr"),
            (7, "legal_holds"),
            (8, "outbox"),
            (9, "export_bundles"),
            (10, "pending_consents"),
            (11, "incidents"),
            (12, "retention"),
            (13, "audit_facts"),
            (14, "scim"),
            (15, "drp")
        ]
        .map(|(v, n)| (v, n.to_string())),
        "each migration applied once"
    );
    drop(client);
    db.drop_now().await.expect("drop database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_dispatches_and_bad_urls_fail_cleanly() {
    let nowhere = std::env::temp_dir().join("steward-unused-vault.db");
    let r = PgStore::connect("postgres://nobody:pw@127.0.0.1:1/none?connect_timeout=2", &nowhere).await;
    assert!(
        matches!(&r, Err(StoreError::Backend(m)) if !m.contains("pw")),
        "{:?}",
        r.err()
    );
    let r = PgStore::connect("postgres://h/db?bogus_option=1", &nowhere).await;
    assert!(matches!(r, Err(StoreError::Backend(_))));
    let Some(admin) = test_database_url() else {
        return;
    };
    let (url, db) = fresh_test_database(&admin).await.expect("create test database");
    let store = steward_store::open(&url, &db.vault_path()).await.expect("open");
    assert_eq!(store.backend(), "postgres");
    store.close().await;
    drop(db); // the guard's Drop path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_kept_in_postgres_by_earlier_versions_move_into_the_vault() {
    let Some((store, db)) = fixture().await else {
        return;
    };
    let (kept, shredded) = (contact(), contact());
    for c in [&kept, &shredded] {
        store.write(insert(c, vec![])).await.expect("insert");
    }
    store.close().await;
    // An earlier version kept the wrapped keys in PostgreSQL.
    let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .expect("raw client");
    let conn = tokio::spawn(conn);
    for (c, wrapped) in [(&kept, vec![7u8, 7, 7]), (&shredded, vec![9u8, 9, 9])] {
        client
            .execute(
                "INSERT INTO subject_keys (subject_id, key_version, master_key_id, wrapped, created_at) \
                 VALUES ($1, 3, 'm-old', $2, 0)",
                &[c.subject_id.as_uuid(), &wrapped],
            )
            .await
            .expect("legacy key");
    }
    let store = PgStore::connect(db.url(), &db.vault_path()).await.expect("reconnect");
    let in_pg: i64 = client
        .query_one("SELECT count(*) FROM subject_keys", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(in_pg, 0, "the keys left PostgreSQL");
    let key = store
        .get_contact(kept.subject_id)
        .await
        .expect("get")
        .and_then(|c| c.key);
    assert_eq!(
        key,
        Some(steward_store::StoredKey {
            master_key_id: "m-old".into(),
            version: 3,
            wrapped: vec![7, 7, 7],
        })
    );
    assert_eq!(store.count_subject_keys_not_under("m-new").await.expect("count"), 2);
    // Shredding works on a moved key, and is refused for a missing one.
    store
        .write(vec![WriteOp::DestroySubjectKey {
            subject_id: shredded.subject_id,
        }])
        .await
        .expect("shred");
    let r = store
        .write(vec![WriteOp::DestroySubjectKey {
            subject_id: shredded.subject_id,
        }])
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    assert_eq!(store.count_subject_keys_not_under("m-new").await.expect("count"), 1);
    store.close().await;
    drop(client);
    let _ = conn.await;
    db.drop_now().await.expect("drop database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_erasure_keeps_the_key_and_a_failed_insert_takes_its_key_back() {
    let Some((store, db)) = fixture().await else {
        return;
    };
    let c = contact();
    let key = |v: u8| steward_store::StoredKey {
        master_key_id: "m1".into(),
        version: 1,
        wrapped: vec![v; 8],
    };
    store
        .write(vec![
            WriteOp::InsertContact {
                row: c.clone(),
                terms: vec![],
            },
            WriteOp::InsertSubjectKey {
                subject_id: c.subject_id,
                key: key(1),
            },
        ])
        .await
        .expect("insert with key");
    // A hold makes the deleting transaction fail: the key stays.
    store
        .write(vec![WriteOp::PutLegalHold(Box::new(steward_store::LegalHoldRow {
            id: uuid::Uuid::now_v7(),
            subject_id: c.subject_id,
            reason: "litigation".into(),
            created_by: None,
            created_at: t(1),
            released_at: None,
            released_by: None,
        }))])
        .await
        .expect("hold");
    let r = store
        .write(vec![
            WriteOp::RequireNoLegalHold {
                subject_id: c.subject_id,
            },
            WriteOp::DeleteContact {
                subject_id: c.subject_id,
            },
            WriteOp::DestroySubjectKey {
                subject_id: c.subject_id,
            },
        ])
        .await;
    assert!(matches!(r, Err(StoreError::LegalHold)), "{r:?}");
    let got = store.get_contact(c.subject_id).await.expect("get").expect("kept");
    assert_eq!(got.key, Some(key(1)));
    // A contact whose insert fails (its id is taken) leaves no key behind.
    let other = steward_domain::SubjectId::new();
    let r = store
        .write(vec![
            WriteOp::InsertContact {
                row: ContactRow {
                    subject_id: other,
                    ..c.clone()
                },
                terms: vec![],
            },
            WriteOp::InsertSubjectKey {
                subject_id: other,
                key: key(2),
            },
            WriteOp::InsertContact {
                row: c.clone(),
                terms: vec![],
            },
        ])
        .await;
    assert!(r.is_err());
    assert!(store.get_contact(other).await.expect("get").is_none());
    assert_eq!(store.count_subject_keys_not_under("m2").await.expect("count"), 1);
    store.close().await;
    db.drop_now().await.expect("drop database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_keys_the_vault_refuses_commits_nothing() {
    let Some((store, db)) = fixture().await else {
        return;
    };
    let store = std::sync::Arc::new(store);
    let key = |v: u8| steward_store::StoredKey {
        master_key_id: "m1".into(),
        version: 1,
        wrapped: vec![v; 8],
    };
    let existing = contact();
    store
        .write(vec![
            WriteOp::InsertContact {
                row: existing.clone(),
                terms: vec![],
            },
            WriteOp::InsertSubjectKey {
                subject_id: existing.subject_id,
                key: key(1),
            },
        ])
        .await
        .expect("insert with key");
    // Several writes at once (so some share a group): good ones, and one
    // whose new contact comes with a second key for `existing`, which the
    // vault refuses after the job's statements have run.
    let mut tasks = Vec::new();
    let mut good = Vec::new();
    for i in 0..12u8 {
        let c = contact();
        let bad = i == 5;
        if !bad {
            good.push(c.subject_id);
        }
        let s = std::sync::Arc::clone(&store);
        let target = if bad { existing.subject_id } else { c.subject_id };
        tasks.push((
            c.subject_id,
            bad,
            tokio::spawn(async move {
                s.write(vec![
                    WriteOp::InsertContact { row: c, terms: vec![] },
                    WriteOp::InsertSubjectKey {
                        subject_id: target,
                        key: key(i + 2),
                    },
                ])
                .await
            }),
        ));
    }
    for (id, bad, task) in tasks {
        let r = task.await.expect("task");
        if bad {
            assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");
            assert!(
                store.get_contact(id).await.expect("get").is_none(),
                "nothing of it committed"
            );
        } else {
            r.expect("a good write");
            assert!(store.get_contact(id).await.expect("get").and_then(|c| c.key).is_some());
        }
    }
    assert_eq!(
        store
            .get_contact(existing.subject_id)
            .await
            .expect("get")
            .and_then(|c| c.key),
        Some(key(1)),
        "the existing key is untouched"
    );
    assert_eq!(good.len(), 11);
    store.close().await;
    db.drop_now().await.expect("drop database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_left_behind_by_a_failed_destruction_is_destroyed_at_the_next_start() {
    let Some((store, db)) = fixture().await else {
        return;
    };
    let kept = contact();
    store.write(insert(&kept, vec![])).await.expect("insert");
    store.close().await;
    drop(store);
    // Keys stored two hours ago, of a contact that exists and of one that
    // is gone, and a key of a contact that may still be on its way.
    let vault = steward_store::vault::KeyVault::open(&db.vault_path()).expect("vault");
    let key = |v: u8| steward_store::StoredKey {
        master_key_id: "m1".into(),
        version: 1,
        wrapped: vec![v; 8],
    };
    let now = chrono::Utc::now().timestamp_micros();
    let (orphan, young) = (steward_domain::SubjectId::new(), steward_domain::SubjectId::new());
    vault
        .import(vec![
            (kept.subject_id, key(1), now - 7_200_000_000),
            (orphan, key(2), now - 7_200_000_000),
            (young, key(3), now),
        ])
        .await
        .expect("import");
    drop(vault);
    let store = PgStore::connect(db.url(), &db.vault_path()).await.expect("reconnect");
    assert_eq!(store.count_subject_keys_not_under("m2").await.expect("count"), 2);
    let vault = steward_store::vault::KeyVault::open(&db.vault_path()).expect("vault");
    assert_eq!(
        vault.get_many(&[kept.subject_id, orphan, young]).expect("keys"),
        vec![Some(key(1)), None, Some(key(3))]
    );
    store.close().await;
    db.drop_now().await.expect("drop database");
}

/// Entries appended before migration 13 have no facts: the scan hands over
/// the entry itself for those, and the facts for the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scan_hands_over_entries_without_facts() {
    let Some((store, db)) = fixture().await else {
        return;
    };
    for i in 0..3 {
        let r = steward_audit::AuditRecord::new(
            t(i),
            steward_audit::Actor::system(),
            "contact.read",
            steward_audit::Outcome::Ok,
        );
        store
            .write(vec![WriteOp::AppendAudit(Box::new(r))])
            .await
            .expect("append");
    }
    let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .expect("raw client");
    let conn = tokio::spawn(conn);
    client
        .execute("UPDATE audit_log SET facts = NULL WHERE idx = 1", &[])
        .await
        .expect("an older entry");
    let entries = store.audit_entries(0, 10).await.expect("entries");
    let mut kinds = Vec::new();
    store
        .scan_audit(0, 10, &mut |i, row| {
            kinds.push(match row {
                steward_store::ScanRow::Facts(f) => {
                    format!(
                        "{i} facts {}",
                        steward_audit::facts::decode(f).map_or("?", |f| f.action)
                    )
                }
                steward_store::ScanRow::Entry(e) => format!("{i} entry {}", e == entries[1].bytes.as_slice()),
            });
            true
        })
        .await
        .expect("scan");
    assert_eq!(kinds, ["0 facts contact.read", "1 entry true", "2 facts contact.read"]);
    drop(client);
    conn.abort();
}
