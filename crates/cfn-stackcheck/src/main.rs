//! `cfn-stackcheck [--format text|json|sarif] [--severity error|warning] PATH...`
//! Exit codes: 0 no errors, 1 errors, 2 usage error or an unreadable file.

use std::path::PathBuf;

use cfn_stackcheck::report;
use cfn_stackcheck::rules::{Options, Severity};
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "cfn-stackcheck",
    version,
    about = "Checks CloudFormation/SAM templates for what breaks StackSets deployments to many accounts"
)]
struct Cli {
    /// Output format.
    #[arg(long, default_value = "text", value_parser = ["text", "json", "sarif"])]
    format: String,
    /// Report findings of this severity and above.
    #[arg(long, default_value = "warning", value_parser = ["error", "warning"])]
    severity: String,
    /// Length of the StackSet name assumed for ${AWS::StackName}.
    #[arg(long, default_value_t = 32)]
    stack_set_name_length: usize,
    /// Do not look for network ids in parameter defaults.
    #[arg(long)]
    no_network_ids_in_defaults: bool,
    /// Template files or folders (*.yaml, *.yml, *.json, *.template).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let opts = Options {
        stack_set_name_len: cli.stack_set_name_length,
        network_ids_in_defaults: !cli.no_network_ids_in_defaults,
    };
    let mut outcome = report::check_paths(&cli.paths, &opts);
    if cli.severity == "error" {
        outcome.findings.retain(|f| f.severity == Severity::Error);
    }
    let text = match cli.format.as_str() {
        "json" => report::json(&outcome) + "\n",
        "sarif" => report::sarif(&outcome) + "\n",
        _ => report::text(&outcome),
    };
    print!("{text}");
    let errors = outcome
        .findings
        .iter()
        .any(|f| f.severity == Severity::Error);
    std::process::ExitCode::from(if outcome.unreadable || outcome.files == 0 {
        2
    } else if errors {
        1
    } else {
        0
    })
}
