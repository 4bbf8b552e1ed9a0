//! `riposte secret`: secrets connectors need, kept encrypted in the data
//! directory and named in the configuration as `{stored: NAME}`.

use std::io::Read;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use riposte_connectors::Vault;

use crate::exit;
use crate::serve::ConfigArgs;

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Keep a secret, read from standard input (one line; never an argument,
    /// which other users could see).
    Set(SecretNameArgs),
    /// The names of the kept secrets (never their values).
    List(ConfigArgs),
    /// Forget a secret.
    Delete(SecretNameArgs),
}

#[derive(Args, Debug)]
pub struct SecretNameArgs {
    pub name: String,
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub fn run(command: SecretCommand) -> Result<u8> {
    match command {
        SecretCommand::Set(args) => {
            let config = args.config.load()?;
            let mut vault = Vault::open(&config.data_dir)?;
            let mut value = String::new();
            std::io::stdin().read_to_string(&mut value).context("cannot read the secret from standard input")?;
            let value = value.trim_end_matches(['\r', '\n']);
            if value.is_empty() {
                bail!("no secret on standard input (echo -n VALUE | riposte secret set {})", args.name);
            }
            vault.set(&args.name, value)?;
            eprintln!("secret {} kept; name it in the configuration as {{stored: {}}}", args.name, args.name);
            Ok(exit::OK)
        }
        SecretCommand::List(config) => {
            let config = config.load()?;
            let vault = Vault::open(&config.data_dir)?;
            for name in vault.names() {
                println!("{name}");
            }
            Ok(exit::OK)
        }
        SecretCommand::Delete(args) => {
            let config = args.config.load()?;
            let mut vault = Vault::open(&config.data_dir)?;
            if !vault.remove(&args.name)? {
                bail!("no secret {} is kept", args.name);
            }
            eprintln!("secret {} forgotten", args.name);
            Ok(exit::OK)
        }
    }
}
