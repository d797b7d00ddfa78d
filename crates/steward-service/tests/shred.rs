//! Crypto-shredding through the service layer, on real SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use steward_service::{Config, Service, ServiceError};
use zeroize::Zeroizing;

async fn ctx(service: &Service, user: &str, role: &str) -> steward_service::RequestContext {
    service
        .create_user(user, role, Zeroizing::new("long-enough-password".into()))
        .await
        .unwrap();
    let p = service.local_principal(user).await.unwrap();
    service.context(p, None, None, None).await.unwrap()
}

#[tokio::test]
async fn destroying_the_key_makes_the_subject_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(&Config::new(dir.path().join("data"))).await.unwrap();
    let sales = ctx(&service, "sam", "sales").await;
    let dpo = ctx(&service, "dee", "dpo").await;
    let body = json!({"given_name": "Shredded", "email": "gone@example.org"});
    let gone = service
        .create_contact(&sales, body.as_object().unwrap().clone())
        .await
        .unwrap();
    let body = json!({"given_name": "Kept", "email": "kept@example.org"});
    let kept = service
        .create_contact(&sales, body.as_object().unwrap().clone())
        .await
        .unwrap();

    // Only for compliance.
    assert!(matches!(
        service.crypto_shred(&sales, gone.id).await,
        Err(ServiceError::Forbidden(_))
    ));
    service.crypto_shred(&dpo, gone.id).await.unwrap();
    assert!(matches!(
        service.crypto_shred(&dpo, gone.id).await,
        Err(ServiceError::NotFound(_))
    ));

    // Unreadable for everyone, listed nowhere; the other subject is untouched.
    for c in [&sales, &dpo] {
        assert!(matches!(
            service.get_contact(c, gone.id).await,
            Err(ServiceError::NotFound(_))
        ));
        let page = service.list_contacts(c, &Default::default()).await.unwrap();
        assert_eq!(page.items.iter().map(|v| v.id).collect::<Vec<_>>(), vec![kept.id]);
    }
    assert_eq!(
        service.get_contact(&sales, kept.id).await.unwrap().fields["given_name"],
        "Kept"
    );
    service.close().await;

    // The ciphertext is still in the file, but no key in the database opens it.
    let db = rusqlite::Connection::open(dir.path().join("data").join("steward.db")).unwrap();
    let keys: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM subject_keys WHERE subject_id = ?1",
            [gone.id.as_bytes()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(keys, 0);
    let blob: Vec<u8> = db
        .query_row(
            "SELECT fields FROM contacts WHERE subject_id = ?1",
            [gone.id.as_bytes()],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!blob.is_empty());
    assert!(!String::from_utf8_lossy(&blob).contains("Shredded"));
}
