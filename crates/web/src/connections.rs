//! The connection table of one listener: every open connection with its client address and
//! what it is doing (waiting for a request, or serving one). It enforces the caps of
//! [`ConnectionLimits`] by closing the oldest *idle* connection (one with no request in
//! progress: silent, half-sent headers, kept alive between requests) to make room, and its
//! watchdog closes a connection that stays idle past its deadline. A connection serving a
//! request is never closed here; request deadlines belong to the request middleware.
//!
//! An evicted connection keeps its slot until its task has dropped the socket: the cap
//! bounds descriptors actually held, not connections merely asked to close, so a flood
//! that makes the accept loop evict faster than evicted tasks run cannot push the process
//! past its open-files limit. At most one eviction is outstanding at a time.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use crate::limits::ConnectionLimits;

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// No request byte within `first_byte_timeout` of the connection starting.
    NoRequest,
    /// Headers not complete within `header_read_timeout` of their first byte.
    SlowHeaders,
    /// Kept alive past `idle_timeout` without a new request.
    Idle,
    /// Closed to make room for a new connection at a cap.
    Evicted,
}

impl Closed {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Closed::NoRequest => "no request before first_byte_timeout",
            Closed::SlowHeaders => "headers not complete before header_read_timeout",
            Closed::Idle => "idle past idle_timeout",
            Closed::Evicted => "closed to make room at the connection cap",
        }
    }
}

/// One connection's state, shared by its IO wrapper, its request guard, its watchdog and
/// the table. Times are milliseconds since the table's epoch.
#[derive(Debug)]
pub(crate) struct Conn {
    id: u64,
    ip: IpAddr,
    epoch: Instant,
    /// Requests being served.
    in_service: AtomicUsize,
    /// Requests served to the end.
    served: AtomicU64,
    /// When the current wait for a request began (connection ready, or last response).
    wait_started: AtomicU64,
    /// 1 + when the first byte arrived during the current wait; 0 = none yet.
    first_byte: AtomicU64,
    /// In the TLS handshake, which has its own deadline.
    handshaking: AtomicBool,
    evicted: AtomicBool,
    wake: Notify,
    table_changed: Arc<Notify>,
}

impl Conn {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + std::time::Duration::from_millis(ms)
    }

    fn is_idle(&self) -> bool {
        self.in_service.load(Ordering::Acquire) == 0 && !self.evicted.load(Ordering::Acquire)
    }

    /// The start of the current wait (for choosing the oldest idle connection).
    fn wait_started(&self) -> u64 {
        self.wait_started.load(Ordering::Acquire)
    }

    /// Restart the wait clock now: the connection is ready for its first request (after
    /// the TLS handshake).
    pub(crate) fn ready(&self) {
        self.wait_started.store(self.now_ms(), Ordering::Release);
        self.first_byte.store(0, Ordering::Release);
        self.handshaking.store(false, Ordering::Release);
        self.wake.notify_one();
    }

    fn saw_bytes(&self) {
        if self.first_byte.load(Ordering::Relaxed) == 0
            && self
                .first_byte
                .compare_exchange(0, self.now_ms() + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.wake.notify_one();
        }
    }

    /// Marks a request in service until the guard drops (its response is ready).
    pub(crate) fn begin_request(self: &Arc<Self>) -> InService {
        self.in_service.fetch_add(1, Ordering::AcqRel);
        self.wake.notify_one();
        InService(Arc::clone(self))
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// When the watchdog must close the connection, and why; `None` while serving.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, Closed)> {
        if self.evicted.load(Ordering::Acquire) {
            return Some((self.epoch, Closed::Evicted));
        }
        if self.in_service.load(Ordering::Acquire) > 0 || self.handshaking.load(Ordering::Acquire) {
            return None;
        }
        let first_byte = self.first_byte.load(Ordering::Acquire);
        if first_byte != 0 {
            return Some((
                self.at(first_byte - 1) + limits.header_read_timeout,
                Closed::SlowHeaders,
            ));
        }
        let started = self.at(self.wait_started());
        Some(if self.served.load(Ordering::Acquire) == 0 {
            (started + limits.first_byte_timeout, Closed::NoRequest)
        } else {
            (started + limits.idle_timeout, Closed::Idle)
        })
    }

    /// Resolves when the connection must be closed: evicted, or idle past a deadline.
    pub(crate) async fn expired(&self, limits: &ConnectionLimits) -> Closed {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.deadline(limits) {
                None => notified.await,
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = notified => {}
                    }
                }
            }
        }
    }
}

/// A request in service on a connection; dropping it starts the wait for the next one.
#[derive(Debug)]
pub(crate) struct InService(Arc<Conn>);

impl Drop for InService {
    fn drop(&mut self) {
        let conn = &self.0;
        conn.served.fetch_add(1, Ordering::AcqRel);
        conn.wait_started.store(conn.now_ms(), Ordering::Release);
        conn.first_byte.store(0, Ordering::Release);
        if conn.in_service.fetch_sub(1, Ordering::AcqRel) == 1 {
            // idle again: an accept loop waiting for room may close it
            conn.table_changed.notify_one();
        }
        conn.wake.notify_one();
    }
}

/// The IO of a connection, telling its [`Conn`] when request bytes arrive.
pub(crate) struct Tracked<S> {
    inner: S,
    conn: Arc<Conn>,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, conn: Arc<Conn>) -> Self {
        Tracked { inner, conn }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.conn.saw_bytes();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What the table decided about a newly accepted connection.
pub(crate) enum Admission {
    /// Serve it; the entry leaves the table when the guard drops.
    Admitted(Arc<Conn>, Entry),
    /// Its address is at `max_connections_per_ip` and none of its connections is idle.
    Refused,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    /// Every connection whose socket is still open, evicted ones included.
    conns: HashMap<u64, Arc<Conn>>,
    /// Connections per client address, evicted ones no longer counted.
    per_ip: HashMap<IpAddr, usize>,
    /// Evicted connections whose socket is not closed yet.
    closing: usize,
}

impl Inner {
    /// The connection's socket is closed: its slot is free.
    fn remove(&mut self, id: u64) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        // `evicted` only changes under the table lock, so this agrees with evict_oldest_idle.
        if conn.evicted.load(Ordering::Acquire) {
            self.closing -= 1;
        } else {
            self.release_address(conn.ip);
        }
    }

    fn release_address(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    fn any_idle(&self) -> bool {
        self.conns.values().any(|c| c.is_idle())
    }

    /// Close the idle connection that has waited longest (of `ip` when given).
    fn evict_oldest_idle(&mut self, ip: Option<IpAddr>) -> bool {
        let victim = self
            .conns
            .values()
            .filter(|c| ip.is_none_or(|ip| c.ip == ip) && c.is_idle())
            .min_by_key(|c| c.wait_started())
            .map(|c| c.id);
        let Some(conn) = victim.and_then(|id| self.conns.get(&id)).cloned() else {
            return false;
        };
        conn.evict();
        self.closing += 1;
        self.release_address(conn.ip);
        true
    }
}

/// The connections of one listener.
#[derive(Debug)]
pub(crate) struct Table {
    limits: ConnectionLimits,
    epoch: Instant,
    inner: Mutex<Inner>,
    changed: Arc<Notify>,
}

impl Table {
    pub(crate) fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Table {
            limits,
            epoch: Instant::now(),
            inner: Mutex::new(Inner::default()),
            changed: Arc::new(Notify::new()),
        })
    }

    pub(crate) fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The table is consistent after every statement; a panic elsewhere cannot tear it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open connections, evicted ones not yet closed included.
    pub(crate) fn len(&self) -> usize {
        self.lock().conns.len()
    }

    /// Returns once a new connection can be taken: at once when below `max_connections`, or
    /// when some connection is idle (and can be closed for it, see [`Table::admit`]) and no
    /// earlier eviction is still closing; otherwise when a connection ends or goes idle.
    pub(crate) async fn make_room(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let inner = self.lock();
                if inner.conns.len() < self.limits.max_connections
                    || (inner.closing == 0 && inner.any_idle())
                {
                    return;
                }
            }
            changed.await;
        }
    }

    /// Close the oldest idle connection to free its descriptor (`EMFILE`); false when none
    /// is idle.
    pub(crate) fn shed_one(&self) -> bool {
        self.lock().evict_oldest_idle(None)
    }

    /// Enter a connection from `ip` (about to start a TLS handshake when `tls`): beyond
    /// `max_connections_per_ip` that address's oldest idle connection is closed for it, or
    /// it is refused; at `max_connections` the oldest idle connection is closed for it.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr, tls: bool) -> Admission {
        let mut inner = self.lock();
        let cap = self.limits.max_connections_per_ip;
        if cap > 0
            && inner.per_ip.get(&ip).copied().unwrap_or(0) >= cap
            && !inner.evict_oldest_idle(Some(ip))
        {
            return Admission::Refused;
        }
        if inner.conns.len() >= self.limits.max_connections {
            // Over by one until the evicted socket closes (make_room waits for that before
            // the next accept); none idle means one became busy since make_room.
            inner.evict_oldest_idle(None);
        }
        inner.next_id += 1;
        let id = inner.next_id;
        let conn = Arc::new(Conn {
            id,
            ip,
            epoch: self.epoch,
            in_service: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            wait_started: AtomicU64::new(0),
            first_byte: AtomicU64::new(0),
            handshaking: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
            table_changed: Arc::clone(&self.changed),
        });
        conn.ready();
        conn.handshaking.store(tls, Ordering::Release);
        inner.conns.insert(id, Arc::clone(&conn));
        *inner.per_ip.entry(ip).or_default() += 1;
        Admission::Admitted(
            conn,
            Entry {
                table: Arc::clone(self),
                id,
            },
        )
    }
}

/// A connection's place in its [`Table`], given up on drop.
#[derive(Debug)]
pub(crate) struct Entry {
    table: Arc<Table>,
    id: u64,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.table.lock().remove(self.id);
        self.table.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;

    fn limits(max: usize, per_ip: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: max,
            max_connections_per_ip: per_ip,
            ..ConnectionLimits::default()
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    impl Table {
        fn admit_plain(self: &Arc<Self>, ip: IpAddr) -> Admission {
            self.admit(ip, false)
        }
    }

    fn admitted(a: Admission) -> (Arc<Conn>, Entry) {
        match a {
            Admission::Admitted(c, e) => (c, e),
            Admission::Refused => panic!("refused"),
        }
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let table = Table::new(limits(2, 0));
        let (old, e1) = admitted(table.admit_plain(ip(1)));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (busy, _e2) = admitted(table.admit_plain(ip(1)));
        let _serving = busy.begin_request();
        table.make_room().await;
        assert!(
            !old.evicted.load(Ordering::Acquire),
            "nobody is closed before a newcomer"
        );
        let (_new, _e3) = admitted(table.admit_plain(ip(1)));
        assert!(old.evicted.load(Ordering::Acquire));
        assert!(!busy.evicted.load(Ordering::Acquire));
        assert_eq!(table.len(), 3, "the evicted socket is still open");
        assert_eq!(
            old.deadline(table.limits()).map(|d| d.1),
            Some(Closed::Evicted)
        );
        drop(e1);
        assert_eq!(table.len(), 2);
    }

    #[tokio::test]
    async fn an_evicted_connection_holds_its_slot_until_its_socket_closes() {
        let table = Table::new(limits(1, 0));
        let (old, old_entry) = admitted(table.admit_plain(ip(1)));
        table.make_room().await; // `old` is idle: it may be closed for a newcomer
        let (_new, _e2) = admitted(table.admit_plain(ip(2)));
        assert!(old.evicted.load(Ordering::Acquire));
        // `_new` is idle too, but `old`'s descriptor is still held: no third socket yet.
        let waiter = tokio::spawn({
            let table = Arc::clone(&table);
            async move { table.make_room().await }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished(), "accepted beyond the cap of sockets");
        drop(old_entry); // its task dropped the socket
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("room once the evicted socket closed")
            .unwrap();
    }

    #[test]
    fn an_evicted_connection_no_longer_counts_for_its_address() {
        let table = Table::new(limits(100, 1));
        let (a1, e1) = admitted(table.admit_plain(ip(2)));
        let (_a2, _e2) = admitted(table.admit_plain(ip(2)));
        assert!(a1.evicted.load(Ordering::Acquire));
        drop(e1);
        // 127.0.0.2 holds one connection (the idle `_a2`), which the next one replaces
        let (_a3, _e3) = admitted(table.admit_plain(ip(2)));
        assert_eq!(table.len(), 2, "the evicted `_a2` and `_a3`");
    }

    #[tokio::test]
    async fn with_every_connection_busy_a_new_one_waits_for_one_to_finish() {
        let table = Table::new(limits(1, 0));
        let (busy, _entry) = admitted(table.admit_plain(ip(1)));
        let serving = busy.begin_request();
        let waiter = tokio::spawn({
            let table = Arc::clone(&table);
            async move { table.make_room().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(serving); // the response is out: the connection is idle and may be closed
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("room after the request finished")
            .unwrap();
        let (_new, _e2) = admitted(table.admit_plain(ip(1)));
        assert!(busy.evicted.load(Ordering::Acquire));
    }

    #[test]
    fn a_handshake_is_left_to_its_own_deadline() {
        let table = Table::new(ConnectionLimits::default());
        let (conn, _entry) = admitted(table.admit(ip(1), true));
        assert_eq!(conn.deadline(table.limits()), None);
        conn.ready();
        assert_eq!(
            conn.deadline(table.limits()).map(|d| d.1),
            Some(Closed::NoRequest)
        );
    }

    #[test]
    fn per_address_cap_evicts_that_address_only_or_refuses() {
        let table = Table::new(limits(100, 2));
        let (a1, _x1) = admitted(table.admit_plain(ip(2)));
        let (a2, _x2) = admitted(table.admit_plain(ip(2)));
        let (other, _x3) = admitted(table.admit_plain(ip(1)));
        let _b1 = a1.begin_request();
        // a2 is the only idle connection of 127.0.0.2: it goes
        let (_a3, _x4) = admitted(table.admit_plain(ip(2)));
        assert!(a2.evicted.load(Ordering::Acquire));
        assert!(!other.evicted.load(Ordering::Acquire));
        let _b3 = _a3.begin_request();
        // now both of 127.0.0.2's connections are busy: refused
        assert!(matches!(table.admit_plain(ip(2)), Admission::Refused));
        assert!(matches!(table.admit_plain(ip(1)), Admission::Admitted(..)));
    }

    #[test]
    fn deadlines_follow_the_stage_of_the_connection() {
        let table = Table::new(ConnectionLimits::default());
        let (conn, _entry) = admitted(table.admit_plain(ip(1)));
        let l = table.limits().clone();
        assert_eq!(conn.deadline(&l).map(|d| d.1), Some(Closed::NoRequest));
        conn.saw_bytes();
        assert_eq!(conn.deadline(&l).map(|d| d.1), Some(Closed::SlowHeaders));
        let serving = conn.begin_request();
        assert_eq!(conn.deadline(&l), None);
        drop(serving);
        assert_eq!(conn.deadline(&l).map(|d| d.1), Some(Closed::Idle));
    }

    #[test]
    fn leaving_the_table_frees_the_slot_and_the_address_count() {
        let table = Table::new(limits(10, 1));
        let (_c, entry) = admitted(table.admit_plain(ip(3)));
        assert_eq!(table.len(), 1);
        drop(entry);
        assert_eq!(table.len(), 0);
        assert!(matches!(table.admit_plain(ip(3)), Admission::Admitted(..)));
    }
}
