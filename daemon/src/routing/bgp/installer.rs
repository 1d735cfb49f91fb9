//! Hands the speaker's route deltas to the RIB from a task of its own.
//!
//! Deciding an UPDATE (parse, Adj-RIB-In, best path) and installing its result (RIB,
//! FIB) are each about half of a table load. With the RIB written from this task, the
//! speaker decides the next UPDATEs while the last ones go into the RIB and FIB, so a
//! table load uses two cores instead of one. Deltas keep their order (one queue, one
//! task), and the queue is short and bounded: a RIB slower than the decision holds the
//! speaker back instead of queueing copies of the table.
//!
//! Only deltas decided from peers' UPDATEs take this path ([`Installer::send`]);
//! everything else (API requests, timers, config) installs and waits
//! ([`Installer::install_now`]), after what is queued, so an API call answers with its
//! routes in the RIB.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::instance::RouteDelta;
use crate::router::Router;
use crate::routing::rib::RouteSource;

/// Deltas in flight at most: enough to keep both sides busy (a delta is one read of a
/// connection, up to 64 KiB of UPDATEs).
const QUEUE: usize = 2;

enum Job {
    Install(RouteDelta),
    /// Answered once every job before it is done.
    Barrier(oneshot::Sender<()>),
}

pub(super) struct Installer {
    jobs: mpsc::Sender<Job>,
}

impl Installer {
    /// Starts the task; it ends when the installer is dropped, after its queue.
    pub(super) fn spawn(router: Arc<Router>) -> Installer {
        let (jobs, mut queue) = mpsc::channel(QUEUE);
        tokio::spawn(async move {
            while let Some(job) = queue.recv().await {
                match job {
                    Job::Install(delta) => install(&router, delta).await,
                    Job::Barrier(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Installer { jobs }
    }

    /// Queues `delta` (waits only while the queue is full).
    pub(super) async fn send(&self, delta: RouteDelta) {
        // The task lives as long as this sender: the send cannot fail.
        let _ = self.jobs.send(Job::Install(delta)).await;
    }

    /// Waits until everything queued so far is in the RIB.
    pub(super) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.jobs.send(Job::Barrier(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Installs `delta` after what is queued, and returns once it is in the RIB.
    pub(super) async fn install_now(&self, delta: RouteDelta) {
        self.send(delta).await;
        self.flush().await;
    }
}

async fn install(router: &Router, delta: RouteDelta) {
    let (changed, removed) = (delta.changed.len(), delta.removed.len());
    // eBGP and iBGP are one protocol for the RIB: a candidate of either replaces the
    // other's for its prefix, and a removal takes whichever is there.
    let changes = router
        .update_protocol_routes(
            RouteSource::Bgp { ebgp: true },
            delta.changed,
            delta.removed,
        )
        .await;
    tracing::debug!(changed, removed, changes, "bgp routes installed");
}
