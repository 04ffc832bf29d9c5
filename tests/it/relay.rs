//! A TCP relay between a client (push or pull) and serve that cuts its first connection
//! after a given number of bytes from the client (or, for a pull, from the server), and
//! passes every later connection whole: a network drop at a chosen point, made with real
//! sockets.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

pub struct Relay {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

/// What the first connection does once `cut_after` client bytes have passed.
#[derive(Clone, Copy)]
enum AtLimit {
    /// Close both sides: a network drop.
    Cut,
    /// The same, counting the server's bytes instead of the client's.
    CutReplies,
    /// Stop forwarding but keep both sides open: a hung network.
    Stall,
}

impl Relay {
    /// Relays to `target`; the first connection is cut after `cut_after` client bytes.
    pub fn start(target: SocketAddr, cut_after: u64) -> Relay {
        Relay::with(target, cut_after, AtLimit::Cut)
    }

    /// Relays to `target`; the first connection is cut after `cut_after` bytes from the
    /// server (what a pull receives).
    pub fn cutting_replies(target: SocketAddr, cut_after: u64) -> Relay {
        Relay::with(target, cut_after, AtLimit::CutReplies)
    }

    /// Relays to `target`; the first connection stops forwarding (and hangs, open) after
    /// `stall_after` client bytes.
    pub fn stalling(target: SocketAddr, stall_after: u64) -> Relay {
        Relay::with(target, stall_after, AtLimit::Stall)
    }

    fn with(target: SocketAddr, cut_after: u64, at_limit: AtLimit) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let n = count.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(target) else {
                    return;
                };
                let limit = if n == 0 { Some(cut_after) } else { None };
                pump(client, server, limit, at_limit);
            }
        });
        Relay { addr, connections }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn pump(client: TcpStream, server: TcpStream, limit: Option<u64>, at_limit: AtLimit) {
    let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut s_read, mut c_write) = (server, client);
    let (limit, reply_limit) = match at_limit {
        AtLimit::CutReplies => (None, limit),
        _ => (limit, None),
    };
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut passed = 0u64;
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let n = match limit {
                Some(limit) => n.min((limit - passed) as usize),
                None => n,
            };
            if s_write.write_all(&buf[..n]).is_err() {
                break;
            }
            passed += n as u64;
            if limit == Some(passed) {
                if let AtLimit::Stall = at_limit {
                    // Hold both sockets open and forward nothing more, for as long as the
                    // test runs.
                    loop {
                        thread::park();
                    }
                }
                break;
            }
        }
        // The target reads what was passed, then sees the connection end; the source
        // sees its connection die.
        let _ = s_write.shutdown(Shutdown::Write);
        let _ = c_read.shutdown(Shutdown::Both);
    });
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut passed = 0u64;
        loop {
            let n = match s_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let n = match reply_limit {
                Some(limit) => n.min((limit - passed) as usize),
                None => n,
            };
            if c_write.write_all(&buf[..n]).is_err() {
                break;
            }
            passed += n as u64;
            if reply_limit == Some(passed) {
                // Both ends see the connection die.
                let _ = s_read.shutdown(Shutdown::Both);
                break;
            }
        }
        let _ = c_write.shutdown(Shutdown::Both);
    });
}
