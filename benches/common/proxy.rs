//! A counting TCP proxy for Redis (RESP) and PostgreSQL (frontend/backend protocol 3.0):
//! forwards bytes unchanged, counts the commands (Redis) or the messages (PostgreSQL) the
//! client sends, and the network round trips: the times the server starts answering after
//! the client spoke.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Redis,
    Postgres,
}

#[derive(Default, Debug, Clone)]
pub struct Counts {
    /// Redis: command names; PostgreSQL: message type names.
    pub messages: BTreeMap<String, u64>,
    pub round_trips: u64,
}

#[derive(Clone, Default)]
pub struct Stats(Arc<Mutex<Counts>>);

impl Stats {
    pub fn take(&self) -> Counts {
        std::mem::take(&mut *self.0.lock().expect("stats"))
    }
}

/// Starts a proxy on an ephemeral loopback port in front of `upstream`; returns its address.
pub async fn start(upstream: SocketAddr, protocol: Protocol, stats: Stats) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy address");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let stats = stats.clone();
            tokio::spawn(async move {
                if let Ok(server) = TcpStream::connect(upstream).await {
                    pipe(client, server, protocol, stats).await;
                }
            });
        }
    });
    addr
}

async fn pipe(client: TcpStream, server: TcpStream, protocol: Protocol, stats: Stats) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Whether the client spoke last: the next server bytes then start a round trip.
    let client_spoke = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let upward = {
        let stats = stats.clone();
        let client_spoke = Arc::clone(&client_spoke);
        async move {
            let mut parser = Parser::new(protocol);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match client_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let names = parser.feed(&buf[..n]);
                {
                    let mut counts = stats.0.lock().expect("stats");
                    for name in names {
                        *counts.messages.entry(name).or_default() += 1;
                    }
                }
                client_spoke.store(true, std::sync::atomic::Ordering::SeqCst);
                if server_write.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = server_write.shutdown().await;
        }
    };
    let downward = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if client_spoke.swap(false, std::sync::atomic::Ordering::SeqCst) {
                stats.0.lock().expect("stats").round_trips += 1;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upward, downward);
}

/// Splits the client's byte stream into messages and names them.
struct Parser {
    protocol: Protocol,
    buf: Vec<u8>,
    /// PostgreSQL: before the StartupMessage, messages have no type byte.
    startup: bool,
}

impl Parser {
    fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            buf: Vec::new(),
            startup: true,
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut names = Vec::new();
        loop {
            let parsed = match self.protocol {
                Protocol::Redis => resp_command(&self.buf),
                Protocol::Postgres => self.pg_message(),
            };
            match parsed {
                Some((name, used)) => {
                    self.buf.drain(..used);
                    names.push(name);
                }
                None => break,
            }
        }
        names
    }

    fn pg_message(&mut self) -> Option<(String, usize)> {
        let b = &self.buf;
        if self.startup {
            if b.len() < 8 {
                return None;
            }
            let len = u32::from_be_bytes(b[0..4].try_into().ok()?) as usize;
            if b.len() < len {
                return None;
            }
            let code = u32::from_be_bytes(b[4..8].try_into().ok()?);
            let name = match code {
                80_877_103 => "SSLRequest",
                80_877_104 => "GSSENCRequest",
                80_877_102 => "CancelRequest",
                _ => {
                    self.startup = false;
                    "StartupMessage"
                }
            };
            return Some((name.to_owned(), len));
        }
        if b.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes(b[1..5].try_into().ok()?) as usize;
        if b.len() < 1 + len {
            return None;
        }
        let name = match b[0] {
            b'Q' => "Query",
            b'P' => "Parse",
            b'B' => "Bind",
            b'E' => "Execute",
            b'D' => "Describe",
            b'S' => "Sync",
            b'H' => "Flush",
            b'C' => "Close",
            b'X' => "Terminate",
            b'p' => "Password",
            other => return Some((format!("0x{other:02x}"), 1 + len)),
        };
        Some((name.to_owned(), 1 + len))
    }
}

/// One RESP command (an array of bulk strings) at the start of `b`: its name and length.
fn resp_command(b: &[u8]) -> Option<(String, usize)> {
    fn line(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let end = b[at..].windows(2).position(|w| w == b"\r\n")? + at;
        Some((&b[at..end], end + 2))
    }
    if b.is_empty() {
        return None;
    }
    if b[0] != b'*' {
        // An inline command: one line.
        let (text, next) = line(b, 0)?;
        let name = String::from_utf8_lossy(text.split(|&c| c == b' ').next()?).to_uppercase();
        return Some((name, next));
    }
    let (count, mut at) = line(b, 1)?;
    let count: usize = std::str::from_utf8(count).ok()?.parse().ok()?;
    let mut name = String::new();
    for i in 0..count {
        if b.get(at)? != &b'$' {
            return None;
        }
        let (len, data) = line(b, at + 1)?;
        let len: usize = std::str::from_utf8(len).ok()?.parse().ok()?;
        if b.len() < data + len + 2 {
            return None;
        }
        if i == 0 {
            name = String::from_utf8_lossy(&b[data..data + len]).to_uppercase();
        }
        at = data + len + 2;
    }
    Some((name, at))
}

/// `host:port` of a `scheme://[user@]host:port/...` URL, and the URL with them replaced.
pub fn split_url(url: &str) -> (SocketAddr, impl Fn(SocketAddr) -> String + use<>) {
    let (scheme, rest) = url.split_once("://").expect("scheme://");
    let (auth, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, String::new()),
    };
    let (user, host) = match auth.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), auth),
    };
    let addr: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(host)
        .expect("host:port")
        .next()
        .expect("an address");
    let scheme = scheme.to_owned();
    (addr, move |a: SocketAddr| {
        format!("{scheme}://{user}{a}{tail}")
    })
}
