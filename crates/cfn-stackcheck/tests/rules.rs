//! A fixture per rule (positive and negative), the edge cases, property
//! tests, exit codes and output formats.

use cfn_stackcheck::report::{Outcome, check_text, sarif};
use cfn_stackcheck::rules::{Options, Severity, account_ids, network_ids, regions};
use proptest::prelude::*;

fn rules(yaml: &str) -> Vec<&'static str> {
    let (f, _, _) = check_text("t.yaml", yaml, &Options::default());
    f.iter().map(|f| f.rule).collect()
}

fn has(yaml: &str, rule: &str) -> bool {
    rules(yaml).contains(&rule)
}

fn resource(ty: &str, props: &str) -> String {
    format!(
        "Resources:\n  R:\n    Type: {ty}\n    Properties:\n{}",
        props
            .lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    )
}

#[test]
fn hardcoded_account_id() {
    assert!(has(
        &resource(
            "AWS::SNS::Topic",
            "KmsMasterKeyId: arn:aws:kms:us-east-1:444455556666:key/x"
        ),
        "hardcoded-account-id"
    ));
    assert!(
        has(
            &resource(
                "AWS::SNS::Topic",
                "KmsMasterKeyId: !Sub \"arn:${AWS::Partition}:kms:${AWS::Region}:444455556666:key/x\""
            ),
            "hardcoded-account-id"
        ),
        "inside !Sub"
    );
    assert!(
        has(
            &resource("AWS::SNS::Topic", "DisplayName: 444455556666"),
            "hardcoded-account-id"
        ),
        "a plain YAML number"
    );
    assert!(!has(
        &resource(
            "AWS::SNS::Topic",
            "KmsMasterKeyId: !Sub \"arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/x\""
        ),
        "hardcoded-account-id"
    ));
    assert!(!has(
        &resource(
            "AWS::SNS::Topic",
            "DisplayName: \"123456789012 and 000000000000 are placeholders\""
        ),
        "hardcoded-account-id"
    ));
    assert!(!has(
        &format!(
            "# 444455556666 in a comment\n{}",
            resource("AWS::SNS::Topic", "DisplayName: x")
        ),
        "hardcoded-account-id"
    ));
    assert!(!has(
        &resource(
            "AWS::SNS::Topic",
            "DisplayName: \"4444555566667 is 13 digits\""
        ),
        "hardcoded-account-id"
    ));
}

#[test]
fn hardcoded_partition_and_region() {
    assert!(has(
        &resource(
            "AWS::IAM::Role",
            "ManagedPolicyArns: [arn:aws:iam::aws:policy/ReadOnlyAccess]"
        ),
        "hardcoded-partition"
    ));
    assert!(!has(
        &resource(
            "AWS::IAM::Role",
            "ManagedPolicyArns: [!Sub \"arn:${AWS::Partition}:iam::aws:policy/ReadOnlyAccess\"]"
        ),
        "hardcoded-partition"
    ));
    assert!(has(
        &resource("AWS::EC2::Instance", "ImageId: ami-0123456789abcdef0"),
        "hardcoded-region"
    ));
    assert!(has(
        &resource(
            "AWS::Lambda::Function",
            "Environment: {Variables: {R: eu-west-1}}"
        ),
        "hardcoded-region"
    ));
    assert!(has(
        &resource(
            "AWS::Lambda::Function",
            "Environment: {Variables: {R: us-gov-west-1}}"
        ),
        "hardcoded-region"
    ));
    assert!(!has(
        &resource(
            "AWS::Lambda::Function",
            "Environment: {Variables: {R: !Ref AWS::Region}}"
        ),
        "hardcoded-region"
    ));
    assert!(
        !has(
            &resource("AWS::Lambda::Function", "Description: my-us-east-1x"),
            "hardcoded-region"
        ),
        "word boundaries"
    );
    assert!(
        !has(
            "Description: deployed in us-east-1\nResources:\n  R:\n    Type: AWS::SQS::Queue\n",
            "hardcoded-region"
        ),
        "outside resource properties"
    );
}

#[test]
fn hardcoded_network_id_with_word_boundaries() {
    assert!(has(
        &resource("AWS::EC2::SecurityGroup", "VpcId: vpc-0123abcd"),
        "hardcoded-network-id"
    ));
    assert!(has(
        &resource("AWS::EC2::Instance", "SubnetId: subnet-0123456789abcdef0"),
        "hardcoded-network-id"
    ));
    assert!(has(
        &resource("AWS::EC2::Instance", "SecurityGroupIds: [sg-89abcdef]"),
        "hardcoded-network-id"
    ));
    assert!(
        !has(
            &resource("AWS::SQS::Queue", "Tags: [{Key: k, Value: msg-01234567}]"),
            "hardcoded-network-id"
        ),
        "msg- is not sg-"
    );
    assert!(
        !has(
            &resource("AWS::EC2::Instance", "SubnetId: subnet-0123abcde"),
            "hardcoded-network-id"
        ),
        "9 hex digits"
    );
    assert!(!has(
        &resource("AWS::EC2::Instance", "SubnetId: !Ref Subnet"),
        "hardcoded-network-id"
    ));
    let with_default = "Parameters:\n  Vpc:\n    Type: String\n    Default: vpc-0123abcd\nResources:\n  R:\n    Type: AWS::SQS::Queue\n";
    assert!(has(with_default, "hardcoded-network-id"));
    let (f, _, _) = check_text(
        "t",
        with_default,
        &Options {
            network_ids_in_defaults: false,
            ..Options::default()
        },
    );
    assert!(f.is_empty(), "defaults can be left out");
}

#[test]
fn static_resource_names() {
    assert!(has(
        &resource("AWS::SQS::Queue", "QueueName: ingest"),
        "static-resource-name"
    ));
    assert!(
        has(
            &resource("AWS::SQS::Queue", "QueueName: !Sub ingest-queue"),
            "static-resource-name"
        ),
        "!Sub without a reference"
    );
    assert!(has(
        &resource("AWS::SQS::Queue", "QueueName: !Join [\"-\", [a, b]]"),
        "static-resource-name"
    ));
    assert!(!has(
        &resource(
            "AWS::SQS::Queue",
            "QueueName: !Sub \"${AWS::StackName}-ingest\""
        ),
        "static-resource-name"
    ));
    assert!(!has(
        &resource(
            "AWS::SQS::Queue",
            "QueueName: !Join [\"-\", [!Ref AWS::StackName, ingest]]"
        ),
        "static-resource-name"
    ));
    assert!(!has(
        &format!(
            "Parameters:\n  Prefix: {{Type: String}}\n{}",
            resource("AWS::SQS::Queue", "QueueName: !Sub \"${Prefix}-ingest\"")
        ),
        "static-resource-name"
    ));
    assert!(
        !has(
            &resource(
                "AWS::IAM::Role",
                "RoleName: AWSCloudFormationStackSetExecutionRole"
            ),
            "static-resource-name"
        ),
        "documented StackSets role"
    );
    assert!(!has(
        &resource("AWS::SQS::Queue", "VisibilityTimeout: 30"),
        "static-resource-name"
    ));
}

#[test]
fn export_names_and_sizes() {
    let out = |name: &str| {
        format!(
            "Resources:\n  Q: {{Type: AWS::SQS::Queue}}\nOutputs:\n  O:\n    Value: !Ref Q\n    Export:\n      Name: {name}\n"
        )
    };
    assert!(has(&out("queue"), "export-name-collision"));
    assert!(!has(
        &out("!Sub \"${AWS::StackName}-queue\""),
        "export-name-collision"
    ));
    let big = format!(
        "Description: \"{}\"\nResources:\n  Q: {{Type: AWS::SQS::Queue}}\n",
        "x".repeat(52_000)
    );
    assert!(has(&big, "template-too-large"));
    assert!(!has(
        &out("!Sub \"${AWS::StackName}-q\""),
        "template-too-large"
    ));
}

#[test]
fn name_too_long_explains_the_arithmetic() {
    let yaml = format!(
        "Parameters:\n  Env: {{Type: String, MaxLength: 10}}\n{}",
        resource(
            "AWS::IAM::Role",
            "RoleName: !Sub \"${AWS::StackName}-${Env}-task\""
        )
    );
    let (f, _, _) = check_text("t", &yaml, &Options::default());
    let long = f
        .iter()
        .find(|f| f.rule == "name-too-long")
        .expect("too long");
    // StackSet-<32>-<36> = 78, + Env 10, + 6 literal ("-" "-task") = 94 > 64.
    assert!(
        long.message.contains("94")
            && long.message.contains("64")
            && long.message.contains("MaxLength 10"),
        "{}",
        long.message
    );
    let short = Options {
        stack_set_name_len: 1,
        ..Options::default()
    };
    let (f, _, _) = check_text(
        "t",
        &resource("AWS::SQS::Queue", "QueueName: !Sub \"${AWS::StackName}-q\""),
        &short,
    );
    assert!(
        !f.iter().any(|f| f.rule == "name-too-long"),
        "47 + 2 fits in 80"
    );
    assert!(has(
        &resource(
            "AWS::S3::Bucket",
            &format!("BucketName: {}", "b".repeat(64))
        ),
        "name-too-long"
    ));
}

#[test]
fn malformed_input_is_a_finding_never_a_crash() {
    assert_eq!(
        rules("Resources:\n  R:\n"),
        ["parse-error"],
        "null resource"
    );
    assert_eq!(rules("Resources:\n  R: [1, 2]\n"), ["parse-error"]);
    assert_eq!(rules("- a\n- b\n"), ["parse-error"], "top-level list");
    assert_eq!(rules("a: ["), ["parse-error"]);
    assert!(rules("Resources: null\n").is_empty());
    assert!(rules("").contains(&"parse-error") || rules("").is_empty());
    // JSON with the long form of intrinsics.
    assert!(has(
        r#"{"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "fixed"}}}}"#,
        "static-resource-name"
    ));
    assert!(!has(
        r#"{"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Sub": "${AWS::StackName}-q"}}}}}"#,
        "static-resource-name"
    ));
}

#[test]
fn suppression_per_resource_is_counted() {
    let yaml = "Resources:\n  A:\n    Type: AWS::SQS::Queue\n    Metadata:\n      cfn-stackcheck:\n        ignore: [static-resource-name]\n    Properties:\n      QueueName: a\n  B:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: b\n";
    let (f, suppressed, _) = check_text("t", yaml, &Options::default());
    assert_eq!(suppressed, 1);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].line, 12, "B's finding stays, with its line");
    assert_eq!(f[0].column, 18);
}

#[test]
fn sarif_has_the_required_structure() {
    let (findings, _, _) = check_text(
        "t.yaml",
        &resource("AWS::SQS::Queue", "QueueName: q"),
        &Options::default(),
    );
    let o = Outcome {
        files: 1,
        findings,
        suppressed: 0,
        unreadable: false,
    };
    let v: serde_json::Value = serde_json::from_str(&sarif(&o)).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "cfn-stackcheck");
    let r = &run["results"][0];
    assert_eq!(r["ruleId"], "static-resource-name");
    assert_eq!(r["level"], "warning");
    assert_eq!(
        run["tool"]["driver"]["rules"][r["ruleIndex"].as_u64().unwrap() as usize]["id"],
        "static-resource-name"
    );
    assert!(
        r["locations"][0]["physicalLocation"]["region"]["startLine"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert_eq!(o.findings[0].severity, Severity::Warning);
}

#[test]
fn scanners() {
    assert_eq!(
        account_ids("arn:aws:iam::111122223333:role/x 12345678901234"),
        ["111122223333"]
    );
    assert_eq!(
        network_ids("sg-01234567,vpc-0123456789abcdef0 xsg-01234567"),
        ["vpc-0123456789abcdef0", "sg-01234567"]
    );
    assert_eq!(
        regions("ap-northeast-1 and ami-0123abcd"),
        ["ap-northeast-1", "ami-0123abcd"]
    );
}

proptest! {
    /// Any 12-digit id placed in a name is found; built from
    /// ${AWS::AccountId} it is not.
    #[test]
    fn any_account_id_in_a_name_is_found(id in "[1-9][0-9]{11}", pre in "[a-z-]{0,8}", post in "[a-z-]{0,8}") {
        prop_assume!(!["123456789012", "000000000000"].contains(&id.as_str()));
        let literal = resource("AWS::SQS::Queue", &format!("QueueName: \"{pre}{id}{post}\""));
        prop_assert!(has(&literal, "hardcoded-account-id"));
        let built = resource("AWS::SQS::Queue", &format!("QueueName: !Sub \"{pre}${{AWS::AccountId}}{post}\""));
        prop_assert!(!has(&built, "hardcoded-account-id"));
    }
}
