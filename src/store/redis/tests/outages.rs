//! Redis down, and round trips and recovery through a proxy that sees every command.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, timeout};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_there_is_unavailable() {
    let connected = timeout(NO_HANG, RedisStore::connect("redis://127.0.0.1:1/"))
        .await
        .expect("connect hung");
    assert!(is_unavailable(&connected), "{connected:?}");

    let store = unreachable_store("redis://127.0.0.1:1/");
    let key = SessionKey::generate().expect("rng");
    let r = timeout(NO_HANG, store.load(&key)).await.expect("load hung");
    assert!(is_unavailable(&r), "{r:?}");
    let r = timeout(NO_HANG, store.create(&live(json!({}))))
        .await
        .expect("create hung");
    assert!(is_unavailable(&r), "{r:?}");
    let r = timeout(
        NO_HANG,
        store.save(&key, &live(json!({})), &Version::from_bytes(*b"{}")),
    )
    .await
    .expect("save hung");
    assert!(is_unavailable(&r), "{r:?}");
    let r = timeout(NO_HANG, store.delete(&key))
        .await
        .expect("delete hung");
    assert!(is_unavailable(&r), "{r:?}");
    let r = timeout(NO_HANG, store.exists(&key))
        .await
        .expect("exists hung");
    assert!(is_unavailable(&r), "{r:?}");
    assert!(
        store.clear_expired().await.is_ok(),
        "clear_expired does nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_stay_out_of_debug_and_errors() {
    let url = "redis://user:hunter2-secret@127.0.0.1:1/";
    let error = timeout(NO_HANG, RedisStore::connect(url))
        .await
        .expect("connect hung")
        .expect_err("nothing listens on port 1");
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
    let store = unreachable_store(url).with_codec(Codec::django("s3cr3t-key", ["old-k3y"]));
    let debug = format!("{store:?}");
    for secret in ["hunter2", "s3cr3t", "old-k3y", "user"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(debug.contains("sessionbase:"), "{debug}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_settings_are_configuration_errors() {
    for url in [
        "http://127.0.0.1:6379/",
        "redis://",
        "not a url",
        "redis://h/db",
    ] {
        let r = timeout(NO_HANG, RedisStore::connect(url))
            .await
            .expect("connect hung");
        assert!(matches!(r, Err(Error::Config(_))), "{url}: {r:?}");
    }
    let r = RedisStore::cluster(Vec::<String>::new()).await;
    assert!(matches!(r, Err(Error::Config(_))), "{r:?}");
    let r = timeout(NO_HANG, RedisStore::cluster(["http://127.0.0.1:7000/"]))
        .await
        .expect("cluster hung");
    assert!(matches!(r, Err(Error::Config(_))), "{r:?}");
}

// ----- round trips and recovery, through a proxy that sees every command -----

/// A TCP proxy in front of Redis that records every command it forwards, and can
/// play dead (drop every connection and refuse new ones) to simulate an outage.
struct Proxy {
    /// `REDIS_URL` with the proxy's address instead of Redis's.
    url: String,
    commands: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
    up: Arc<AtomicBool>,
    kill: watch::Sender<u64>,
}

impl Proxy {
    /// `None` when `REDIS_URL` is not a plain `redis://host:port` URL.
    async fn start(redis_url: &str) -> Option<Self> {
        let rest = redis_url.strip_prefix("redis://")?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (format!("{u}@"), h),
            None => (String::new(), authority),
        };
        let upstream = if hostport.contains(':') {
            hostport.to_owned()
        } else {
            format!("{hostport}:6379")
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let commands = Arc::new(Mutex::new(Vec::new()));
        let up = Arc::new(AtomicBool::new(true));
        let (kill, _) = watch::channel(0u64);
        let proxy = Self {
            url: format!("redis://{userinfo}{addr}/{path}"),
            commands: Arc::clone(&commands),
            up: Arc::clone(&up),
            kill: kill.clone(),
        };
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !up.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (upstream, commands, kill) =
                    (upstream.clone(), Arc::clone(&commands), kill.subscribe());
                tokio::spawn(pipe(client, upstream, commands, kill));
            }
        });
        Some(proxy)
    }

    /// The command names (and arguments, lossily as text) forwarded since the last call.
    fn take(&self) -> Vec<Vec<String>> {
        std::mem::take(&mut *self.commands.lock().expect("lock"))
            .into_iter()
            .map(|args| {
                args.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .collect()
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.kill.send_modify(|generation| *generation += 1);
        }
    }
}

async fn pipe(
    client: TcpStream,
    upstream: String,
    commands: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
    mut kill: watch::Receiver<u64>,
) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut pending = Vec::new();
        loop {
            let n = client_read.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some((args, used)) = parse_command(&pending) {
                commands.lock().expect("lock").push(args);
                pending.drain(..used);
            }
            server_write.write_all(&buf[..n]).await?;
        }
    };
    let replies = tokio::io::copy(&mut server_read, &mut client_write);
    tokio::select! {
        _ = requests => {}
        _ = replies => {}
        _ = kill.changed() => {}
    }
}

/// One RESP request (`*N\r\n` then N bulk strings) from the front of `buf`, and how many
/// bytes it took; `None` until it is complete.
fn parse_command(buf: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    fn line(buf: &[u8], at: usize, marker: u8) -> Option<(usize, usize)> {
        if *buf.get(at)? != marker {
            panic!("unexpected RESP request byte {:?}", buf[at] as char);
        }
        let end = at + buf[at..].windows(2).position(|w| w == b"\r\n")?;
        let n = std::str::from_utf8(&buf[at + 1..end]).ok()?.parse().ok()?;
        Some((n, end + 2))
    }
    let (count, mut at) = line(buf, 0, b'*')?;
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        let (len, start) = line(buf, at, b'$')?;
        if buf.len() < start + len + 2 {
            return None;
        }
        args.push(buf[start..start + len].to_vec());
        at = start + len + 2;
    }
    Some((args, at))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_one_command() {
    let Some(url) = redis_url() else { return };
    let Some(proxy) = Proxy::start(&url).await else {
        // Straight to stderr: libtest would capture eprintln! and hide the notice.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"skipping the round-trip test: REDIS_URL is not redis://host:port\n",
        );
        return;
    };
    let prefix = unique_prefix();
    let store = RedisStore::connect(&proxy.url)
        .await
        .expect("connect through the proxy")
        .with_prefix(prefix.clone());
    let body = async move {
        proxy.take(); // the connection's handshake

        let (key, v0) = store.create(&live(json!({"n": 0}))).await.expect("create");
        let full = store.redis_key(&key);
        let sent = proxy.take();
        assert_eq!(sent.len(), 1, "create: {sent:?}");
        let set = &sent[0];
        assert_eq!(set[0].to_uppercase(), "SET", "{set:?}");
        assert_eq!(set[1], full);
        assert_eq!(set[2], r#"{"n":0}"#);
        assert_eq!(
            set[3].to_uppercase(),
            "NX",
            "create must never overwrite: {set:?}"
        );
        assert_eq!(set[4].to_uppercase(), "PX", "{set:?}");
        let ttl: i64 = set[5].parse().expect("a TTL in ms");
        assert!((3_590_000..=3_600_000).contains(&ttl), "{ttl}");

        let loaded = store.load(&key).await.expect("load").expect("loads");
        assert_eq!(proxy.take(), vec![vec!["GET".to_owned(), full.clone()]]);

        // The first save may have to load the script; after that, one EVALSHA.
        let SaveOutcome::Saved { version: v1, .. } = store
            .save(&key, &live(json!({"n": 1})), &loaded.version)
            .await
            .expect("save")
        else {
            panic!("save refused")
        };
        proxy.take();
        let outcome = store
            .save(&key, &live(json!({"n": 2})), &v1)
            .await
            .expect("save");
        assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
        let sent = proxy.take();
        assert_eq!(sent.len(), 1, "save: {sent:?}");
        assert_eq!(sent[0][0].to_uppercase(), "EVALSHA", "{sent:?}");
        assert_eq!(sent[0][2], "1", "the script touches one key");
        assert_eq!(sent[0][3], full);

        assert_eq!(
            store
                .save(&key, &live(json!({"n": 3})), &v0)
                .await
                .expect("save"),
            SaveOutcome::Conflict
        );
        assert_eq!(proxy.take().len(), 1, "a conflict is one command too");

        assert!(store.exists(&key).await.expect("exists"));
        assert_eq!(proxy.take(), vec![vec!["EXISTS".to_owned(), full.clone()]]);
        store.delete(&key).await.expect("delete");
        assert_eq!(proxy.take(), vec![vec!["DEL".to_owned(), full.clone()]]);
        store.clear_expired().await.expect("clear_expired");
        assert!(proxy.take().is_empty(), "clear_expired sends nothing");

        // An unknown key costs one GET; a malformed cookie costs nothing (it never
        // becomes a key).
        assert!(store.parse_key("abc*defgh").is_none());
        let unknown = SessionKey::generate().expect("rng");
        assert!(store.load(&unknown).await.expect("load").is_none());
        assert_eq!(proxy.take().len(), 1);
    };
    cleaning_up(&url, &prefix, body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_recovers_when_redis_comes_back() {
    let Some(url) = redis_url() else { return };
    let Some(proxy) = Proxy::start(&url).await else {
        // Straight to stderr: libtest would capture eprintln! and hide the notice.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"skipping the recovery test: REDIS_URL is not redis://host:port\n",
        );
        return;
    };
    let prefix = unique_prefix();
    let store = RedisStore::connect(&proxy.url)
        .await
        .expect("connect through the proxy")
        .with_prefix(prefix.clone());
    cleaning_up(&url, &prefix, outage(proxy, store)).await;
}

async fn outage(proxy: Proxy, store: RedisStore) {
    let (key, _) = store.create(&live(json!({"n": 1}))).await.expect("create");

    proxy.set_up(false);
    sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        let r = timeout(NO_HANG, store.load(&key)).await.expect("load hung");
        assert!(is_unavailable(&r), "{r:?}");
        let r = timeout(NO_HANG, store.create(&live(json!({}))))
            .await
            .expect("create hung");
        assert!(is_unavailable(&r), "{r:?}");
    }

    proxy.set_up(true);
    let deadline = Instant::now() + NO_HANG;
    loop {
        match timeout(NO_HANG, store.load(&key)).await.expect("load hung") {
            Ok(Some(loaded)) => {
                assert_eq!(loaded.data["n"], json!(1));
                break;
            }
            other => {
                assert!(Instant::now() < deadline, "never recovered: {other:?}");
                sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
