//! Checking files and folders, and the three output formats.

use std::path::{Path, PathBuf};

use crate::rules::{Checker, Finding, Options, Severity};

/// The result of a run.
#[derive(Debug, Default)]
pub struct Outcome {
    pub files: usize,
    pub findings: Vec<Finding>,
    pub suppressed: usize,
    /// A file could not be read or parsed (exit code 2).
    pub unreadable: bool,
}

const EXTENSIONS: [&str; 4] = ["yaml", "yml", "json", "template"];

/// Template files under `paths` (files as given, folders recursively by extension), sorted.
pub fn collect(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| EXTENSIONS.contains(&x))
            {
                out.push(p);
            }
        }
    }
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out);
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out
}

/// Checks one template's text.
pub fn check_text(file: &str, text: &str, opts: &Options) -> (Vec<Finding>, usize, bool) {
    match crate::tree::parse(text) {
        Ok(root) => {
            let mut c = Checker::new(file, opts);
            c.run(&root, text.len());
            (c.findings, c.suppressed, false)
        }
        Err((line, column, message)) => (
            vec![Finding {
                rule: "parse-error",
                severity: Severity::Error,
                file: file.to_owned(),
                line,
                column,
                message: format!("cannot parse: {message}"),
                fix: "fix the YAML/JSON syntax".into(),
            }],
            0,
            true,
        ),
    }
}

pub fn check_paths(paths: &[PathBuf], opts: &Options) -> Outcome {
    let mut out = Outcome::default();
    for path in collect(paths) {
        out.files += 1;
        let file = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let (f, s, bad) = check_text(&file, &text, opts);
                out.findings.extend(f);
                out.suppressed += s;
                out.unreadable |= bad;
            }
            Err(e) => {
                out.unreadable = true;
                out.findings.push(Finding {
                    rule: "parse-error",
                    severity: Severity::Error,
                    file,
                    line: 1,
                    column: 1,
                    message: format!("cannot read: {e}"),
                    fix: "check the path and permissions".into(),
                });
            }
        }
    }
    out.findings.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.rule).cmp(&(&b.file, b.line, b.column, b.rule))
    });
    out
}

pub fn text(o: &Outcome) -> String {
    let mut s = String::new();
    for f in &o.findings {
        let sev = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        s.push_str(&format!(
            "{}:{}:{}: {sev} {}: {} (fix: {})\n",
            f.file, f.line, f.column, f.rule, f.message, f.fix
        ));
    }
    let errors = o
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    s.push_str(&format!(
        "{} files checked: {errors} errors, {} warnings, {} suppressed\n",
        o.files,
        o.findings.len() - errors,
        o.suppressed
    ));
    s
}

pub fn json(o: &Outcome) -> String {
    serde_json::to_string_pretty(&o.findings).unwrap_or_else(|_| "[]".into())
}

/// Rule ids, severities and descriptions (SARIF `rules`).
pub const RULES: &[(&str, &str, &str)] = &[
    (
        "hardcoded-account-id",
        "error",
        "A 12-digit AWS account id written literally.",
    ),
    (
        "hardcoded-partition",
        "warning",
        "An ARN partition (arn:aws:) written where ${AWS::Partition} belongs.",
    ),
    (
        "hardcoded-region",
        "warning",
        "A literal region name or region-bound id (ami-…) in resource properties.",
    ),
    (
        "hardcoded-network-id",
        "error",
        "A literal VPC, subnet or security group id.",
    ),
    (
        "static-resource-name",
        "warning",
        "An explicit physical name that does not vary per account or stack.",
    ),
    (
        "export-name-collision",
        "warning",
        "An Export.Name that does not vary per stack.",
    ),
    (
        "name-too-long",
        "error",
        "A name that can exceed its service limit under StackSets stack names.",
    ),
    (
        "template-too-large",
        "warning",
        "Over 51,200 bytes: too large for an inline TemplateBody.",
    ),
    (
        "parse-error",
        "error",
        "The file could not be read or parsed, or a resource is malformed.",
    ),
];

pub fn sarif(o: &Outcome) -> String {
    let rules: Vec<serde_json::Value> = RULES
        .iter()
        .map(|(id, level, text)| serde_json::json!({"id": id, "shortDescription": {"text": text}, "defaultConfiguration": {"level": level}}))
        .collect();
    let results: Vec<serde_json::Value> = o
        .findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|(id, _, _)| *id == f.rule).unwrap_or(0),
                "level": match f.severity { Severity::Error => "error", Severity::Warning => "warning" },
                "message": {"text": format!("{} (fix: {})", f.message, f.fix)},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": f.file}, "region": {"startLine": f.line.max(1), "startColumn": f.column.max(1)}}}]
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "cfn-stackcheck", "version": env!("CARGO_PKG_VERSION"), "informationUri": "https://github.com/fpolicy-bridge/fpolicy-bridge", "rules": rules}},
            "results": results
        }]
    }))
    .unwrap_or_default()
}
