//! The binary: exit codes and formats.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cfn-stackcheck");

fn run(args: &[&str], dir: &std::path::Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn exit_codes_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("clean.yaml"),
        "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n",
    )
    .unwrap();
    std::fs::write(
        d.join("warn.yml"),
        "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: q\n",
    )
    .unwrap();
    std::fs::write(d.join("err.json"), r#"{"Resources": {"S": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"VpcId": "vpc-0123abcd"}}}}"#).unwrap();
    std::fs::write(d.join("bad.template"), "a: [").unwrap();
    std::fs::write(d.join("notes.txt"), "not a template").unwrap();
    assert_eq!(run(&["clean.yaml"], d).0, 0);
    let (code, out) = run(&["warn.yml"], d);
    assert_eq!(code, 0, "warnings allowed");
    assert!(
        out.contains("warn.yml:5:18: warning static-resource-name:") && out.contains("(fix: "),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with("1 files checked: 0 errors, 1 warnings, 0 suppressed"),
        "{out}"
    );
    assert_eq!(run(&["err.json"], d).0, 1);
    assert_eq!(
        run(&["--severity", "error", "warn.yml"], d),
        (
            0,
            "1 files checked: 0 errors, 0 warnings, 0 suppressed\n".into()
        )
    );
    let (code, out) = run(&["bad.template"], d);
    assert_eq!(code, 2);
    assert!(out.contains("parse-error"));
    // A folder: every template, not notes.txt.
    let (code, out) = run(&["--format", "json", "."], d);
    assert_eq!(code, 2, "bad.template is in the folder");
    let v: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let files: std::collections::BTreeSet<&str> =
        v.iter().map(|f| f["file"].as_str().unwrap()).collect();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(v.iter().all(|f| {
        [
            "rule", "severity", "file", "line", "column", "message", "fix",
        ]
        .iter()
        .all(|k| f.get(*k).is_some())
    }));
    let (_, out) = run(&["--format", "sarif", "err.json"], d);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["runs"][0]["results"][0]["ruleId"], "hardcoded-network-id");
    assert_eq!(
        run(&["--format", "xml", "clean.yaml"], d).0,
        2,
        "usage error"
    );
    assert_eq!(run(&[], d).0, 2);
}
