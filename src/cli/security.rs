//! `strom acls` and `strom users`: ACLs (CreateAcls, DescribeAcls, DeleteAcls)
//! and SCRAM users (Alter/DescribeUserScramCredentials), as kafka-acls.sh and
//! kafka-configs.sh --entity-type users manage them.

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::*;

use super::{print_table, s, Output};
use crate::client::{Bootstrap, Client, ClientError};
use crate::security::acl::{Operation, ResourceType};
use crate::security::scram::{random_bytes, ScramMechanism};

/// Which ACLs: a resource (type and name; None = any), how its name is matched
/// (3 literal, 4 prefixed, 2 match, 1 any), principals, operations, hosts.
#[derive(Debug, Clone, Default)]
pub struct AclSpec {
    pub resource: Option<(ResourceType, String)>,
    pub pattern_type: i8,
    /// (principal, permission: 3 ALLOW, 2 DENY)
    pub principals: Vec<(String, i8)>,
    pub operations: Vec<Operation>,
    pub host: Option<String>,
}

fn operation_name(code: i8) -> String {
    Operation::from_code(code).map_or(format!("{code}"), |o| o.name().to_string())
}

fn resource_name(code: i8) -> String {
    ResourceType::from_code(code).map_or(format!("{code}"), |r| r.name().to_string())
}

fn pattern_name(code: i8) -> &'static str {
    match code {
        4 => "PREFIXED",
        3 => "LITERAL",
        _ => "?",
    }
}

pub async fn acls_list(bootstrap: &Bootstrap, spec: &AclSpec, out: Output) -> Result<(), ClientError> {
    let mut client = Client::connect(bootstrap).await?;
    let mut req = DescribeAclsRequest::default();
    (req.resource_type_filter, req.resource_name_filter) = match &spec.resource {
        Some((t, name)) => (*t as i8, Some(s(name))),
        None => (1, None),
    };
    req.pattern_type_filter = spec.pattern_type;
    req.principal_filter = spec.principals.first().map(|(p, _)| s(p));
    req.host_filter = spec.host.as_deref().map(s);
    req.operation = spec.operations.first().map_or(1, |o| *o as i8);
    req.permission_type = 1;
    let r = client.call(3, &req).await?;
    ClientError::check(r.error_code, r.error_message.as_deref())?;
    let mut rows = Vec::new();
    for res in &r.resources {
        for a in &res.acls {
            rows.push(vec![
                resource_name(res.resource_type),
                res.resource_name.to_string(),
                pattern_name(res.pattern_type).to_string(),
                a.principal.to_string(),
                a.host.to_string(),
                operation_name(a.operation),
                if a.permission_type == 3 { "ALLOW" } else { "DENY" }.to_string(),
            ]);
        }
    }
    if out.json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({"resource_type": r[0], "resource_name": r[1], "pattern_type": r[2],
                    "principal": r[3], "host": r[4], "operation": r[5], "permission": r[6]})
            })
            .collect();
        out.print_json(serde_json::json!(list));
    } else {
        print_table(
            &[
                "RESOURCE",
                "NAME",
                "PATTERN",
                "PRINCIPAL",
                "HOST",
                "OPERATION",
                "PERMISSION",
            ],
            &rows,
        );
    }
    Ok(())
}

pub async fn acls_add(bootstrap: &Bootstrap, spec: &AclSpec, out: Output) -> Result<(), ClientError> {
    let Some((resource_type, name)) = &spec.resource else {
        return Err(ClientError::Usage(
            "name a resource: --topic, --group, --transactional-id or --cluster".into(),
        ));
    };
    if spec.principals.is_empty() || spec.operations.is_empty() {
        return Err(ClientError::Usage(
            "give --allow-principal or --deny-principal, and --operation".into(),
        ));
    }
    let mut req = CreateAclsRequest::default();
    for (principal, permission) in &spec.principals {
        for op in &spec.operations {
            let mut c = AclCreation::default();
            c.resource_type = *resource_type as i8;
            c.resource_name = s(name);
            c.resource_pattern_type = spec.pattern_type;
            c.principal = s(principal);
            c.host = s(spec.host.as_deref().unwrap_or("*"));
            c.operation = *op as i8;
            c.permission_type = *permission;
            req.creations.push(c);
        }
    }
    let mut client = Client::connect(bootstrap).await?;
    let r = client.call(3, &req).await?;
    for result in &r.results {
        ClientError::check(result.error_code, result.error_message.as_deref())?;
    }
    out.done(
        &format!(
            "added {} ACL(s) on {} {name}",
            req.creations.len(),
            resource_type.name()
        ),
        serde_json::json!({"added": req.creations.len()}),
    );
    Ok(())
}

pub async fn acls_remove(bootstrap: &Bootstrap, spec: &AclSpec, out: Output) -> Result<(), ClientError> {
    let mut req = DeleteAclsRequest::default();
    let principals: Vec<Option<(String, i8)>> = match spec.principals.is_empty() {
        true => vec![None],
        false => spec.principals.iter().cloned().map(Some).collect(),
    };
    let operations: Vec<i8> = match spec.operations.is_empty() {
        true => vec![1],
        false => spec.operations.iter().map(|o| *o as i8).collect(),
    };
    for p in &principals {
        for op in &operations {
            let mut f = DeleteAclsFilter::default();
            (f.resource_type_filter, f.resource_name_filter) = match &spec.resource {
                Some((t, name)) => (*t as i8, Some(s(name))),
                None => (1, None),
            };
            f.pattern_type_filter = spec.pattern_type;
            f.principal_filter = p.as_ref().map(|(p, _)| s(p));
            f.permission_type = p.as_ref().map_or(1, |(_, perm)| *perm);
            f.host_filter = spec.host.as_deref().map(s);
            f.operation = *op;
            req.filters.push(f);
        }
    }
    let mut client = Client::connect(bootstrap).await?;
    let r = client.call(3, &req).await?;
    let mut removed = 0;
    for result in &r.filter_results {
        ClientError::check(result.error_code, result.error_message.as_deref())?;
        removed += result.matching_acls.len();
    }
    out.done(
        &format!("removed {removed} ACL(s)"),
        serde_json::json!({"removed": removed}),
    );
    Ok(())
}

pub async fn users_list(bootstrap: &Bootstrap, out: Output) -> Result<(), ClientError> {
    let mut client = Client::connect(bootstrap).await?;
    let mut req = DescribeUserScramCredentialsRequest::default();
    req.users = None;
    let r = client.call(0, &req).await?;
    ClientError::check(r.error_code, r.error_message.as_deref())?;
    let mut rows = Vec::new();
    for u in &r.results {
        ClientError::check(u.error_code, u.error_message.as_deref())?;
        for c in &u.credential_infos {
            let m = ScramMechanism::from_code(c.mechanism).map_or("?", |m| m.name());
            rows.push(vec![u.user.to_string(), m.to_string(), c.iterations.to_string()]);
        }
    }
    if out.json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| serde_json::json!({"user": r[0], "mechanism": r[1], "iterations": r[2].parse::<i64>().unwrap_or(0)}))
            .collect();
        out.print_json(serde_json::json!(list));
    } else {
        print_table(&["USER", "MECHANISM", "ITERATIONS"], &rows);
    }
    Ok(())
}

/// Create or replace a user's SCRAM credential: salted and iterated here, so
/// the password never travels.
pub async fn users_create(
    bootstrap: &Bootstrap,
    user: &str,
    password: &str,
    mechanism: &str,
    iterations: i32,
    out: Output,
) -> Result<(), ClientError> {
    let m = ScramMechanism::from_name(mechanism)
        .ok_or_else(|| ClientError::Usage(format!("{mechanism}: SCRAM-SHA-256 or SCRAM-SHA-512")))?;
    use crate::security::scram::{MAX_ITERATIONS, MIN_ITERATIONS};
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        return Err(ClientError::Usage(format!(
            "--iterations {iterations}: Kafka takes {MIN_ITERATIONS} to {MAX_ITERATIONS}"
        )));
    }
    let salt = random_bytes(32);
    let mut up = ScramCredentialUpsertion::default();
    up.name = s(user);
    up.mechanism = m.code();
    up.iterations = iterations;
    up.salted_password = m
        .salted_password(password.as_bytes(), &salt, iterations.max(1) as u32)
        .into();
    up.salt = salt.into();
    let mut req = AlterUserScramCredentialsRequest::default();
    req.upsertions.push(up);
    let mut client = Client::connect(bootstrap).await?;
    let r = client.call(0, &req).await?;
    for result in &r.results {
        ClientError::check(result.error_code, result.error_message.as_deref())?;
    }
    out.done(
        &format!("user {user}: {} credential set", m.name()),
        serde_json::json!({"user": user, "mechanism": m.name()}),
    );
    Ok(())
}

pub async fn users_delete(bootstrap: &Bootstrap, user: &str, mechanism: &str, out: Output) -> Result<(), ClientError> {
    let m = ScramMechanism::from_name(mechanism)
        .ok_or_else(|| ClientError::Usage(format!("{mechanism}: SCRAM-SHA-256 or SCRAM-SHA-512")))?;
    let mut d = ScramCredentialDeletion::default();
    d.name = s(user);
    d.mechanism = m.code();
    let mut req = AlterUserScramCredentialsRequest::default();
    req.deletions.push(d);
    let mut client = Client::connect(bootstrap).await?;
    let r = client.call(0, &req).await?;
    for result in &r.results {
        ClientError::check(result.error_code, result.error_message.as_deref())?;
    }
    out.done(
        &format!("user {user}: {} credential deleted", m.name()),
        serde_json::json!({"user": user, "deleted": m.name()}),
    );
    Ok(())
}

/// A quota entity from the tools' flags: (type, name or None for the default).
pub type QuotaEntity = Vec<(&'static str, Option<String>)>;

pub async fn quotas_describe(bootstrap: &Bootstrap, entity: &QuotaEntity, out: Output) -> Result<(), ClientError> {
    use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
    let mut req = DescribeClientQuotasRequest::default();
    req.components = entity
        .iter()
        .map(|(t, n)| {
            let mut c = ComponentData::default();
            c.entity_type = s(t);
            (c.match_type, c._match) = match n {
                Some(n) => (0, Some(s(n))),
                None => (1, None),
            };
            c
        })
        .collect();
    let mut client = Client::connect(bootstrap).await?;
    let r = client.call(1, &req).await?;
    ClientError::check(r.error_code, r.error_message.as_deref())?;
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for e in r.entries.unwrap_or_default() {
        let entity: Vec<String> = e
            .entity
            .iter()
            .map(|d| {
                format!(
                    "{}={}",
                    d.entity_type.as_str(),
                    d.entity_name.as_deref().unwrap_or("<default>")
                )
            })
            .collect();
        for v in &e.values {
            rows.push(vec![entity.join(","), v.key.to_string(), v.value.to_string()]);
            json.push(serde_json::json!({"entity": entity.join(","), "key": v.key.as_str(), "value": v.value}));
        }
    }
    if out.json {
        out.print_json(serde_json::json!(json));
    } else {
        print_table(&["ENTITY", "QUOTA", "VALUE"], &rows);
    }
    Ok(())
}

pub async fn quotas_alter(
    bootstrap: &Bootstrap,
    entity: &QuotaEntity,
    set: &[(String, String)],
    delete: &[String],
    out: Output,
) -> Result<(), ClientError> {
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
    if entity.is_empty() {
        return Err(ClientError::Usage(
            "name an entity: --user/--user-default, --client-id/--client-default, --ip/--ip-default".into(),
        ));
    }
    let mut e = EntryData::default();
    e.entity = entity
        .iter()
        .map(|(t, n)| {
            let mut d = EntityData::default();
            d.entity_type = s(t);
            d.entity_name = n.as_deref().map(s);
            d
        })
        .collect();
    for (key, value) in set {
        let mut op = OpData::default();
        op.key = s(key);
        op.value = value
            .parse()
            .map_err(|_| ClientError::Usage(format!("{key}={value}: not a number")))?;
        e.ops.push(op);
    }
    for key in delete {
        let mut op = OpData::default();
        op.key = s(key);
        op.remove = true;
        e.ops.push(op);
    }
    let mut req = AlterClientQuotasRequest::default();
    req.entries.push(e);
    let mut client = Client::connect(bootstrap).await?;
    let r = client.call(1, &req).await?;
    for entry in &r.entries {
        ClientError::check(entry.error_code, entry.error_message.as_deref())?;
    }
    out.done("quotas updated", serde_json::json!({"updated": true}));
    Ok(())
}
