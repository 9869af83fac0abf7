// SPDX-License-Identifier: GPL-2.0
//! vsctl: manage virtual services through the ioctls of `/dev/vs`.
//!
//! `cli` is the command line (typed by the value parsers of `args`), `commands` runs one
//! command each through `vs_client::Device`, `resolve` turns a VS argument into an entry,
//! `output` renders, `top` is `vsctl top`, `explain` words the module's refusals and `error`
//! is the one error type. `config` (the configuration file), `plan` (its diff against the
//! live state) and `apply` (carrying a plan out) are `vsctl apply` and `vsctl export`;
//! `prometheus` is `stats --format prometheus`; `generate` (tests only) writes the man page
//! and completions. Everything but `commands`, `top::run` and `apply::{apply_cmd, export_cmd}`
//! is pure and unit-tested without a device.

mod apply;
mod args;
mod cli;
mod commands;
mod config;
mod error;
mod explain;
#[cfg(test)]
mod generate;
mod output;
mod plan;
mod prometheus;
mod resolve;
mod shares;
mod top;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Commands, StatsFormat};
use crate::error::Error;

/// Run one command; returns what goes to standard output.
fn run(cli: Cli) -> Result<String, Error> {
    match &cli.command {
        Commands::Create {
            name,
            parent,
            id,
            values,
        } => commands::create(name, parent.as_ref(), *id, values),
        Commands::Destroy { vs } => commands::destroy(vs),
        Commands::Set {
            vs,
            values,
            detach,
            attach,
        } => commands::set(vs, values, detach, attach),
        Commands::Show { vs, json } => commands::show(vs, *json),
        Commands::List { json } => commands::list_cmd(*json),
        Commands::Stats { vs, json, format } => {
            let format = format.unwrap_or(if *json {
                StatsFormat::Json
            } else {
                StatsFormat::Text
            });
            commands::stats(vs.as_ref(), format)
        }
        Commands::Apply { file, dry_run } => apply::apply_cmd(file, *dry_run),
        Commands::Export => apply::export_cmd(),
        Commands::Top {
            interval,
            count,
            json,
        } => top::run(*interval, *count, *json),
        Commands::Version { json } => commands::version(*json),
        Commands::Addrule { rule } => commands::addrule(rule),
        Commands::Delrule { id } => commands::delrule(*id),
        Commands::Rules { json } => commands::rules(*json),
        Commands::Addprocess { vs, pid, tree } => commands::addprocess(vs, *pid, *tree),
        Commands::Which { pid, json } => commands::which(*pid, *json),
        Commands::Ps { vs, json } => commands::ps(vs.as_ref(), *json),
    }
}

/// Print `e` as vsctl's one line and give its exit status.
fn fail(e: &Error) -> ExitCode {
    eprintln!("vsctl: {e}");
    ExitCode::from(e.exit_code())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // A value refused by a value parser: one line, like every vsctl error.
        Err(e) => match error::from_clap(&e) {
            Some(usage) => return fail(&usage),
            // clap's own messages (missing arguments, --help), and its exit status.
            None => e.exit(),
        },
    };
    match run(cli) {
        Ok(out) => {
            let mut stdout = io::stdout().lock();
            match stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                // The reader went away (`vsctl list | head -1`): nothing left to say.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("vsctl: write: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => fail(&e),
    }
}
