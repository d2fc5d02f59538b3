//! Controlled shutdown (Kafka's `controlled.shutdown.enable`): a cluster's
//! broker asked to stop first says so in its registration (state
//! `shutting_down`). The controller then treats it as gone for leadership —
//! each partition it leads goes to another in-sync replica that runs, and it
//! leaves the ISRs — while it still serves, so clients move to the new
//! leaders before it stops answering. The broker stops once the metadata
//! shows it leads no partition another running replica could take, or after
//! [`PATIENCE`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::broker::Broker;
use crate::cluster::etcd::{MetadataStore, Registered};
use crate::cluster::image::MetadataImage;
use crate::cluster::registration::{BrokerRegistration, BrokerState};

/// How long a stopping broker waits for its leadership to move.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// What a broker needs to leave its leadership.
pub struct Leaving {
    pub broker: Arc<Broker>,
    pub store: MetadataStore,
    pub me: BrokerRegistration,
    /// The registration in force (it changes when the broker registers again).
    pub registered: watch::Receiver<Registered>,
}

/// Whether `me` leads a partition whose ISR has another running broker (one
/// the controller can give it to).
fn leads_movable(image: &MetadataImage, me: i32) -> bool {
    image.topics().into_iter().any(|t| {
        t.partitions
            .values()
            .any(|p| p.record.leader == me && p.record.isr.iter().any(|b| *b != me && image.is_alive(*b)))
    })
}

impl Leaving {
    /// Mark this broker as shutting down and wait until its leadership has
    /// moved (at most [`PATIENCE`]).
    pub async fn move_leadership(self) {
        if !self.broker.config.cluster.controlled_shutdown {
            return;
        }
        let mut me = self.me.clone();
        me.state = BrokerState::ShuttingDown;
        let registered = *self.registered.borrow();
        match self.store.update_registration(&me, registered).await {
            Ok(true) => tracing::info!("controlled shutdown: moving leadership to the other brokers"),
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "controlled shutdown: cannot tell the cluster; stopping anyway");
                return;
            }
        }
        let mut images = self.broker.metadata.subscribe();
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                let image = images.borrow_and_update().clone();
                if image.is_some_and(|i| !leads_movable(&i, me.id)) {
                    return;
                }
                if images.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        match waited {
            Ok(()) => tracing::info!("controlled shutdown: this broker leads nothing another broker could"),
            Err(_) => tracing::warn!("controlled shutdown: leadership did not all move in time; stopping anyway"),
        }
    }
}
