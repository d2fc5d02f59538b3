//! The active controller: the one broker at a time (elected through etcd)
//! that changes the cluster's metadata — creates and deletes topics and
//! partitions, places replicas, and elects a partition's leader when the
//! broker leading it goes. Every write is an etcd transaction conditioned on
//! its election, so a deposed controller cannot write (Kafka's controller
//! epoch fencing). Requests reach it through a [`ControllerChannel`]; on other
//! brokers the channel is closed and they answer NOT_CONTROLLER (or forward).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

#[cfg(feature = "cluster")]
mod active;
pub mod leadership;
pub mod placement;
pub mod reassign;

#[cfg(feature = "cluster")]
pub use active::{run, ControllerContext};

use crate::error::{Error, Result};

/// How long a request may wait for the controller's answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    /// −1: the controller's `num.partitions`.
    pub partitions: i32,
    /// −1: the default (1).
    pub replication_factor: i16,
    /// Replicas given per partition (then `partitions` and the factor are −1).
    pub assignments: Vec<Vec<i32>>,
    /// Validated config overrides.
    pub configs: BTreeMap<String, String>,
}

/// What the controller is asked to do.
#[derive(Debug, Clone)]
pub enum ControllerRequest {
    CreateTopic(NewTopic),
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        count: i32,
        assignments: Vec<Vec<i32>>,
    },
    /// Replace a topic's config overrides (validated) on every broker.
    SetTopicConfigs {
        name: String,
        configs: BTreeMap<String, String>,
    },
    /// A leader asks for a new ISR (Kafka's AlterPartition).
    AlterPartition(leadership::IsrChange),
    /// ElectLeaders for one partition: the preferred replica, or unclean.
    ElectLeader {
        topic: String,
        partition: i32,
        preferred: bool,
    },
    /// AlterPartitionReassignments for one partition: move to `target`, or
    /// (None) cancel the running reassignment.
    Reassign {
        topic: String,
        partition: i32,
        target: Option<Vec<i32>>,
    },
}

/// What the controller answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The topic's id.
    Topic(Uuid),
    /// The partition as written.
    Partition(super::image::PartitionRecord),
}

/// A request and where its answer goes.
type Job = (ControllerRequest, oneshot::Sender<Result<Reply>>);

/// The way to the controller on this broker: open while this broker is the
/// active controller.
#[derive(Default)]
pub struct ControllerChannel {
    active: std::sync::Mutex<Option<mpsc::Sender<Job>>>,
}

impl ControllerChannel {
    fn sender(&self) -> Option<mpsc::Sender<Job>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether this broker is the active controller now.
    pub fn is_active(&self) -> bool {
        self.sender().is_some_and(|s| !s.is_closed())
    }

    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    fn open(&self, tx: mpsc::Sender<Job>) {
        *self.active.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    }

    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    fn close(&self) {
        *self.active.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Have the active controller on this broker do `request`: the topic's id
    /// once done (and seen in this broker's metadata); NOT_CONTROLLER when this
    /// broker is not (or stops being) the controller.
    pub async fn submit(&self, request: ControllerRequest) -> Result<Uuid> {
        match self.ask(request).await? {
            Reply::Topic(id) => Ok(id),
            Reply::Partition(_) => Err(Error::InvalidRequest("not a topic request".into())),
        }
    }

    /// Have the active controller on this broker change an ISR: the
    /// partition as written.
    pub async fn alter_partition(&self, change: leadership::IsrChange) -> Result<super::image::PartitionRecord> {
        self.partition_request(ControllerRequest::AlterPartition(change)).await
    }

    /// A request about one partition: the partition as written.
    pub async fn partition_request(&self, request: ControllerRequest) -> Result<super::image::PartitionRecord> {
        match self.ask(request).await? {
            Reply::Partition(p) => Ok(p),
            Reply::Topic(_) => Err(Error::InvalidRequest("not a partition request".into())),
        }
    }

    async fn ask(&self, request: ControllerRequest) -> Result<Reply> {
        let sender = self.sender().ok_or(Error::NotController)?;
        let (tx, rx) = oneshot::channel();
        sender.send((request, tx)).await.map_err(|_| Error::NotController)?;
        match tokio::time::timeout(ANSWER_WITHIN, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(Error::NotController),
            Err(_) => Err(Error::RequestTimedOut("the controller did not answer in time".into())),
        }
    }
}
