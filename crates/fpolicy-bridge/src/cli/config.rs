//! `config default|check`.

use std::path::PathBuf;

use clap::Subcommand;
use fpolicy_bridge::config::Config;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the fully commented default configuration.
    Default,
    /// Parse and validate a configuration file (FILE, else --config).
    Check { file: Option<PathBuf> },
}

pub fn run(command: ConfigCommand, common: &super::CommonArgs) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Default => {
            print!("{}", fpolicy_bridge::config::DEFAULT_CONFIG);
            Ok(())
        }
        ConfigCommand::Check { file } => {
            let Some(file) = file.or_else(|| common.config.clone()) else {
                anyhow::bail!("name the file: config check FILE (or --config FILE)");
            };
            let cfg = Config::load(&file)?;
            cfg.validate()?;
            // The warnings `serve` would log.
            for w in cfg.warnings() {
                eprintln!("warning: {w}");
            }
            println!("{}: ok", file.display());
            Ok(())
        }
    }
}
