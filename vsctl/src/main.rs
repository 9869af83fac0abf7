// SPDX-License-Identifier: GPL-2.0
//! vsctl: manage virtual services through the ioctls of `/dev/vs`.
//!
//! `dev` talks to the device (the only `unsafe`), `resolve` turns a VS argument into an
//! entry, `args` parses values, `output` renders, `errors` explains failures. Everything but
//! `dev` is pure and unit-tested without a device.

mod args;
mod dev;
mod errors;
mod output;
mod resolve;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;
use vs_core::abi::{VsAttrs, VsCreate, VsInfo, VsVersion, VS_ID_AUTO, VS_ROOT};

use crate::args::Attr;
use crate::dev::Device;
use crate::errors::{CreateCtx, Error};

const AFTER_HELP: &str = "\
A VS argument is a VS name or a VSID (0 is root). Shares are percentages of the parent's
share (1..100); a VS without its own value for an attribute inherits it from the nearest
ancestor that has one. Read commands take --json.

Exit status: 0 done, 1 the operation failed, 2 bad command line.";

/// Manage virtual services (VSs) through /dev/vs
#[derive(Parser, Debug)]
#[command(name = "vsctl", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

/// The values that `create` and `set` can give a VS.
#[derive(clap::Args, Debug)]
struct Values {
    /// CPU share in percent of the parent's share, 1..100 (gives the VS its own value)
    #[arg(long, value_name = "S")]
    cpu_share: Option<String>,
    /// Network share in percent of the parent's share, 1..100 (gives the VS its own value)
    #[arg(long, value_name = "S")]
    net_share: Option<String>,
    /// Most processes in the VS and the VSs inheriting from it: a number or 'unlimited'
    #[arg(long, value_name = "N")]
    max_procs: Option<String>,
}

impl Values {
    fn parse(&self) -> Result<VsAttrs, Error> {
        args::parse_values(
            self.cpu_share.as_deref(),
            self.net_share.as_deref(),
            self.max_procs.as_deref(),
        )
    }
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Create a VS and print its VSID
    ///
    /// The new VS inherits every attribute it is not given a value for. Without --id it gets
    /// the next free local VSID (64 and up).
    Create {
        /// Name: 1-31 characters [A-Za-z0-9_.-], starting with a letter or '_'
        name: String,
        /// Parent VS, by name or VSID [default: root]
        #[arg(long, short, value_name = "VS")]
        parent: Option<String>,
        /// VSID: 1..63 (global, cluster-wide) or 64..2147483647 (local)
        #[arg(long, value_name = "N")]
        id: Option<String>,
        #[command(flatten)]
        values: Values,
    },
    /// Destroy a VS that has no child VSs and no member processes
    Destroy {
        /// The VS: name or VSID
        vs: String,
    },
    /// Change the attributes of a VS
    ///
    /// A value (--cpu-share, --net-share, --max-procs) detaches the attribute: the VS gets its
    /// own value. --detach gives the VS its own copy of the value it inherits; --attach drops
    /// its own value so that it inherits again. The module applies attaches, then detaches,
    /// then values, all or nothing.
    Set {
        /// The VS: name or VSID
        vs: String,
        #[command(flatten)]
        values: Values,
        /// Give the VS its own copy of the inherited value (repeatable, or comma-separated)
        #[arg(long, value_enum, value_name = "ATTR", value_delimiter = ',')]
        detach: Vec<Attr>,
        /// Drop the own value and inherit from the nearest ancestor that has one (repeatable)
        #[arg(long, value_enum, value_name = "ATTR", value_delimiter = ',')]
        attach: Vec<Attr>,
    },
    /// Show everything about one VS
    ///
    /// Id, name, parent, depth, number of child VSs, each attribute (its value, whether the VS
    /// has its own or from which VS it inherits it, and for shares the fraction of the
    /// machine it amounts to when every VS is busy) and the counters.
    Show {
        /// The VS: name or VSID
        vs: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List every VS as a tree; values in parentheses are inherited
    ///
    /// One VS a line, below its parent. CPU and NET are the shares in force, in percent of
    /// the parent's share; MAX_PROCS the process limit in force; PROCS the processes in the VS
    /// now. A value in parentheses, like "(50%)", is inherited from the nearest ancestor that
    /// has its own value; a value without, like "50%", is the VS's own (detached) value.
    List {
        /// Print a JSON array of VS objects (as `show --json`), parents before children
        #[arg(long)]
        json: bool,
    },
    /// Show the counters of one VS, or of every VS as a table
    Stats {
        /// The VS: name or VSID [default: every VS]
        vs: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show the module's ABI version, how many VSs may exist and how many do
    Version {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// Open the device and check that it speaks our ABI: done once by every command.
fn open() -> Result<(Device, VsVersion), Error> {
    let dev = Device::open().map_err(errors::open_failed)?;
    let version = dev.version().map_err(errors::open_failed)?;
    errors::check_abi(&version)?;
    Ok((dev, version))
}

fn list(dev: &Device) -> Result<Vec<VsInfo>, Error> {
    dev.list().map_err(errors::read_failed)
}

fn json(v: &Value) -> Result<String, Error> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| Error::Failed(format!("json: {e}")))
}

fn create(
    name: &str,
    parent: Option<&str>,
    id: Option<&str>,
    values: &Values,
) -> Result<String, Error> {
    let name_buf = args::name_buf(name)?;
    let id = id.map(args::parse_id).transpose()?;
    let attrs = values.parse()?;
    let (dev, version) = open()?;
    let vss = list(&dev)?;
    let parent = *resolve::find(&vss, parent.unwrap_or("0"))?;
    let req = VsCreate {
        name: name_buf,
        parent: parent.id,
        id: id.unwrap_or(VS_ID_AUTO),
        attrs,
    };
    match dev.create(&req) {
        Ok(new) => Ok(format!("{new}\n")),
        Err(e) => {
            // Explain with the state as it is now; fall back to what was read before.
            let fresh = dev.list().unwrap_or(vss);
            let (nr_vs, max_vs) = match dev.version() {
                Ok(v) => (v.nr_vs, v.max_vs),
                Err(_) => (fresh.len() as u32, version.max_vs),
            };
            let ctx = CreateCtx {
                name,
                id,
                parent: &parent,
                attrs: &attrs,
                list: &fresh,
                nr_vs,
                max_vs,
            };
            Err(errors::create_failed(e.errno, &ctx))
        }
    }
}

fn destroy(vs: &str) -> Result<String, Error> {
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    let target = resolve::find(&vss, vs)?;
    if target.id == VS_ROOT {
        return Err(errors::destroy_root());
    }
    dev.destroy(target.id)
        .map_err(|e| errors::destroy_failed(e.errno, target))?;
    Ok(String::new())
}

fn set(vs: &str, values: &Values, detach: &[Attr], attach: &[Attr]) -> Result<String, Error> {
    let mut req = args::set_request(0, values.parse()?, detach, attach)?;
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    let target = *resolve::find(&vss, vs)?;
    req.id = target.id;
    match dev.set(&req) {
        Ok(()) => Ok(String::new()),
        Err(e) => {
            let fresh = dev.list().unwrap_or(vss);
            Err(errors::set_failed(e.errno, &target, &req, &fresh))
        }
    }
}

fn show(vs: &str, as_json: bool) -> Result<String, Error> {
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    let target = resolve::find(&vss, vs)?;
    let info = dev
        .get(target.id)
        .map_err(|e| errors::get_failed(e, target))?;
    if as_json {
        json(&output::vs_json(&info, &vss))
    } else {
        Ok(output::show_text(&info, &vss))
    }
}

fn list_cmd(as_json: bool) -> Result<String, Error> {
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    if as_json {
        json(&output::list_json(&vss))
    } else {
        Ok(output::list_text(&vss))
    }
}

fn stats(vs: Option<&str>, as_json: bool) -> Result<String, Error> {
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    match vs {
        Some(vs) => {
            let target = resolve::find(&vss, vs)?;
            let info = dev
                .get(target.id)
                .map_err(|e| errors::get_failed(e, target))?;
            if as_json {
                json(&output::stats_entry_json(&info))
            } else {
                Ok(output::stats_text(&info))
            }
        }
        None if as_json => json(&output::stats_all_json(&vss)),
        None => Ok(output::stats_table(&vss)),
    }
}

fn version(as_json: bool) -> Result<String, Error> {
    let (_, v) = open()?;
    if as_json {
        json(&output::version_json(&v))
    } else {
        Ok(output::version_text(&v))
    }
}

/// Run one command; returns what goes to standard output.
fn run(cli: Cli) -> Result<String, Error> {
    match &cli.command {
        Commands::Create {
            name,
            parent,
            id,
            values,
        } => create(name, parent.as_deref(), id.as_deref(), values),
        Commands::Destroy { vs } => destroy(vs),
        Commands::Set {
            vs,
            values,
            detach,
            attach,
        } => set(vs, values, detach, attach),
        Commands::Show { vs, json } => show(vs, *json),
        Commands::List { json } => list_cmd(*json),
        Commands::Stats { vs, json } => stats(vs.as_deref(), *json),
        Commands::Version { json } => version(*json),
    }
}

fn main() -> ExitCode {
    // Usage errors: clap prints them and exits with status 2.
    let cli = Cli::parse();
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
        Err(e) => {
            eprintln!("vsctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(argv: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("vsctl").chain(argv.iter().copied()))
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn create_arguments() {
        let cli = parse(&[
            "create",
            "www1",
            "--parent",
            "web",
            "--id",
            "7",
            "--max-procs",
            "unlimited",
        ]);
        match cli.map(|c| c.command) {
            Ok(Commands::Create {
                name,
                parent,
                id,
                values,
            }) => {
                assert_eq!(name, "www1");
                assert_eq!(parent.as_deref(), Some("web"));
                assert_eq!(id.as_deref(), Some("7"));
                assert_eq!(values.max_procs.as_deref(), Some("unlimited"));
                assert_eq!(values.cpu_share, None);
            }
            other => panic!("{other:?}"),
        }
        let e = parse(&["create"]).err().map(|e| e.exit_code());
        assert_eq!(e, Some(2), "a missing name is a usage error");
    }

    #[test]
    fn set_takes_repeated_and_comma_separated_attrs() {
        let cli = parse(&[
            "set", "web", "--detach", "cpu,net", "--detach", "procs", "--attach", "net",
        ]);
        match cli.map(|c| c.command) {
            Ok(Commands::Set {
                vs, detach, attach, ..
            }) => {
                assert_eq!(vs, "web");
                assert_eq!(detach, [Attr::Cpu, Attr::Net, Attr::Procs]);
                assert_eq!(attach, [Attr::Net]);
            }
            other => panic!("{other:?}"),
        }
        let e = parse(&["set", "web", "--detach", "disk"])
            .err()
            .map(|e| e.exit_code());
        assert_eq!(e, Some(2), "an unknown attribute is a usage error");
    }

    #[test]
    fn read_commands_take_json() {
        for argv in [
            &["show", "web", "--json"][..],
            &["list", "--json"],
            &["stats", "--json"],
            &["stats", "web", "--json"],
            &["version", "--json"],
        ] {
            assert!(parse(argv).is_ok(), "{argv:?}");
        }
    }

    #[test]
    fn list_help_explains_the_parentheses() {
        let mut cmd = Cli::command();
        let list = cmd
            .find_subcommand_mut("list")
            .map(|c| c.render_long_help().to_string());
        assert!(list.is_some_and(|h| h.contains("in parentheses")));
    }

    #[test]
    fn bad_values_are_refused_before_opening_the_device() {
        // These fail in argument checking, so they behave the same with or without /dev/vs.
        let v = Values {
            cpu_share: Some("0".into()),
            net_share: None,
            max_procs: None,
        };
        assert_eq!(
            create("www1", None, None, &v),
            Err(Error::Usage(
                "invalid --cpu-share '0': share must be 1..100".into()
            ))
        );
        let ok = Values {
            cpu_share: None,
            net_share: None,
            max_procs: None,
        };
        assert!(
            matches!(create("a b", None, None, &ok), Err(Error::Usage(m)) if m.starts_with("invalid name 'a b'"))
        );
        assert!(matches!(
            create("x", None, Some("0"), &ok),
            Err(Error::Usage(_))
        ));
        assert!(matches!(set("web", &ok, &[], &[]), Err(Error::Usage(_))));
    }
}
