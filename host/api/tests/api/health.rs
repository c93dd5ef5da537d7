//! What a load balancer or an orchestrator asks a node: `/healthz` (the
//! process answers) and `/readyz` (it can serve: the database answers and
//! has exactly this release's migrations), without an API key.

use sqlx::AnyPool;

use crate::both_backends;
use crate::support::{App, Backend, Reply};

both_backends!(works_when_readyz_checks_the_database_and_its_schema,);

async fn probe(app: &App, path: &str) -> Reply {
    Reply::read(app.http.get(format!("{}{path}", app.base)).send().await.expect("request")).await
}

async fn works_when_readyz_checks_the_database_and_its_schema(backend: Backend) {
    let app = App::start(backend).await;
    let health = probe(&app, "/healthz").await;
    assert_eq!((health.status, health.text.as_str()), (200, "ok"));
    let ready = probe(&app, "/readyz").await;
    assert_eq!((ready.status, ready.text.as_str()), (200, "ready"));

    // A migration of this release missing, then one of a newer release.
    sqlx::any::install_default_drivers();
    let database = AnyPool::connect(app.database_url()).await.expect("pool");
    let latest: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations").fetch_one(&database).await.expect("latest");
    sqlx::query("UPDATE _sqlx_migrations SET version = 99999 WHERE version = $1").bind(latest).execute(&database).await.expect("move");
    let refused = probe(&app, "/readyz").await;
    assert_eq!((refused.status, refused.content_type.as_str()), (503, "application/problem+json"), "{}", refused.text);
    let detail = refused.body["detail"].as_str().expect("detail");
    assert!(detail.contains(&format!("lacks migration(s) {latest} of this release")), "{detail}");
    sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 SELECT $1, description, success, checksum, execution_time FROM _sqlx_migrations WHERE version = 99999")
        .bind(latest)
        .execute(&database)
        .await
        .expect("restore");
    let newer = probe(&app, "/readyz").await;
    assert_eq!(newer.status, 503, "{}", newer.text);
    assert!(newer.body["detail"].as_str().expect("detail").contains("migration(s) 99999 that this release does not know"), "{}", newer.text);
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 99999").execute(&database).await.expect("clean");
    assert_eq!(probe(&app, "/readyz").await.status, 200);
    assert_eq!(probe(&app, "/healthz").await.status, 200, "alive whatever the schema");
}
