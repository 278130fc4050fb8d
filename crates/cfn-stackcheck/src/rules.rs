//! The rules. Ids and severities are a contract (docs/cfn-stackcheck.md).

use std::collections::BTreeSet;

use crate::tree::{Node, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub fix: String,
}

/// Options of the checks.
#[derive(Debug, Clone)]
pub struct Options {
    /// Length of the StackSet's name (StackSets names stack instances
    /// `StackSet-<set name>-<36-character id>`).
    pub stack_set_name_len: usize,
    /// Look for network ids in parameter defaults too.
    pub network_ids_in_defaults: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stack_set_name_len: 32,
            network_ids_in_defaults: true,
        }
    }
}

pub const PLACEHOLDER_ACCOUNTS: [&str; 2] = ["123456789012", "000000000000"];
const STACKSET_ROLES: [&str; 2] = [
    "AWSCloudFormationStackSetAdministrationRole",
    "AWSCloudFormationStackSetExecutionRole",
];
pub const TEMPLATE_BODY_LIMIT: usize = 51_200;

/// Physical-name properties: (resource type or "*", property, service limit).
const NAME_PROPERTIES: &[(&str, &str, usize)] = &[
    ("AWS::IAM::Role", "RoleName", 64),
    ("AWS::IAM::ManagedPolicy", "ManagedPolicyName", 128),
    ("AWS::IAM::InstanceProfile", "InstanceProfileName", 128),
    ("AWS::IAM::User", "UserName", 64),
    ("AWS::IAM::Group", "GroupName", 128),
    ("AWS::Lambda::Function", "FunctionName", 64),
    ("AWS::SQS::Queue", "QueueName", 80),
    ("AWS::SNS::Topic", "TopicName", 256),
    ("AWS::DynamoDB::Table", "TableName", 255),
    ("AWS::S3::Bucket", "BucketName", 63),
    ("AWS::StepFunctions::StateMachine", "StateMachineName", 80),
    ("AWS::Logs::LogGroup", "LogGroupName", 512),
    ("AWS::CloudWatch::Alarm", "AlarmName", 255),
    ("AWS::Events::Rule", "Name", 64),
    ("AWS::Events::EventBus", "Name", 256),
    ("AWS::ECS::Cluster", "ClusterName", 255),
    ("AWS::ECS::Service", "ServiceName", 255),
    ("AWS::ECR::Repository", "RepositoryName", 256),
    ("AWS::SecretsManager::Secret", "Name", 512),
    ("AWS::SSM::Parameter", "Name", 2048),
    ("AWS::KMS::Alias", "AliasName", 256),
    ("AWS::ElasticLoadBalancingV2::LoadBalancer", "Name", 32),
    ("AWS::ElasticLoadBalancingV2::TargetGroup", "Name", 32),
    ("AWS::EC2::SecurityGroup", "GroupName", 255),
    ("AWS::Kinesis::Stream", "Name", 128),
    ("AWS::CodeBuild::Project", "Name", 255),
];

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// 12-digit runs not part of a longer digit run.
pub fn account_ids(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 12 {
                out.push(&s[start..i]);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// `vpc-`, `subnet-`, `sg-` + 8 or 17 hex digits, on a word boundary
/// (so `msg-0123abcd` is not a security group).
pub fn network_ids(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    for prefix in ["vpc-", "subnet-", "sg-"] {
        let mut from = 0;
        while let Some(pos) = s[from..].find(prefix) {
            let start = from + pos;
            from = start + prefix.len();
            if start > 0 && is_word(b[start - 1]) {
                continue;
            }
            let hex = b[from..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                .count();
            let after = b.get(from + hex).copied();
            if (hex == 8 || hex == 17) && after.is_none_or(|c| !is_word(c)) {
                out.push(&s[start..from + hex]);
            }
        }
    }
    out
}

const REGION_AREAS: [&str; 10] = ["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx", "cn"];
const REGION_DIRS: [&str; 9] = [
    "north",
    "south",
    "east",
    "west",
    "central",
    "northeast",
    "northwest",
    "southeast",
    "southwest",
];

/// Literal region names (`us-east-1`, `us-gov-west-1`, `cn-north-1`) and
/// AMI ids, on word boundaries.
pub fn regions(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    for (i, _) in s.char_indices() {
        if i > 0 && is_word(bytes[i - 1]) {
            continue;
        }
        let rest = &s[i..];
        for area in REGION_AREAS {
            let Some(r) = rest.strip_prefix(area).and_then(|r| r.strip_prefix('-')) else {
                continue;
            };
            let r = r
                .strip_prefix("gov-")
                .or_else(|| r.strip_prefix("iso-"))
                .unwrap_or(r);
            for dir in REGION_DIRS {
                if let Some(r2) = r.strip_prefix(dir).and_then(|r| r.strip_prefix('-')) {
                    let digits = r2.bytes().take_while(u8::is_ascii_digit).count();
                    let end = rest.len() - r2.len() + digits;
                    if (1..=2).contains(&digits)
                        && rest.as_bytes().get(end).is_none_or(|c| !is_word(*c))
                    {
                        out.push(rest[..end].to_owned());
                    }
                }
            }
        }
        if let Some(r) = rest.strip_prefix("ami-") {
            let hex = r.bytes().take_while(u8::is_ascii_hexdigit).count();
            if (hex == 8 || hex == 17) && r.as_bytes().get(hex).is_none_or(|c| !is_word(*c)) {
                out.push(rest[..4 + hex].to_owned());
            }
        }
    }
    out
}

/// A check over one template.
pub struct Checker<'a> {
    pub file: &'a str,
    pub opts: &'a Options,
    pub findings: Vec<Finding>,
    /// Findings dropped by `Metadata: {cfn-stackcheck: {ignore: [...]}}`.
    pub suppressed: usize,
    params: Vec<(String, Node)>,
}

fn finding(
    rule: &'static str,
    severity: Severity,
    file: &str,
    node_line: usize,
    node_col: usize,
    message: String,
    fix: &str,
) -> Finding {
    Finding {
        rule,
        severity,
        file: file.to_owned(),
        line: node_line,
        column: node_col,
        message,
        fix: fix.to_owned(),
    }
}

/// Pseudo parameters and their longest values.
fn pseudo_len(name: &str, opts: &Options) -> Option<usize> {
    Some(match name {
        // StackSet-<set name>-<36-character id>
        "AWS::StackName" => 9 + opts.stack_set_name_len + 1 + 36,
        "AWS::StackId" => 128,
        "AWS::AccountId" => 12,
        "AWS::Region" => 14,
        "AWS::Partition" => 10,
        "AWS::URLSuffix" => 16,
        "AWS::NoValue" => 0,
        _ => return None,
    })
}

/// The `${...}` references of a `!Sub` string (not `${!Literal}`).
fn sub_refs(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else { break };
        let r = &after[..end];
        if !r.starts_with('!') {
            out.push(r);
        }
        rest = &after[end + 1..];
    }
    out
}

impl<'a> Checker<'a> {
    pub fn new(file: &'a str, opts: &'a Options) -> Self {
        Checker {
            file,
            opts,
            findings: Vec::new(),
            suppressed: 0,
            params: Vec::new(),
        }
    }

    fn push(
        &mut self,
        rule: &'static str,
        severity: Severity,
        n: &Node,
        message: String,
        fix: &str,
    ) {
        self.findings.push(finding(
            rule, severity, self.file, n.line, n.col, message, fix,
        ));
    }

    /// Every string in a subtree (including `!Sub` bodies), with its node.
    fn strings<'n>(n: &'n Node, out: &mut Vec<&'n Node>) {
        match &n.value {
            Value::Str(_) => out.push(n),
            Value::Seq(items) => items.iter().for_each(|i| Self::strings(i, out)),
            Value::Map(m) => m.iter().for_each(|(_, v)| Self::strings(v, out)),
            Value::Null => {}
        }
    }

    pub fn run(&mut self, root: &Node, size: usize) {
        if size > TEMPLATE_BODY_LIMIT {
            self.push("template-too-large", Severity::Warning, root, format!("template is {size} bytes, over the {TEMPLATE_BODY_LIMIT}-byte limit of an inline TemplateBody"), "upload it to S3 and use TemplateURL");
        }
        if !matches!(root.value, Value::Map(_)) {
            self.push(
                "parse-error",
                Severity::Error,
                root,
                "a template is a mapping (Resources, Parameters, …)".into(),
                "check the file is a CloudFormation template",
            );
            return;
        }
        self.params = root
            .get("Parameters")
            .map(|p| {
                p.entries()
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        // Account ids and partitions everywhere (comments are not in the tree).
        let mut all = Vec::new();
        for (_, v) in root.entries() {
            Self::strings(v, &mut all);
        }
        let all: Vec<Node> = all.into_iter().cloned().collect();
        for n in &all {
            let s = n.as_str().unwrap_or_default();
            for id in account_ids(s) {
                if !PLACEHOLDER_ACCOUNTS.contains(&id) {
                    self.push(
                        "hardcoded-account-id",
                        Severity::Error,
                        n,
                        format!("account id {id} is written literally"),
                        "use ${AWS::AccountId} (in a !Sub) or a parameter",
                    );
                }
            }
            for p in [
                "arn:aws:",
                "arn:aws-cn:",
                "arn:aws-us-gov:",
                "arn:aws-iso:",
                "arn:aws-iso-b:",
            ] {
                if s.contains(p) {
                    self.push(
                        "hardcoded-partition",
                        Severity::Warning,
                        n,
                        format!("partition written literally ({p}…)"),
                        "write arn:${AWS::Partition}:… in a !Sub",
                    );
                    break;
                }
            }
        }
        // Resources.
        let resources: Vec<(String, Node)> = root
            .get("Resources")
            .map(|r| {
                r.entries()
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let key_lines: Vec<(String, usize)> = root
            .get("Resources")
            .map(|r| {
                r.entries()
                    .iter()
                    .map(|(k, _)| (k.name.clone(), k.line))
                    .collect()
            })
            .unwrap_or_default();
        let mut ignores: Vec<(usize, usize, BTreeSet<String>)> = Vec::new();
        let mut network_nodes = Vec::new();
        for (name, res) in &resources {
            let Value::Map(_) = &res.value else {
                self.push(
                    "parse-error",
                    Severity::Error,
                    res,
                    format!("resource {name} is not a mapping (null or malformed)"),
                    "give it Type and Properties",
                );
                continue;
            };
            let ty = res
                .get("Type")
                .and_then(Node::as_str)
                .unwrap_or_default()
                .to_owned();
            if let Some(props) = res.get("Properties") {
                let mut strs = Vec::new();
                Self::strings(props, &mut strs);
                for n in strs.into_iter().cloned().collect::<Vec<_>>() {
                    let s = n.as_str().unwrap_or_default();
                    for r in regions(s) {
                        self.push(
                            "hardcoded-region",
                            Severity::Warning,
                            &n,
                            format!("region-bound value {r} in resource {name}"),
                            "use ${AWS::Region}, a parameter, or an SSM parameter for AMIs",
                        );
                    }
                    network_nodes.push(n.clone());
                }
                self.names(name, &ty, props);
            }
            // Suppression, applied at the end to the resource's lines.
            let ignore: BTreeSet<String> = res
                .get("Metadata")
                .and_then(|m| m.get("cfn-stackcheck"))
                .and_then(|m| m.get("ignore"))
                .map(|l| match &l.value {
                    Value::Seq(items) => items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_owned))
                        .collect(),
                    _ => BTreeSet::new(),
                })
                .unwrap_or_default();
            if !ignore.is_empty() {
                let lo = key_lines
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(res.line, |(_, l)| *l);
                let hi = key_lines
                    .iter()
                    .skip_while(|(n, _)| n != name)
                    .nth(1)
                    .map_or(usize::MAX, |(_, l)| *l);
                ignores.push((lo, hi, ignore));
            }
        }
        for n in &network_nodes {
            for id in network_ids(n.as_str().unwrap_or_default()) {
                self.push("hardcoded-network-id", Severity::Error, n, format!("network id {id} is written literally"), "pass it as a parameter (AWS::EC2::VPC::Id, AWS::EC2::Subnet::Id, AWS::EC2::SecurityGroup::Id)");
            }
        }
        if self.opts.network_ids_in_defaults {
            for (pname, p) in self.params.clone() {
                if let Some(d) = p.get("Default") {
                    let mut strs = Vec::new();
                    Self::strings(d, &mut strs);
                    for n in strs.into_iter().cloned().collect::<Vec<_>>() {
                        for id in network_ids(n.as_str().unwrap_or_default()) {
                            self.push(
                                "hardcoded-network-id",
                                Severity::Error,
                                &n,
                                format!("parameter {pname} defaults to network id {id}"),
                                "leave the default empty; each account has its own",
                            );
                        }
                    }
                }
            }
        }
        // Outputs' export names.
        if let Some(outputs) = root.get("Outputs") {
            for (oname, out) in outputs.entries().to_vec() {
                if let Some(name) = out.get("Export").and_then(|e| e.get("Name"))
                    && !self.varies(name)
                {
                    self.push(
                        "export-name-collision",
                        Severity::Warning,
                        name,
                        format!(
                            "export name of output {} does not vary per stack",
                            oname.name
                        ),
                        "include ${AWS::StackName} in the export name",
                    );
                }
            }
        }
        if !ignores.is_empty() {
            let before = self.findings.len();
            self.findings.retain(|f| {
                !ignores
                    .iter()
                    .any(|(lo, hi, rules)| f.line >= *lo && f.line < *hi && rules.contains(f.rule))
            });
            self.suppressed += before - self.findings.len();
        }
    }

    /// Whether a name expression varies per account/region/stack.
    fn varies(&self, n: &Node) -> bool {
        match n.intrinsic() {
            Some(("Ref", arg)) => arg
                .as_str()
                .is_some_and(|r| r.starts_with("AWS::") || self.params.iter().any(|(p, _)| p == r)),
            Some(("Sub", arg)) => {
                let body = match &arg.value {
                    Value::Str(s) => Some(s.as_str()),
                    Value::Seq(items) => items.first().and_then(Node::as_str),
                    _ => None,
                };
                body.is_some_and(|b| !sub_refs(b).is_empty())
            }
            Some(("Join", arg)) => match &arg.value {
                Value::Seq(items) => items.get(1).is_some_and(|parts| match &parts.value {
                    Value::Seq(ps) => ps.iter().any(|p| p.intrinsic().is_some() && self.varies(p)),
                    _ => true,
                }),
                _ => true,
            },
            Some(_) => true, // GetAtt, If, Select…: computed
            None => false,
        }
    }

    /// Longest value of a name expression, and how it was computed.
    fn max_len(&self, n: &Node) -> Option<(usize, String)> {
        if let Some(s) = n.as_str().filter(|_| n.intrinsic().is_none()) {
            return Some((
                s.chars().count(),
                format!("{:?} is {} characters", s, s.chars().count()),
            ));
        }
        let param_len = |p: &str| -> Option<(usize, String)> {
            if let Some(l) = pseudo_len(p, self.opts) {
                return Some((l, format!("{p} up to {l}")));
            }
            let (_, def) = self.params.iter().find(|(name, _)| name == p)?;
            if let Some(m) = def
                .get("MaxLength")
                .and_then(Node::as_str)
                .and_then(|m| m.parse().ok())
            {
                return Some((m, format!("{p} up to MaxLength {m}")));
            }
            let d = def
                .get("Default")
                .and_then(Node::as_str)
                .map_or(0, |d| d.chars().count());
            Some((d, format!("{p} {d} (its default; no MaxLength)")))
        };
        match n.intrinsic() {
            Some(("Ref", arg)) => param_len(arg.as_str()?),
            Some(("Sub", arg)) => {
                let body = match &arg.value {
                    Value::Str(s) => s.clone(),
                    Value::Seq(items) => items.first()?.as_str()?.to_owned(),
                    _ => return None,
                };
                let mut total = 0;
                let mut parts = Vec::new();
                let mut literal = body.clone();
                for r in sub_refs(&body) {
                    let (l, why) = param_len(r.split('.').next().unwrap_or(r))?;
                    total += l;
                    parts.push(why);
                    literal = literal.replacen(&format!("${{{r}}}"), "", 1);
                }
                let lit = literal.chars().count();
                total += lit;
                parts.push(format!("{lit} literal characters"));
                Some((total, parts.join(" + ")))
            }
            Some(("Join", arg)) => {
                let Value::Seq(items) = &arg.value else {
                    return None;
                };
                let sep = items.first()?.as_str()?.chars().count();
                let Value::Seq(ps) = &items.get(1)?.value else {
                    return None;
                };
                let mut total = sep * ps.len().saturating_sub(1);
                let mut why = vec![format!("{} separators", ps.len().saturating_sub(1))];
                for p in ps {
                    let (l, w) = self.max_len(p)?;
                    total += l;
                    why.push(w);
                }
                Some((total, why.join(" + ")))
            }
            _ => None,
        }
    }

    fn names(&mut self, resource: &str, ty: &str, props: &Node) {
        for (rty, prop, limit) in NAME_PROPERTIES {
            if *rty != ty {
                continue;
            }
            let Some(n) = props.get(prop) else { continue };
            let literal = n.as_str().filter(|_| n.intrinsic().is_none());
            let allowed = literal.is_some_and(|s| STACKSET_ROLES.contains(&s));
            if !allowed && !self.varies(n) {
                self.push("static-resource-name", Severity::Warning, n, format!("{prop} of {resource} is the same in every account and stack instance"), "drop it (CloudFormation generates one) or build it with ${AWS::StackName} / ${AWS::Region}");
            }
            if let Some((len, why)) = self.max_len(n)
                && len > *limit
            {
                self.push("name-too-long", Severity::Error, n, format!("{prop} of {resource} can be {len} characters, over the limit of {limit}: {why} (StackSets name stacks StackSet-<{} character set name>-<36-character id>)", self.opts.stack_set_name_len), "shorten the literal part, cap parameters with MaxLength, or let CloudFormation name it");
            }
        }
    }
}
