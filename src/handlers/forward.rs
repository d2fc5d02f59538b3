//! In a cluster, the requests that change topics (CreateTopics, DeleteTopics,
//! CreatePartitions, and Metadata's auto-creation) are the active
//! controller's to carry out. One reaching another broker is sent on to the
//! controller and its answer relayed (as Kafka forwards them, KIP-590), over
//! a connection to the controller's inter-broker listener; without one (or with no
//! controller known) the broker answers NOT_CONTROLLER, which every admin
//! client handles by finding the controller and asking it. A forwarded
//! request is never forwarded again, so two brokers with different views of
//! who the controller is cannot pass it back and forth.
//!
//! The controller checks a forwarded request's ACLs as those of the
//! forwarding broker (its inter-broker principal), not the client's (Kafka
//! carries the client's principal in an envelope), so with ACLs in force clients' requests are not
//! forwarded: they get NOT_CONTROLLER and reach the controller themselves.
//! (A broker's own topic creations — auto-creation, the internal topics — are
//! still forwarded.)

use std::time::Duration;

use kafka_protocol::protocol::Request;

use super::RequestContext;
use crate::broker::Broker;
use crate::client::{Bootstrap, Client};
use crate::cluster::controller::{ControllerRequest, NewTopic};
use crate::error::{Error, Result};
use kafka_protocol::error::ResponseError;

/// The client id forwarded requests carry.
const FORWARDED: &str = "strom-forwarded";

/// Longer than the controller takes to answer (it gives up after 30 s).
const FORWARD_WITHIN: Duration = Duration::from_secs(35);

/// Whether this broker answers `ctx`'s request itself: on one broker, on the
/// active controller, for a request forwarded here already, and whenever ACLs
/// are checked — a forwarded request reaches the controller as this broker's
/// connection, not as the client, so it is not forwarded: the
/// client is answered NOT_CONTROLLER and asks the controller itself, as
/// Kafka's admin clients do (they send these requests to the controller
/// Metadata names).
pub fn here(broker: &Broker, ctx: &RequestContext) -> bool {
    !broker.metadata.is_cluster() || broker.controller.is_active() || is_forwarded(ctx) || broker.authorizer.enabled()
}

/// Whether `ctx`'s request was forwarded here by another broker.
pub fn is_forwarded(ctx: &RequestContext) -> bool {
    ctx.client_id.as_deref() == Some(FORWARDED)
}

/// A forwarded request from a connection allowed CLUSTER_ACTION (a broker's,
/// as replication needs): a broker's own topic creation (auto-creation it
/// authorized for its client, an internal topic), taken without checking the
/// topic's ACLs again — Kafka's controller trusts the forwarding broker's
/// principal the same way (KIP-590's envelope).
pub fn by_a_broker(broker: &Broker, ctx: &RequestContext) -> bool {
    is_forwarded(ctx)
        && super::allowed(
            broker,
            ctx,
            crate::security::acl::Operation::ClusterAction,
            crate::security::acl::ResourceType::Cluster,
            super::CLUSTER,
        )
}

/// Have the active controller create a topic: itself if it is the
/// controller, else through a forwarded CreateTopics (v4). Ok if the topic
/// exists now, created by this call or before it.
pub async fn create_in_cluster(broker: &Broker, new: NewTopic) -> Result<()> {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let created = if broker.controller.is_active() {
        broker
            .controller
            .submit(ControllerRequest::CreateTopic(new))
            .await
            .map(|_| ())
    } else {
        let mut topic = CreatableTopic::default();
        topic.name = TopicName(StrBytes::from_string(new.name.clone()));
        topic.num_partitions = new.partitions;
        topic.replication_factor = new.replication_factor;
        let mut request = CreateTopicsRequest::default();
        request.topics.push(topic);
        request.timeout_ms = 30_000;
        match to_controller(broker, 4, &request).await {
            Some(answer) => match answer.topics.first().map(|t| t.error_code) {
                Some(0) => Ok(()),
                Some(code) if code == ResponseError::TopicAlreadyExists.code() => Ok(()),
                Some(code) => Err(Error::InvalidRequest(format!(
                    "the controller answered {}",
                    ResponseError::try_from_code(code).map_or(format!("error code {code}"), |e| format!("{e:?}"))
                ))),
                None => Err(Error::InvalidRequest("an empty answer".into())),
            },
            None => Err(Error::NotController),
        }
    };
    match created {
        Err(Error::TopicAlreadyExists(_)) => Ok(()),
        other => other,
    }
}

/// Send `request` (at `version`) to the active controller and return its answer; None when
/// there is none to reach (then answer NOT_CONTROLLER).
pub async fn to_controller<R: Request>(broker: &Broker, version: i16, request: &R) -> Option<R::Response> {
    let controller = broker.metadata.controller_id();
    if controller < 0 || controller == broker.node_id() {
        return None;
    }
    // Between brokers: the controller's inter-broker listener.
    let listener = broker.config.cluster.inter_broker.listener.as_deref();
    let addr = broker.metadata.image()?.inter_broker_address(controller, listener)?;
    let call = async {
        let mut client = Client::connect(&Bootstrap::to_broker(&addr, &broker.config.cluster.inter_broker)).await?;
        client.set_client_id(FORWARDED);
        client.call(version, request).await
    };
    match tokio::time::timeout(FORWARD_WITHIN, call).await {
        Ok(Ok(answer)) => Some(answer),
        Ok(Err(e)) => {
            tracing::warn!(controller, %addr, error = %e, "could not forward a request to the controller");
            None
        }
        Err(_) => {
            tracing::warn!(controller, %addr, "the controller did not answer a forwarded request in time");
            None
        }
    }
}
