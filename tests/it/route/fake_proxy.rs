//! A fake HTTP proxy that records each request head and answers every one with a fixed
//! response, then closes. For what a real proxy cannot be configured to show: exactly
//! which `Proxy-Authorization` header arrived (credentials with `%` and `@`, which
//! tinyproxy's config cannot hold), or a status it would not send.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// A request head larger than this is cut; a client has no business sending more.
const MAX_HEAD: usize = 16 * 1024;

pub struct FakeProxy {
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeProxy {
    /// Answers every request with `response` (a whole HTTP response, head and body).
    pub fn start(response: &'static str) -> FakeProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake proxy");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut conn) = conn else { continue };
                    let head = read_head(&mut conn);
                    requests.lock().expect("lock").push(head);
                    let _ = conn.write_all(response.as_bytes());
                }
            })
        };
        FakeProxy {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// The request heads received so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

fn read_head(conn: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while head.len() < MAX_HEAD && !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

impl Drop for FakeProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Standard base64 (RFC 4648, with padding), for the expected `Proxy-Authorization` value.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A CONNECT proxy that tunnels its first request to where it asks and refuses every
/// later one (`403`): a proxy with a limit of one tunnel per client, as some egress
/// proxies are set up.
pub struct OnceTunnel {
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OnceTunnel {
    pub fn start() -> OnceTunnel {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind once-tunnel proxy");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut conn) = conn else { continue };
                    let head = read_head(&mut conn);
                    let first = {
                        let mut requests = requests.lock().expect("lock");
                        requests.push(head.clone());
                        requests.len() == 1
                    };
                    let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                    match (first, TcpStream::connect(&target)) {
                        (true, Ok(upstream)) => {
                            let _ = conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                            pump(conn, upstream);
                        }
                        _ => {
                            let _ = conn.write_all(
                                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            );
                        }
                    }
                }
            })
        };
        OnceTunnel {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// The request heads received so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

/// Copies both ways between `a` and `b` on two threads until either side closes.
fn pump(a: TcpStream, b: TcpStream) {
    let (mut a_read, mut b_write) = (a.try_clone().expect("clone"), b.try_clone().expect("clone"));
    let (mut b_read, mut a_write) = (b, a);
    thread::spawn(move || {
        let _ = std::io::copy(&mut a_read, &mut b_write);
        let _ = b_write.shutdown(std::net::Shutdown::Write);
    });
    thread::spawn(move || {
        let _ = std::io::copy(&mut b_read, &mut a_write);
        let _ = a_write.shutdown(std::net::Shutdown::Write);
    });
}

impl Drop for OnceTunnel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A CONNECT proxy that tunnels every request, and cuts the second tunnel (a joined
/// stream) once it has carried `after` bytes from the client: a stream lost in the
/// middle of what it carries.
pub struct CuttingTunnel {
    pub port: u16,
    stop: Arc<AtomicBool>,
    /// Bytes the second tunnel carried from the client when it was cut (0: not cut).
    cut_after: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl CuttingTunnel {
    pub fn start(after: u64) -> CuttingTunnel {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind cutting proxy");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let cut_after = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, cut_after) = (stop.clone(), cut_after.clone());
            thread::spawn(move || {
                let mut tunnels = 0;
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut conn) = conn else { continue };
                    let head = read_head(&mut conn);
                    let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let Ok(upstream) = TcpStream::connect(&target) else {
                        continue;
                    };
                    let _ = conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                    tunnels += 1;
                    if tunnels == 2 {
                        cut_once_carried(conn, upstream, after, cut_after.clone());
                    } else {
                        pump(conn, upstream);
                    }
                }
            })
        };
        CuttingTunnel {
            port,
            stop,
            cut_after,
            thread: Some(thread),
        }
    }

    /// The bytes the second tunnel carried from the client before the cut.
    pub fn cut_after(&self) -> u64 {
        self.cut_after.load(Ordering::SeqCst)
    }
}

/// As [`pump`], but once `after` bytes went from `client` to `upstream`, shuts both
/// connections down both ways and stores how many went in `cut_after`.
fn cut_once_carried(client: TcpStream, upstream: TcpStream, after: u64, cut_after: Arc<AtomicU64>) {
    let (mut from_client, mut to_upstream) = (
        client.try_clone().expect("clone"),
        upstream.try_clone().expect("clone"),
    );
    let (mut from_upstream, mut to_client) = (upstream, client);
    thread::spawn(move || {
        let mut carried = 0u64;
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = from_client.read(&mut buf) {
            if to_upstream.write_all(&buf[..n]).is_err() {
                break;
            }
            carried += n as u64;
            if carried >= after {
                let _ = from_client.shutdown(std::net::Shutdown::Both);
                let _ = to_upstream.shutdown(std::net::Shutdown::Both);
                cut_after.store(carried, Ordering::SeqCst);
                return;
            }
        }
        let _ = to_upstream.shutdown(std::net::Shutdown::Write);
    });
    thread::spawn(move || {
        let _ = std::io::copy(&mut from_upstream, &mut to_client);
        let _ = to_client.shutdown(std::net::Shutdown::Write);
    });
}

impl Drop for CuttingTunnel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
