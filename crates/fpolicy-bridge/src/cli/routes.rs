//! `routes test|eventbridge-patterns|cloudformation`.

use clap::Subcommand;
use fpolicy_bridge::config::{CloudSinkConfig, Config};
use fpolicy_event::Operation;

use super::{CommonArgs, load};

#[derive(Subcommand)]
pub enum RoutesCommand {
    /// Which routes and sinks an event would take.
    Test(RoutesTestArgs),
    /// An EventBridge event pattern per route, with the same meaning.
    EventbridgePatterns,
    /// The routes as a CloudFormation template of AWS::Events::Rule
    /// resources (JSON; parameters EventBusName, TargetArn and
    /// RuleNamePrefix), so bus-side and in-process routing come from one
    /// source.
    Cloudformation {
        /// What a rule matches: `routes`, the route names the bridge put in
        /// detail.metadata.routes (exact, for the bridge's own bus); or
        /// `conditions`, the route's conditions translated to a pattern
        /// (for events from elsewhere; approximate where EventBridge cannot
        /// say the same, noted on standard error).
        #[arg(long = "match", value_enum, default_value_t = RuleMatch::Routes)]
        rule_match: RuleMatch,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum RuleMatch {
    Routes,
    Conditions,
}

#[derive(clap::Args)]
pub struct RoutesTestArgs {
    /// Volume-relative path with a leading /, e.g. /legal/2026/contract.pdf.
    #[arg(value_parser = volume_path)]
    file_path: String,
    /// Operation.
    #[arg(long, default_value = "create")]
    op: Operation,
    /// Renames: the old path.
    #[arg(long, value_parser = volume_path)]
    previous_path: Option<String>,
    /// smb, nfsv3, nfsv4.0, nfsv4.1.
    #[arg(long, default_value = "smb")]
    protocol: String,
    /// The event's volume name (as routes' `volumes` match it).
    #[arg(long, default_value = "unknown")]
    volume: String,
    /// The event's SVM name (as routes' `svms` match it).
    #[arg(long, default_value = "unknown")]
    svm: String,
    /// FILE, DIR, STREAM, SYMLINK.
    #[arg(long, default_value = "FILE")]
    file_type: String,
    /// The user: a name, a SID or a UID (SIDs and UIDs are looked up in
    /// [identity.users] and the well-known SIDs).
    #[arg(long)]
    user: Option<String>,
    /// The client's address (for filters.exclude_client_ips).
    #[arg(long)]
    client_ip: Option<std::net::IpAddr>,
}

fn volume_path(p: &str) -> Result<String, String> {
    if p.starts_with('/') {
        Ok(p.to_owned())
    } else {
        Err(format!(
            "{p:?}: paths are volume-relative with a leading /, e.g. /{p}"
        ))
    }
}

pub fn run(common: &CommonArgs, command: RoutesCommand) -> anyhow::Result<()> {
    match command {
        RoutesCommand::Test(args) => routes_test(common, args),
        RoutesCommand::EventbridgePatterns => routes_patterns(common),
        RoutesCommand::Cloudformation { rule_match } => routes_cloudformation(common, rule_match),
    }
}

fn routes_test(common: &CommonArgs, args: RoutesTestArgs) -> anyhow::Result<()> {
    let cfg = load(common)?;
    cfg.validate()?;
    let rules = std::sync::Arc::new(fpolicy_bridge::ingest::IngestRules::offline(&cfg)?);
    let mut event = fpolicy_event::Event {
        event_id: String::new(),
        operation_type: args.op,
        file_path: args.file_path,
        previous_path: args.previous_path,
        volume_name: args.volume,
        svm_name: args.svm,
        timestamp: String::new(),
        file_size: 0,
        client_ip: args.client_ip.map(|ip| ip.to_string()),
        metadata: fpolicy_event::Metadata {
            protocol: args.protocol,
            file_type: Some(args.file_type),
            ..fpolicy_event::Metadata::default()
        },
    };
    if let Some(user) = &args.user {
        use fpolicy_event::users::UserRef;
        match UserRef::parse(user).map_err(anyhow::Error::msg)? {
            UserRef::Sid(sid) => event.metadata.sid = Some(sid),
            UserRef::Uid(uid) => event.metadata.uid = Some(uid),
            UserRef::Name(_) => event.metadata.user_name = Some(user.clone()),
        }
    }
    let ingestor = fpolicy_bridge::ingest::EventIngestor::new(rules.clone());
    ingestor.resolve_user(&mut event);
    if let Some(reason) = ingestor.dropped_by(&event) {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "filtered": reason.as_str(),
                "user_name": event.metadata.user_name,
                "routes": [],
                "sinks": [],
                "also_every_event": [],
            }))?
        );
        return Ok(());
    }
    let routing = rules.router.route(&event);
    let mut local = Vec::new();
    if cfg.sinks.jsonl.enabled {
        local.push("jsonl");
    }
    if cfg.sinks.stdout.enabled {
        local.push("stdout");
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "user_name": event.metadata.user_name,
            "routes": routing.routes,
            "sinks": routing.sinks,
            "default": routing.routes.is_empty(),
            "also_every_event": local,
        }))?
    );
    Ok(())
}

/// The `source` and `detail-type` a route's events carry on the bus: those
/// of its first EventBridge sink.
fn source_and_type(cfg: &Config, sinks: &[String]) -> (String, String) {
    cfg.cloud_sinks
        .iter()
        .find_map(|c| match c {
            CloudSinkConfig::Eventbridge(bus) if sinks.contains(&bus.name) => {
                Some((bus.source.clone(), bus.detail_type.clone()))
            }
            _ => None,
        })
        .unwrap_or_else(|| ("fsxn.fpolicy".into(), "FPolicy File Operation".into()))
}

fn routes_patterns(common: &CommonArgs) -> anyhow::Result<()> {
    let cfg = load(common)?;
    cfg.validate()?;
    let router = cfg.router()?;
    let mut out = serde_json::Map::new();
    for route in router.routes() {
        let (source, detail_type) = source_and_type(&cfg, &route.sinks);
        let (pattern, warnings) =
            fpolicy_event::route::eventbridge_pattern(route, &source, &detail_type);
        for w in warnings {
            eprintln!("note: {w}");
        }
        out.insert(route.name.clone(), pattern);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// `Legal-compliance` → `LegalCompliance` (a CloudFormation logical id).
fn logical_id(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn routes_cloudformation(common: &CommonArgs, rule_match: RuleMatch) -> anyhow::Result<()> {
    let cfg = load(common)?;
    cfg.validate()?;
    let router = cfg.router()?;
    let mut resources = serde_json::Map::new();
    let mut rule_names = std::collections::HashSet::new();
    for route in router.routes() {
        let (source, detail_type) = source_and_type(&cfg, &route.sinks);
        let pattern = match rule_match {
            RuleMatch::Routes => serde_json::json!({
                "source": [source],
                "detail-type": [detail_type],
                "detail": {"metadata": {"routes": [route.name]}}
            }),
            RuleMatch::Conditions => {
                let (pattern, warnings) =
                    fpolicy_event::route::eventbridge_pattern(route, &source, &detail_type);
                for w in warnings {
                    eprintln!("note: {w}");
                }
                pattern
            }
        };
        let id = logical_id(&route.name);
        // Named, so a StackSets execution role scoped to the prefix may
        // create them (rule names: [.-_A-Za-z0-9], at most 64).
        let rule_name: String = route
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .take(47)
            .collect();
        if !rule_names.insert(rule_name.clone()) {
            anyhow::bail!("two routes give the rule name {rule_name:?}: rename one");
        }
        let logical = format!("Route{id}Rule");
        if resources.contains_key(&logical) {
            anyhow::bail!("two routes give the logical id {logical}: rename one");
        }
        resources.insert(
            logical,
            serde_json::json!({
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Name": {"Fn::Sub": format!("${{RuleNamePrefix}}-{rule_name}")},
                    "Description": format!("fpolicy-bridge route {}", route.name),
                    "EventBusName": {"Ref": "EventBusName"},
                    "EventPattern": pattern,
                    "State": "ENABLED",
                    "Targets": [{"Id": id, "Arn": {"Ref": "TargetArn"}}]
                }
            }),
        );
    }
    let template = serde_json::json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "fpolicy-bridge use-case rules, generated by `fpolicy-bridge routes cloudformation` from the bridge's [[route]]s; do not edit by hand.",
        "Parameters": {
            "EventBusName": {"Type": "String", "Description": "The bus fpolicy-bridge puts events on."},
            "TargetArn": {"Type": "String", "Description": "Where matching events go (a queue, a function, ...)."},
            "RuleNamePrefix": {"Type": "String", "Default": "fpolicy-bridge", "AllowedPattern": "^[a-z][a-z0-9-]{1,15}$", "Description": "Rule names start with it (the StackSets execution role is scoped to it)."}
        },
        "Resources": resources
    });
    // Compact: the generated template stays under the 51,200-byte inline limit.
    println!("{}", serde_json::to_string(&template)?);
    Ok(())
}
