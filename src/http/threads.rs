//! Connection threads: HTTP connections are served on a few OS threads,
//! each running its own single-threaded tokio runtime.
//!
//! A connection stays on the thread it was handed to, so reading its
//! requests, running their handlers and driving the REST session's socket
//! (each thread has its own session pool, [`crate::database::SessionPools`])
//! happen on one thread, with no task woken across threads. On one
//! work-stealing runtime, a request's tasks were woken on one worker and
//! run on the other, and the workers were parked and unparked around them
//! (`docs/performance.md`, ninth session, has the side-by-side figures).
//!
//! Everything else (ingest, fan-out, background jobs, the accept loop) runs
//! on the main runtime; tasks a handler spawns run on its connection's thread,
//! except the general pool's connections, which the main runtime opens and
//! drives ([`crate::database::pool`]).

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    static INDEX: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The connection thread this code runs on, if it runs on one.
pub fn current() -> Option<usize> {
    INDEX.with(Cell::get)
}

/// How long dropping the threads waits for them to end.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The threads. Dropping this stops them and waits (up to five seconds, `STOP_WAIT`)
/// for them to end; whatever still runs on them is dropped (the HTTP
/// server drains its connections before that).
#[derive(Debug)]
pub struct ConnectionThreads {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stops: Vec<oneshot::Sender<()>>,
    ended: Mutex<mpsc::Receiver<()>>,
}

impl ConnectionThreads {
    /// Starts `n` threads (at least one).
    pub fn start(n: usize) -> std::io::Result<ConnectionThreads> {
        let n = n.max(1);
        let mut handles = Vec::with_capacity(n);
        let mut stops = Vec::with_capacity(n);
        let (end, ended) = mpsc::channel();
        for index in 0..n {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            handles.push(runtime.handle().clone());
            stops.push(stop);
            let end = end.clone();
            std::thread::Builder::new().name(format!("fluxbase-http-{index}")).spawn(move || {
                INDEX.with(|i| i.set(Some(index)));
                // Runs the thread's tasks until the threads are dropped.
                let _ = runtime.block_on(stopped);
                // Blocking work still running (a file read) is not waited for.
                runtime.shutdown_background();
                crate::logging::access::flush();
                let _ = end.send(());
            })?;
        }
        Ok(ConnectionThreads { handles, next: AtomicUsize::new(0), stops, ended: Mutex::new(ended) })
    }

    /// How many threads there are.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Always false: there is at least one thread.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Runs the future `make` returns on the next thread, in turn. `make`
    /// is called on that thread, so what it creates there (a socket
    /// registered with the thread's runtime) stays there.
    pub fn spawn<M, F>(&self, make: M)
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        self.handles[i].spawn(async move { make().await });
    }
}

impl Drop for ConnectionThreads {
    fn drop(&mut self) {
        self.stops.clear();
        // A thread cannot wait for itself; from anywhere else the wait is
        // short (the threads drop their tasks and flush their access lines),
        // and bounded, lest one stuck thread hold the process up.
        if let (None, Ok(ended)) = (current(), self.ended.get_mut()) {
            let deadline = Instant::now() + STOP_WAIT;
            for _ in 0..self.handles.len() {
                if ended.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_err() {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_in_turn_on_their_own_threads() {
        let threads = ConnectionThreads::start(2).expect("threads");
        assert_eq!(threads.len(), 2);
        assert_eq!(current(), None);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let (tx, rx) = oneshot::channel();
            threads.spawn(move || async move {
                let _ = tx.send((current(), std::thread::current().name().map(str::to_owned)));
            });
            seen.push(rx.await.expect("ran"));
        }
        let names: Vec<_> = seen.iter().map(|(i, n)| (i.expect("on a connection thread"), n.clone().unwrap_or_default())).collect();
        assert_eq!(names[0], (0, "fluxbase-http-0".to_owned()));
        assert_eq!(names[1], (1, "fluxbase-http-1".to_owned()));
        assert_eq!(names[2].0, 0);
        assert_eq!(names[3].0, 1);
    }

    #[tokio::test]
    async fn dropping_the_threads_stops_their_tasks() {
        let threads = ConnectionThreads::start(1).expect("threads");
        let (tx, rx) = oneshot::channel::<()>();
        threads.spawn(move || async move {
            // Holds the sender until the task is dropped.
            let _tx = tx;
            std::future::pending::<()>().await;
        });
        drop(threads);
        assert!(tokio::time::timeout(std::time::Duration::from_secs(5), rx).await.expect("stopped").is_err());
    }

    #[test]
    fn a_stuck_thread_does_not_hold_up_the_drop() {
        let threads = ConnectionThreads::start(2).expect("threads");
        let (tx, rx) = std::sync::mpsc::channel();
        threads.spawn(move || async move {
            let _ = tx.send(());
            // Blocks its thread, as a handler calling blocking code would.
            std::thread::sleep(Duration::from_secs(60));
        });
        rx.recv().expect("the stuck task started");
        let started = Instant::now();
        drop(threads);
        assert!(started.elapsed() < Duration::from_secs(60), "the drop waited for the stuck thread");
    }
}
