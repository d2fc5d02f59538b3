//! The flags of `strom acls`, `strom users` and `strom quotas` (kafka-acls.sh's
//! and kafka-configs.sh's, where they have them), and what each command runs.

use clap::Subcommand;

use super::security::{self, AclSpec, QuotaEntity};
use super::Output;
use crate::client::{Bootstrap, ClientError};

/// The resource and principals ACL commands act on (kafka-acls.sh's flags).
#[derive(clap::Args)]
pub struct AclArgs {
    #[arg(long, conflicts_with_all = ["group", "transactional_id", "cluster"])]
    pub topic: Option<String>,
    #[arg(long, conflicts_with_all = ["transactional_id", "cluster"])]
    pub group: Option<String>,
    #[arg(long, conflicts_with = "cluster")]
    pub transactional_id: Option<String>,
    /// The cluster itself (kafka-cluster).
    #[arg(long)]
    pub cluster: bool,
    /// literal, prefixed (add); also match, any (list, remove)
    #[arg(long)]
    pub resource_pattern_type: Option<String>,
    /// User:NAME (repeatable)
    #[arg(long)]
    pub allow_principal: Vec<String>,
    #[arg(long)]
    pub deny_principal: Vec<String>,
    /// Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite, All (repeatable)
    #[arg(long)]
    pub operation: Vec<String>,
    /// Where the principal connects from: an IP address  [default: *]
    #[arg(long)]
    pub host: Option<String>,
}

impl AclArgs {
    fn spec(self, adding: bool) -> Result<AclSpec, ClientError> {
        use crate::security::acl::{Operation, ResourceType};
        let resource = match (self.topic, self.group, self.transactional_id, self.cluster) {
            (Some(t), ..) => Some((ResourceType::Topic, t)),
            (_, Some(g), ..) => Some((ResourceType::Group, g)),
            (_, _, Some(t), _) => Some((ResourceType::TransactionalId, t)),
            (.., true) => Some((ResourceType::Cluster, "kafka-cluster".to_string())),
            _ => None,
        };
        let pattern_type = match self
            .resource_pattern_type
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None if adding => 3,
            None => 1,
            Some("literal") => 3,
            Some("prefixed") => 4,
            Some("match") if !adding => 2,
            Some("any") if !adding => 1,
            Some(other) => return Err(ClientError::Usage(format!("--resource-pattern-type {other}?"))),
        };
        let operations = self
            .operation
            .iter()
            .map(|o| Operation::from_name(o).ok_or_else(|| ClientError::Usage(format!("--operation {o}?"))))
            .collect::<Result<_, _>>()?;
        let principals = self
            .allow_principal
            .into_iter()
            .map(|p| (p, 3))
            .chain(self.deny_principal.into_iter().map(|p| (p, 2)))
            .collect();
        Ok(AclSpec {
            resource,
            pattern_type,
            principals,
            operations,
            host: self.host,
        })
    }
}

#[derive(Subcommand)]
pub enum AclsCommand {
    /// ACLs matching the flags given (all without flags).
    List {
        #[command(flatten)]
        acl: AclArgs,
    },
    /// Allow or deny principals operations on a resource.
    Add {
        #[command(flatten)]
        acl: AclArgs,
    },
    /// Remove the ACLs matching the flags.
    Remove {
        #[command(flatten)]
        acl: AclArgs,
    },
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Users with SCRAM credentials.
    List,
    /// Create a user, or change its password.
    Create {
        user: String,
        #[arg(long, env = "STROM_USER_PASSWORD")]
        password: String,
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        #[arg(long, default_value_t = 8192)]
        iterations: i32,
    },
    /// Delete a user's credential of one mechanism.
    Delete {
        user: String,
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
    },
}

/// Whose quota: kafka-configs.sh's users / clients / ips entities.
#[derive(clap::Args)]
pub struct QuotaEntityArgs {
    #[arg(long, conflicts_with = "user_default")]
    pub user: Option<String>,
    /// The default of every user.
    #[arg(long)]
    pub user_default: bool,
    #[arg(long, conflicts_with = "client_default")]
    pub client_id: Option<String>,
    /// The default of every client id.
    #[arg(long)]
    pub client_default: bool,
    #[arg(long, conflicts_with_all = ["ip_default", "user", "user_default", "client_id", "client_default"])]
    pub ip: Option<String>,
    /// The default of every address.
    #[arg(long)]
    pub ip_default: bool,
}

impl QuotaEntityArgs {
    fn entity(&self) -> QuotaEntity {
        let mut e = Vec::new();
        let mut part = |t: &'static str, name: &Option<String>, default: bool| {
            if name.is_some() || default {
                e.push((t, name.clone()));
            }
        };
        part("user", &self.user, self.user_default);
        part("client-id", &self.client_id, self.client_default);
        part("ip", &self.ip, self.ip_default);
        e
    }
}

#[derive(Subcommand)]
pub enum QuotasCommand {
    /// Quotas of the entities matching the flags (every entity without flags).
    Describe {
        #[command(flatten)]
        entity: QuotaEntityArgs,
    },
    /// Set or remove quota values: producer_byte_rate, consumer_byte_rate,
    /// request_percentage (users, client ids); connection_creation_rate (ips).
    Alter {
        #[command(flatten)]
        entity: QuotaEntityArgs,
        #[arg(long = "set", value_parser = crate::cli::topics::key_value)]
        set: Vec<(String, String)>,
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
}

impl AclsCommand {
    pub async fn run(self, bs: &Bootstrap, out: Output) -> Result<(), ClientError> {
        match self {
            AclsCommand::List { acl } => security::acls_list(bs, &acl.spec(false)?, out).await,
            AclsCommand::Add { acl } => security::acls_add(bs, &acl.spec(true)?, out).await,
            AclsCommand::Remove { acl } => security::acls_remove(bs, &acl.spec(false)?, out).await,
        }
    }
}

impl UsersCommand {
    pub async fn run(self, bs: &Bootstrap, out: Output) -> Result<(), ClientError> {
        match self {
            UsersCommand::List => security::users_list(bs, out).await,
            UsersCommand::Create {
                user,
                password,
                mechanism,
                iterations,
            } => security::users_create(bs, &user, &password, &mechanism, iterations, out).await,
            UsersCommand::Delete { user, mechanism } => security::users_delete(bs, &user, &mechanism, out).await,
        }
    }
}

impl QuotasCommand {
    pub async fn run(self, bs: &Bootstrap, out: Output) -> Result<(), ClientError> {
        match self {
            QuotasCommand::Describe { entity } => security::quotas_describe(bs, &entity.entity(), out).await,
            QuotasCommand::Alter { entity, set, delete } => {
                security::quotas_alter(bs, &entity.entity(), &set, &delete, out).await
            }
        }
    }
}
