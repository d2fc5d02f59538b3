//! ACLs and the authorizer, as Kafka's StandardAuthorizer decides:
//!
//! 1. a super user (`super.users`) may do anything;
//! 2. the ACLs that apply are those on the resource: a LITERAL one naming it,
//!    a LITERAL `*`, or a PREFIXED one its name starts with; of those, the ones
//!    for the principal (or `User:*`) and host (or `*`);
//! 3. a DENY for the operation (or ALL) wins; else an ALLOW for it (or ALL, or
//!    one that implies it: READ, WRITE, DELETE and ALTER imply DESCRIBE, and
//!    ALTER_CONFIGS implies DESCRIBE_CONFIGS) allows;
//! 4. a resource with no ACL at all is allowed only with
//!    `allow.everyone.if.no.acl.found=true`.
//!
//! ACLs are kept in `<data dir>/acls.json`, written whole on each change; in a
//! cluster, in etcd (`cluster::documents`), the same document.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use super::principal::Principal;

/// Kafka's resource type codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Topic = 2,
    Group = 3,
    Cluster = 4,
    TransactionalId = 5,
    DelegationToken = 6,
    User = 7,
}

impl ResourceType {
    const ALL: [ResourceType; 6] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
        ResourceType::DelegationToken,
        ResourceType::User,
    ];

    pub fn from_code(code: i8) -> Option<ResourceType> {
        Self::ALL.into_iter().find(|t| *t as i8 == code)
    }

    /// By Kafka's name (`TOPIC`, `TRANSACTIONAL_ID`, …).
    pub fn from_name(name: &str) -> Option<ResourceType> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
            ResourceType::DelegationToken => "DELEGATION_TOKEN",
            ResourceType::User => "USER",
        }
    }
}

/// Kafka's pattern type codes (ANY = 1 and MATCH = 2 exist only in filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternType {
    Literal = 3,
    Prefixed = 4,
}

impl PatternType {
    pub fn name(self) -> &'static str {
        match self {
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        }
    }
}

/// Kafka's ACL operation codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    All = 2,
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
    CreateTokens = 13,
    DescribeTokens = 14,
}

impl Operation {
    pub const ALL: [Operation; 13] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
        Operation::CreateTokens,
        Operation::DescribeTokens,
    ];

    pub fn from_code(code: i8) -> Option<Operation> {
        Self::ALL.into_iter().find(|o| *o as i8 == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            Operation::All => "ALL",
            Operation::Read => "READ",
            Operation::Write => "WRITE",
            Operation::Create => "CREATE",
            Operation::Delete => "DELETE",
            Operation::Alter => "ALTER",
            Operation::Describe => "DESCRIBE",
            Operation::ClusterAction => "CLUSTER_ACTION",
            Operation::DescribeConfigs => "DESCRIBE_CONFIGS",
            Operation::AlterConfigs => "ALTER_CONFIGS",
            Operation::IdempotentWrite => "IDEMPOTENT_WRITE",
            Operation::CreateTokens => "CREATE_TOKENS",
            Operation::DescribeTokens => "DESCRIBE_TOKENS",
        }
    }

    /// By Kafka's name in any spelling: `IDEMPOTENT_WRITE`, `IdempotentWrite`,
    /// `idempotent-write`.
    pub fn from_name(name: &str) -> Option<Operation> {
        let squashed = |n: &str| n.replace(['_', '-'], "").to_ascii_uppercase();
        let name = squashed(name);
        Self::ALL.into_iter().find(|o| squashed(o.name()) == name)
    }

    /// Whether an ALLOW of `self` allows `wanted`.
    fn allows(self, wanted: Operation) -> bool {
        use Operation::*;
        self == All
            || self == wanted
            || (wanted == Describe && matches!(self, Read | Write | Delete | Alter))
            || (wanted == DescribeConfigs && self == AlterConfigs)
    }
}

/// ALLOW (3) or DENY (2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    Deny = 2,
    Allow = 3,
}

/// One ACL: who may (or may not) do what, from where, on which resources.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `User:alice`, or `User:*` for everyone.
    pub principal: String,
    /// An IP address, or `*`.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclBinding {
    fn covers(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => self.resource_name == name || self.resource_name == "*",
                PatternType::Prefixed => name.starts_with(&self.resource_name),
            }
    }
}

/// What DescribeAcls and DeleteAcls select: each field a value, or None for any.
#[derive(Debug, Clone, Default)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    /// Literal/prefixed exactly; `Match` = every ACL that applies to the name.
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PatternFilter {
    #[default]
    Any,
    Match,
    Exactly(PatternType),
}

impl AclFilter {
    pub fn matches(&self, acl: &AclBinding) -> bool {
        let name_ok = match (&self.pattern, &self.resource_name) {
            (PatternFilter::Match, Some(name)) => match acl.pattern_type {
                PatternType::Literal => acl.resource_name == *name || acl.resource_name == "*",
                PatternType::Prefixed => name.starts_with(&acl.resource_name),
            },
            (PatternFilter::Exactly(p), name) => {
                acl.pattern_type == *p && name.as_ref().is_none_or(|n| *n == acl.resource_name)
            }
            (_, name) => name.as_ref().is_none_or(|n| *n == acl.resource_name),
        };
        name_ok
            && self.resource_type.is_none_or(|t| t == acl.resource_type)
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && self.operation.is_none_or(|o| o == acl.operation)
            && self.permission.is_none_or(|p| p == acl.permission)
    }
}

/// The authorizer: off (everything allowed) unless `authorizer.class.name` names
/// Kafka's StandardAuthorizer (or the older AclAuthorizer).
pub struct Authorizer {
    enabled: bool,
    super_users: HashSet<String>,
    allow_if_no_acl: bool,
    path: PathBuf,
    acls: RwLock<Vec<AclBinding>>,
}

impl Authorizer {
    pub fn open(
        data_dir: &Path,
        enabled: bool,
        super_users: &[String],
        allow_if_no_acl: bool,
    ) -> std::io::Result<Authorizer> {
        let path = data_dir.join("acls.json");
        let acls = match std::fs::read(&path) {
            Ok(bytes) => decode(&bytes).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(Authorizer {
            enabled,
            super_users: super_users.iter().cloned().collect(),
            allow_if_no_acl,
            path,
            acls: RwLock::new(acls),
        })
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether `principal` connecting from `host` may do `operation` on the
    /// resource; denials are logged at info, grants at debug.
    pub fn authorize(
        &self,
        principal: &Principal,
        host: std::net::IpAddr,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.enabled || principal.is_internal() {
            return true;
        }
        let host = host.to_canonical();
        let allowed = self.decide(principal, host, operation, resource_type, name);
        if allowed {
            tracing::debug!(target: "strom::authorizer", principal = %principal, host = %host, operation = operation.name(), resource_type = resource_type.name(), resource = name, "allowed");
        } else {
            tracing::info!(target: "strom::authorizer", principal = %principal, host = %host, operation = operation.name(), resource_type = resource_type.name(), resource = name, "denied");
        }
        allowed
    }

    fn decide(
        &self,
        principal: &Principal,
        host: std::net::IpAddr,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let who = principal.to_string();
        if self.super_users.contains(&who) {
            return true;
        }
        let acls = self.acls.read().unwrap_or_else(|e| e.into_inner());
        let mut any_on_resource = false;
        let mut allowed = false;
        for acl in acls.iter().filter(|a| a.covers(resource_type, name)) {
            any_on_resource = true;
            let applies = (acl.principal == who || acl.principal == "User:*") && host_matches(&acl.host, host);
            if !applies {
                continue;
            }
            match acl.permission {
                Permission::Deny if acl.operation == operation || acl.operation == Operation::All => return false,
                Permission::Allow if acl.operation.allows(operation) => allowed = true,
                _ => {}
            }
        }
        if !any_on_resource {
            return self.allow_if_no_acl;
        }
        allowed
    }

    /// Whether `principal` may do `operation` on some resource of the type
    /// (Kafka's authorizeByResourceType, used for idempotent producers: WRITE
    /// on any topic): an ALLOW for it that no wildcard DENY cancels.
    pub fn authorize_any(
        &self,
        principal: &Principal,
        host: std::net::IpAddr,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if !self.enabled {
            return true;
        }
        let who = principal.to_string();
        if self.super_users.contains(&who) {
            return true;
        }
        let host = host.to_canonical();
        let acls = self.acls.read().unwrap_or_else(|e| e.into_inner());
        let applies = |a: &&AclBinding| {
            a.resource_type == resource_type
                && (a.principal == who || a.principal == "User:*")
                && host_matches(&a.host, host)
        };
        let denies: Vec<&AclBinding> = acls
            .iter()
            .filter(applies)
            .filter(|a| a.permission == Permission::Deny && (a.operation == operation || a.operation == Operation::All))
            .collect();
        // An ALLOW counts unless a DENY covers every resource it names: a literal
        // `*`, the same literal name, or a prefix of its name.
        let covered = |allow: &AclBinding| {
            denies.iter().any(|d| match d.pattern_type {
                PatternType::Literal => {
                    d.resource_name == "*"
                        || (allow.pattern_type == PatternType::Literal && d.resource_name == allow.resource_name)
                }
                PatternType::Prefixed => allow.resource_name.starts_with(&d.resource_name),
            })
        };
        let allowed = acls
            .iter()
            .filter(applies)
            .any(|a| a.permission == Permission::Allow && a.operation.allows(operation) && !covered(a));
        allowed || (self.allow_if_no_acl && !acls.iter().any(|a| a.resource_type == resource_type))
    }

    /// Every operation `principal` may do on the resource, as the bit set
    /// Metadata's and DescribeGroups' `authorized_operations` carry.
    pub fn authorized_operations(
        &self,
        principal: &Principal,
        host: std::net::IpAddr,
        resource_type: ResourceType,
        name: &str,
        candidates: &[Operation],
    ) -> i32 {
        let host = host.to_canonical();
        candidates
            .iter()
            .filter(|op| !self.enabled || self.decide(principal, host, **op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << *op as i32))
    }

    pub fn describe(&self, filter: &AclFilter) -> Vec<AclBinding> {
        let acls = self.acls.read().unwrap_or_else(|e| e.into_inner());
        acls.iter().filter(|a| filter.matches(a)).cloned().collect()
    }

    /// Add ACLs (an ACL already there is not added twice); saved before return.
    pub fn create(&self, new: &[AclBinding]) -> std::io::Result<()> {
        let mut acls = self.acls.write().unwrap_or_else(|e| e.into_inner());
        let next = created(&acls, new);
        self.save(&next)?;
        *acls = next;
        Ok(())
    }

    /// Remove the ACLs each filter matches: what each removed.
    pub fn delete(&self, filters: &[AclFilter]) -> std::io::Result<Vec<Vec<AclBinding>>> {
        let mut acls = self.acls.write().unwrap_or_else(|e| e.into_inner());
        let (next, removed) = deleted(&acls, filters);
        if next.len() != acls.len() {
            self.save(&next)?;
            *acls = next;
        }
        Ok(removed)
    }

    /// [`Authorizer::create`] on a cluster's ACL document (None: none yet):
    /// the new document.
    pub fn create_in(document: Option<&[u8]>, new: &[AclBinding]) -> Result<Vec<u8>, String> {
        Ok(encode(&created(&decode_or_empty(document)?, new)))
    }

    /// [`Authorizer::delete`] on a cluster's ACL document: the new document
    /// and what each filter removed.
    pub fn delete_in(
        document: Option<&[u8]>,
        filters: &[AclFilter],
    ) -> Result<(Vec<u8>, Vec<Vec<AclBinding>>), String> {
        let (next, removed) = deleted(&decode_or_empty(document)?, filters);
        Ok((encode(&next), removed))
    }

    /// The ACLs as a document (None when there are none).
    pub fn document(&self) -> Option<Vec<u8>> {
        let acls = self.acls.read().unwrap_or_else(|e| e.into_inner());
        (!acls.is_empty()).then(|| encode(&acls))
    }

    /// Take a cluster's ACL document (its watch saw it change); one that does
    /// not decode is refused and the ACLs in force stay. What is taken is
    /// kept in `acls.json` too: the last sound state the cluster had, should a
    /// key go missing while this broker is down.
    pub fn install(&self, document: &[u8]) -> Result<(), String> {
        let next = decode(document)?;
        let mut acls = self.acls.write().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = self.save(&next) {
            tracing::warn!(error = %e, "could not keep the cluster's ACLs in acls.json");
        }
        *acls = next;
        Ok(())
    }

    fn save(&self, acls: &[AclBinding]) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::util::fs::write_private(&self.path, &encode(acls))
    }
}

fn created(acls: &[AclBinding], new: &[AclBinding]) -> Vec<AclBinding> {
    let mut next = acls.to_vec();
    for acl in new {
        if !next.contains(acl) {
            next.push(acl.clone());
        }
    }
    next
}

fn deleted(acls: &[AclBinding], filters: &[AclFilter]) -> (Vec<AclBinding>, Vec<Vec<AclBinding>>) {
    let removed = filters
        .iter()
        .map(|f| acls.iter().filter(|a| f.matches(a)).cloned().collect())
        .collect();
    let next = acls
        .iter()
        .filter(|a| !filters.iter().any(|f| f.matches(a)))
        .cloned()
        .collect();
    (next, removed)
}

fn decode_or_empty(document: Option<&[u8]>) -> Result<Vec<AclBinding>, String> {
    document.map_or(Ok(Vec::new()), decode)
}

/// Whether an ACL's host (`*`, or an address in any notation) is `peer`.
fn host_matches(acl_host: &str, peer: std::net::IpAddr) -> bool {
    acl_host == "*"
        || match acl_host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.to_canonical() == peer,
            Err(_) => acl_host == peer.to_string(),
        }
}

/// The ACL file: `{"version":1,"acls":[{"resource_type":"TOPIC",
/// "resource_name":"orders","pattern_type":"LITERAL","principal":"User:alice",
/// "host":"*","operation":"WRITE","permission":"ALLOW"}]}`.
fn encode(acls: &[AclBinding]) -> Vec<u8> {
    let list: Vec<serde_json::Value> = acls
        .iter()
        .map(|a| {
            serde_json::json!({
                "resource_type": a.resource_type.name(),
                "resource_name": a.resource_name,
                "pattern_type": a.pattern_type.name(),
                "principal": a.principal,
                "host": a.host,
                "operation": a.operation.name(),
                "permission": if a.permission == Permission::Allow { "ALLOW" } else { "DENY" },
            })
        })
        .collect();
    // Compact: in a cluster the document is one etcd value (at most etcd's
    // request size, 1.5 MiB by default: some 8,000 ACLs).
    serde_json::to_vec(&serde_json::json!({"version": 1, "acls": list})).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Result<Vec<AclBinding>, String> {
    let doc: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if doc.get("version").and_then(|v| v.as_i64()) != Some(1) {
        return Err("unknown version (this strom reads version 1)".into());
    }
    let list = doc.get("acls").and_then(|a| a.as_array()).ok_or("no acls")?;
    list.iter()
        .map(|a| {
            let field = |k: &str| a.get(k).and_then(|v| v.as_str()).ok_or(format!("an ACL without {k}"));
            let resource_type = field("resource_type")?;
            Ok(AclBinding {
                resource_type: ResourceType::from_name(resource_type)
                    .ok_or(format!("resource type {resource_type}"))?,
                resource_name: field("resource_name")?.to_string(),
                pattern_type: match field("pattern_type")? {
                    "PREFIXED" => PatternType::Prefixed,
                    "LITERAL" => PatternType::Literal,
                    other => return Err(format!("pattern type {other:?}")),
                },
                principal: field("principal")?.to_string(),
                host: field("host")?.to_string(),
                operation: Operation::from_name(field("operation")?).ok_or("unknown operation")?,
                permission: match field("permission")? {
                    "DENY" => Permission::Deny,
                    "ALLOW" => Permission::Allow,
                    other => return Err(format!("permission {other:?}")),
                },
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
