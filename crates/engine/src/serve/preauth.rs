//! The slots of connections that have not authenticated yet (TCP accepted, TLS not
//! done), and who gives one up when they are all taken.
//!
//! Anyone who can reach the port can open connections, without a certificate. Refusing
//! new connections once the slots are full would let such a peer keep every legitimate
//! client out for as long as it holds them; so instead the newcomer always gets a slot,
//! and the connection that is evicted for it is, in this order:
//!
//! 1. one that has not sent a whole ClientHello yet (an idle TCP connection or a stalled
//!    handshake: a real client sends its ClientHello at once);
//! 2. one from the source address holding the most slots (a flood from one address
//!    evicts itself, not others);
//! 3. the oldest.
//!
//! So a flood holds slots only as long as it keeps re-dialling, and a client that sends
//! its ClientHello gets through it. Behind a router (every connection from the router's
//! address) rule 2 cannot tell anyone apart: rules 1 and 3 are what let a client in.
//!
//! ```text
//! accept ─▶ PreAuth::admit(ip) ─▶ Ticket ──(ClientHello seen: Ticket::hello)──▶ TLS done:
//!              │ full                                                 Ticket dropped
//!              └─▶ victim's Ticket::evicted() fires: it closes
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// One connection holding a slot.
struct Slot {
    ip: IpAddr,
    started: Instant,
    hello: Arc<AtomicBool>,
    evict: Arc<Notify>,
}

/// The pre-authentication slots of a target.
pub struct PreAuth {
    max: usize,
    slots: Mutex<(u64, HashMap<u64, Slot>)>,
}

/// A connection's slot; dropping it (TLS done, or the connection gone) frees the slot.
pub struct Ticket {
    id: u64,
    owner: Arc<PreAuth>,
    hello: Arc<AtomicBool>,
    evict: Arc<Notify>,
}

impl PreAuth {
    pub fn new(max: usize) -> PreAuth {
        PreAuth {
            max,
            slots: Mutex::new((0, HashMap::new())),
        }
    }

    /// Gives a connection from `ip` a slot, evicting another if all are taken (whose
    /// [`Ticket::evicted`] then resolves). Returns whether one was evicted.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> (Ticket, bool) {
        let mut guard = self.slots.lock().expect("pre-auth lock");
        let (next, slots) = &mut *guard;
        let mut evicted = false;
        if slots.len() >= self.max {
            if let Some(victim) = choose_victim(slots) {
                if let Some(slot) = slots.remove(&victim) {
                    slot.evict.notify_one();
                    evicted = true;
                }
            }
        }
        let id = *next;
        *next += 1;
        let hello = Arc::new(AtomicBool::new(false));
        let evict = Arc::new(Notify::new());
        slots.insert(
            id,
            Slot {
                ip,
                started: Instant::now(),
                hello: hello.clone(),
                evict: evict.clone(),
            },
        );
        let ticket = Ticket {
            id,
            owner: self.clone(),
            hello,
            evict,
        };
        (ticket, evicted)
    }

    /// Connections holding a slot now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().expect("pre-auth lock").1.len()
    }
}

/// The slot to free: not past its ClientHello first, then from the address with the most
/// slots, then the oldest.
fn choose_victim(slots: &HashMap<u64, Slot>) -> Option<u64> {
    let mut per_ip: HashMap<IpAddr, usize> = HashMap::new();
    for slot in slots.values() {
        *per_ip.entry(slot.ip).or_default() += 1;
    }
    slots
        .iter()
        .min_by_key(|(id, slot)| {
            (
                slot.hello.load(Relaxed),
                std::cmp::Reverse(per_ip[&slot.ip]),
                slot.started,
                **id,
            )
        })
        .map(|(id, _)| *id)
}

impl Ticket {
    /// Resolves when this connection was evicted for a newer one.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }

    /// Wraps the connection's stream so that the slot learns when a whole ClientHello
    /// has arrived.
    pub fn watch<S>(&self, stream: S) -> HelloWatch<S> {
        HelloWatch {
            inner: stream,
            hello: self.hello.clone(),
            header: [0; 5],
            seen: 0,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut guard = self.owner.slots.lock().expect("pre-auth lock");
        guard.1.remove(&self.id);
    }
}

/// A stream that marks its slot once the first TLS record (the ClientHello) has been read
/// whole: its 5-byte header says how long it is.
pub struct HelloWatch<S> {
    inner: S,
    hello: Arc<AtomicBool>,
    header: [u8; 5],
    /// Bytes of the first record read so far (header included).
    seen: usize,
}

impl<S> HelloWatch<S> {
    fn observe(&mut self, bytes: &[u8]) {
        if self.hello.load(Relaxed) {
            return;
        }
        for &b in bytes {
            if self.seen < 5 {
                self.header[self.seen] = b;
            }
            self.seen += 1;
            if self.seen >= 5 {
                let len = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                if self.seen >= 5 + len {
                    self.hello.store(true, Relaxed);
                    return;
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HelloWatch<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.observe(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HelloWatch<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    /// Whether `ticket`'s eviction has fired (a fired Notify keeps its permit).
    async fn was_evicted(ticket: &Ticket) -> bool {
        tokio::select! {
            biased;
            () = ticket.evicted() => true,
            () = std::future::ready(()) => false,
        }
    }

    #[tokio::test]
    async fn a_full_pool_evicts_the_oldest_instead_of_refusing() {
        let pool = Arc::new(PreAuth::new(2));
        let (a, _) = pool.admit(ip(1));
        let (b, _) = pool.admit(ip(1));
        let (c, evicted) = pool.admit(ip(1));
        assert!(evicted);
        assert_eq!(pool.len(), 2);
        assert!(was_evicted(&a).await);
        assert!(!was_evicted(&b).await);
        drop((a, b, c));
        assert_eq!(pool.len(), 0);
    }

    #[tokio::test]
    async fn a_connection_past_its_client_hello_outlives_idle_ones() {
        let pool = Arc::new(PreAuth::new(2));
        let (real, _) = pool.admit(ip(1));
        let mut watched = real.watch(tokio::io::empty());
        // A whole record: a header announcing 3 bytes, then the 3 bytes, in two reads.
        watched.observe(&[0x16, 3, 1, 0, 3, 1]);
        assert!(!real.hello.load(Relaxed));
        watched.observe(&[2, 3]);
        assert!(real.hello.load(Relaxed));
        let mut flood = Vec::new();
        for _ in 0..10 {
            let (ticket, evicted) = pool.admit(ip(1));
            flood.push(ticket);
            assert_eq!(evicted, flood.len() > 1);
        }
        assert!(!was_evicted(&real).await, "the real client was evicted");
        assert_eq!(pool.len(), 2);
    }

    #[tokio::test]
    async fn the_address_holding_most_slots_gives_one_up() {
        let pool = Arc::new(PreAuth::new(3));
        let (other, _) = pool.admit(ip(2));
        let flood: Vec<_> = (0..3).map(|_| pool.admit(ip(9))).collect();
        assert!(flood[2].1);
        assert!(!was_evicted(&other).await, "the lone address was evicted");
        assert!(was_evicted(&flood[0].0).await);
    }
}
