//! What the three ACL APIs share: ACLs and filters from their wire form.

use kafka_protocol::error::ResponseError;

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{AclBinding, AclFilter, Operation, PatternFilter, PatternType, Permission, ResourceType};

/// Why a request that changes ACLs is refused whole, if it is: no authorizer
/// (SECURITY_DISABLED, as Kafka), or no ALTER on the cluster.
pub fn refusal(broker: &Broker, ctx: &RequestContext) -> Option<(ResponseError, &'static str)> {
    if !broker.authorizer.enabled() {
        Some((ResponseError::SecurityDisabled, "No Authorizer is configured."))
    } else if !super::allowed(broker, ctx, Operation::Alter, ResourceType::Cluster, super::CLUSTER) {
        Some((
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.",
        ))
    } else {
        None
    }
}

/// A filter from DescribeAcls' or DeleteAcls' fields (code 1 = ANY throughout).
#[allow(clippy::too_many_arguments)]
pub fn filter(
    resource_type: i8,
    name: Option<&str>,
    pattern_type: i8,
    principal: Option<&str>,
    host: Option<&str>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, String> {
    Ok(AclFilter {
        resource_type: match resource_type {
            1 => None,
            code => Some(ResourceType::from_code(code).ok_or(format!("unknown resource type {code}"))?),
        },
        resource_name: name.map(String::from),
        pattern: match pattern_type {
            1 => PatternFilter::Any,
            2 => PatternFilter::Match,
            3 => PatternFilter::Exactly(PatternType::Literal),
            4 => PatternFilter::Exactly(PatternType::Prefixed),
            code => return Err(format!("unknown pattern type {code}")),
        },
        principal: principal.map(String::from),
        host: host.map(String::from),
        operation: match operation {
            1 => None,
            code => Some(Operation::from_code(code).ok_or(format!("unknown operation {code}"))?),
        },
        permission: match permission {
            1 => None,
            2 => Some(Permission::Deny),
            3 => Some(Permission::Allow),
            code => return Err(format!("unknown permission type {code}")),
        },
    })
}

/// An ACL from CreateAcls' fields, checked as Kafka checks them.
#[allow(clippy::too_many_arguments)]
pub fn binding(
    resource_type: i8,
    name: &str,
    pattern_type: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> Result<AclBinding, String> {
    let resource_type = ResourceType::from_code(resource_type).ok_or("the resource type must be a concrete one")?;
    let pattern_type = match pattern_type {
        3 => PatternType::Literal,
        4 => PatternType::Prefixed,
        _ => return Err("the pattern type must be LITERAL or PREFIXED".into()),
    };
    if name.is_empty() {
        return Err("the resource name must not be empty".into());
    }
    if resource_type == ResourceType::Cluster && name != super::CLUSTER {
        return Err(format!("the cluster resource is named {}", super::CLUSTER));
    }
    match principal.split_once(':') {
        Some((kind, who)) if !kind.is_empty() && !who.is_empty() => {}
        _ => return Err(format!("{principal:?} is not a principal (User:NAME)")),
    }
    if host.is_empty() {
        return Err("the host must be an address or *".into());
    }
    Ok(AclBinding {
        resource_type,
        resource_name: name.to_string(),
        pattern_type,
        principal: principal.to_string(),
        host: host.to_string(),
        operation: Operation::from_code(operation).ok_or("the operation must be a concrete one")?,
        permission: match permission {
            2 => Permission::Deny,
            3 => Permission::Allow,
            _ => return Err("the permission must be ALLOW or DENY".into()),
        },
    })
}
