//! Compare-and-swap saves under the striped locks.

use super::super::locking::{STRIPES, stripe_of};
use super::*;

#[tokio::test]
async fn save_is_compare_and_swap_on_the_file_content() {
    let dir = TempDir::new();
    let store = dir.store();
    let (key, v0) = store.create(&record(json!({"n": 0}))).await.unwrap();
    // Another process (Django, say) rewrites the file.
    fs::write(store.path(&key).unwrap(), r#"{"n":7}"#).unwrap();
    assert_eq!(
        store
            .save(&key, &record(json!({"n": 1})), &v0)
            .await
            .unwrap(),
        SaveOutcome::Conflict
    );
    assert_eq!(load_data(&store, &key).await, Some(json!({"n": 7})));
    let fresh = store.load(&key).await.unwrap().unwrap();
    assert!(matches!(
        store
            .save(&key, &record(json!({"n": 8})), &fresh.version)
            .await
            .unwrap(),
        SaveOutcome::Saved { .. }
    ));
    // Deleted: gone, and not resurrected.
    store.delete(&key).await.unwrap();
    store.delete(&key).await.unwrap();
    assert_eq!(
        store
            .save(&key, &record(json!({"n": 9})), &fresh.version)
            .await
            .unwrap(),
        SaveOutcome::Gone
    );
    assert!(!store.path(&key).unwrap().exists());
    assert!(dir.names().is_empty(), "{:?}", dir.names());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_saves_through_sessions_keep_every_key() {
    let dir = TempDir::new();
    // Two stores on one directory: they must exclude each other too.
    let stores = [dir.store(), dir.store()];
    let config = Arc::new(SessionConfig::default());
    let session = Session::new(stores[0].clone(), Arc::clone(&config));
    session.insert("base", true).unwrap();
    session.save().await.unwrap();
    let key = session.session_key().unwrap();

    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = stores[i % 2].clone();
            let (config, key) = (Arc::clone(&config), key.clone());
            tokio::spawn(async move {
                let s = Session::load(store, config, key.as_str()).await.unwrap();
                s.insert(format!("k{i}"), i).unwrap();
                s.save().await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let merged = Session::load(stores[1].clone(), config, key.as_str())
        .await
        .unwrap();
    for i in 0..50 {
        assert_eq!(
            merged.get::<usize>(&format!("k{i}")).unwrap(),
            Some(i),
            "k{i} lost"
        );
    }
    assert_eq!(merged.get::<bool>("base").unwrap(), Some(true));
    assert_eq!(dir.names(), BTreeSet::from([format!("sessionid{key}")]));
}

/// The file lock excludes other holders of the lock file (another process, here another
/// open file description, which `flock` treats alike), and loads never wait for it.
#[cfg(any(target_os = "linux", target_os = "macos"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_wait_for_the_file_lock_and_loads_do_not() {
    let dir = TempDir::new();
    let store = dir.store();
    let (key, version) = store.create(&record(json!({"n": 0}))).await.unwrap();
    let stripe = stripe_of(&format!("sessionid{key}"));
    let lock_path = dir.file(&format!("{LOCK_FILE_PREFIX}{stripe:02}"));
    let other = OpenOptions::new().write(true).open(&lock_path).unwrap();
    other.lock().unwrap();

    let saving = tokio::spawn({
        let (store, key) = (store.clone(), key.clone());
        async move {
            store
                .save(&key, &record(json!({"n": 1})), &version)
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert!(
        !saving.is_finished(),
        "a save ignored another holder's lock"
    );
    // Loads take no file lock (the rename keeps them atomic).
    assert_eq!(load_data(&store, &key).await, Some(json!({"n": 0})));
    other.unlock().unwrap();
    assert!(matches!(saving.await.unwrap(), SaveOutcome::Saved { .. }));
    assert_eq!(load_data(&store, &key).await, Some(json!({"n": 1})));
}

#[tokio::test]
async fn lock_files_are_bounded() {
    let dir = TempDir::new();
    let store = dir.store();
    for _ in 0..300 {
        let (key, _) = store.create(&record(json!({}))).await.unwrap();
        store.delete(&key).await.unwrap();
    }
    let all = fs::read_dir(&dir.0).unwrap().count();
    assert!(all <= STRIPES, "{all} files left");
    assert!(dir.names().is_empty(), "{:?}", dir.names());
}

#[test]
fn stripes_are_stable_across_processes_and_versions() {
    // FNV-1a 64 of the file name; changing it would let two versions race unlocked.
    assert_eq!(stripe_of(""), (0xcbf2_9ce4_8422_2325_u64 % 64) as usize);
    assert_eq!(stripe_of("a"), (0xaf63_dc4c_8601_ec8c_u64 % 64) as usize);
    let spread: BTreeSet<_> = (0..1000)
        .map(|_| stripe_of(&format!("sessionid{}", SessionKey::generate().unwrap())))
        .collect();
    assert_eq!(spread.len(), STRIPES);
}
