//! The embedded (SQLite) job store passes the shared job store conformance suite.

use std::sync::Arc;

use vecmigrate::store::sqlite::SqliteStore;
use vecmigrate::store::JobStore;

async fn sqlite_store() -> Arc<dyn JobStore> {
    // Kept for the life of the test process: the folder is removed by the OS's temp cleaning.
    let dir = tempfile::tempdir().unwrap().keep();
    Arc::new(SqliteStore::open(&dir.join("jobs.sqlite3")).unwrap())
}

vecmigrate::job_store_suite!(sqlite_store);

#[tokio::test]
async fn two_handles_on_one_file_see_each_others_writes() {
    // GIVEN two stores on the same file (a running job and `vecmigrate cancel` in another process)
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.sqlite3");
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    vecmigrate::store::conformance::save_is_conditional_on_version(Arc::new(a.clone())).await;
    // WHEN one writes a job
    let page = a.list_jobs(None, 10, None).await.unwrap();
    // THEN the other reads the same
    assert_eq!(b.list_jobs(None, 10, None).await.unwrap(), page);
    assert_eq!(page.jobs.len(), 1);
}
