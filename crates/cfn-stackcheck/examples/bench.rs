//! Benchmark: 100 templates of about 50 KB each, checked in one run.
//!   cargo run --release -p cfn-stackcheck --example bench

use std::time::Instant;

use cfn_stackcheck::report::check_paths;
use cfn_stackcheck::rules::Options;

fn template(i: usize) -> String {
    let mut t = String::from(
        "AWSTemplateFormatVersion: \"2010-09-09\"\nParameters:\n  Env: {Type: String, MaxLength: 8}\nResources:\n",
    );
    let mut n = 0;
    while t.len() < 50_000 {
        t.push_str(&format!(
            "  Queue{n}:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Sub \"${{AWS::StackName}}-${{Env}}-q{n}\"\n      Tags:\n        - Key: arn\n          Value: !Sub \"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:q{i}-{n}\"\n  Role{n}:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument:\n        Statement:\n          - Effect: Allow\n            Principal: {{Service: lambda.amazonaws.com}}\n            Action: sts:AssumeRole\n"
        ));
        n += 1;
    }
    t
}

fn main() {
    let dir = tempfile_dir();
    let mut bytes = 0;
    for i in 0..100 {
        let t = template(i);
        bytes += t.len();
        std::fs::write(dir.join(format!("t{i:03}.yaml")), t).unwrap();
    }
    let start = Instant::now();
    let outcome = check_paths(std::slice::from_ref(&dir), &Options::default());
    let elapsed = start.elapsed();
    println!(
        "checked {} templates ({} KB) in {:.3} s, {} findings",
        outcome.files,
        bytes / 1024,
        elapsed.as_secs_f64(),
        outcome.findings.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("cfn-stackcheck-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
