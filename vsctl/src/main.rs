// SPDX-License-Identifier: GPL-2.0
//! vsctl: manage virtual services through the ioctls of `/dev/vs`.
//!
//! `dev` talks to the device (the only `unsafe` besides the wall clock of `top`), `resolve`
//! turns a VS argument into an entry, `args` parses values, `output` renders, `top` computes
//! and renders the frames of `vsctl top`, `errors` explains failures. Everything but `dev`
//! and the command functions here is pure and unit-tested without a device.

mod args;
mod dev;
mod errors;
mod output;
mod resolve;
mod top;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use serde_json::Value;
use vs_core::abi::{name_bytes, VsAttrs, VsCreate, VsInfo, VsVersion, VS_ID_AUTO, VS_ROOT};
use vs_core::rule_parse::parse_rule;

use crate::args::Attr;
use crate::dev::Device;
use crate::errors::{CreateCtx, Error};
use crate::output::Member;

const AFTER_HELP: &str = "\
A VS argument is a VS name or a VSID (0 is root). Shares are percentages of the parent's
share (1..100); a VS without its own value for an attribute inherits it from the nearest
ancestor that has one. Read commands take --json.

A rule is written as in the paper: (EVENT, VS[, req=VS][, path=PATH]) -> (TARGET), e.g.
  vsctl addrule '(fork, www1) -> (www1)'
  vsctl addrule '(accept, fcgi, req=www2) -> (www2)'
  vsctl addrule '(accept, www[1|2], req=www[2|1]) -> (www[2|1])'   (two rules)
  vsctl addrule '(exec, *, path=/usr/sbin/nginx) -> (web)'
EVENT is fork, exec, socket, connect, accept, unix-connect, unix-accept, unix-recv,
pipe-read or msg-recv; '*' is any VS; TARGET 'req' is the requester's VS, 'keep' stays.

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
    /// Show what every VS does now, refreshed every interval
    ///
    /// One row per VS, in tree order as in `list`. CPU% is the CPU time the VS got over the
    /// interval in percent of one CPU (like top(1): two busy CPUs make 200); TX/s the bytes per
    /// second it sent through vsq qdiscs (K, M, G: powers of 1024); TARGET% the CPU
    /// controller's target for the VS's CPU pool, in percent of the busy CPU time (blank when
    /// the pool is idle or unmanaged); NICE the nice the controller gives the pool's tasks
    /// (blank for the root pool, whose tasks are never reniced); PROCS the processes in the VS
    /// now; RECLASS the tasks moved in or out and FORKS the forks over the interval. A VS
    /// created during the interval has blank deltas in its first frame. On a terminal the
    /// screen is redrawn; otherwise the frames follow one another, a blank line apart. Stop it
    /// with Ctrl-C, or give --count.
    Top {
        /// Seconds between frames, at least 0.1
        #[arg(long, short = 'd', value_name = "SECS", default_value = "1")]
        interval: String,
        /// Stop after N frames [default: run until interrupted]
        #[arg(long, short = 'n', value_name = "N")]
        count: Option<String>,
        /// Print each frame as one line of JSON: {"time", "interval", "vs": [...]}
        #[arg(long)]
        json: bool,
    },
    /// Show the module's ABI version, how many VSs may exist and how many do
    Version {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Add a classification rule and print its id (one id per rule it expands to)
    ///
    /// RULE is (EVENT, VS[, req=VS][, path=PATH]) -> (TARGET). VS is a name, a VSID or '*'
    /// (any VS); req= (the requester's VS) is for accept, unix-accept, unix-recv, pipe-read
    /// and msg-recv; path= (the absolute path of the program) for exec. TARGET is a VS,
    /// 'req' (the requester's VS) or 'keep' (stay, and stop matching). A VS may list
    /// alternatives, as in www[1|2]: the rule then stands for one rule per alternative, the
    /// i-th alternatives of every VS taken together; all of them are added, or none.
    /// Rules are tried in id order; the first that matches decides.
    Addrule {
        /// The rule; quote it for the shell, e.g. '(fork, www1) -> (www1)'
        rule: String,
    },
    /// Delete the rule with id ID (as `vsctl rules` shows it)
    Delrule {
        /// The rule id
        id: String,
    },
    /// List the rules in evaluation order: id, rule, and how often it decided
    Rules {
        /// Print a JSON array of rule objects
        #[arg(long)]
        json: bool,
    },
    /// Move a process to a VS and print how many tasks were moved
    ///
    /// Every thread of the process moves; with --tree, its descendants too.
    Addprocess {
        /// The VS: name or VSID
        vs: String,
        /// The process id
        pid: String,
        /// Move the descendants of the process too
        #[arg(long)]
        tree: bool,
    },
    /// Print the VS a task belongs to: its name and VSID
    Which {
        /// The process (or thread) id
        pid: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List the tasks of a VS, or of every VS but root: pid, command, VS
    ///
    /// Root membership is implicit: every task not classified into another VS belongs to
    /// root, so `vsctl ps root` lists nothing.
    Ps {
        /// The VS: name or VSID [default: every VS but root]
        vs: Option<String>,
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

fn addrule(rule: &str) -> Result<String, Error> {
    // Syntax first, with every name taken as known: a typo is reported even without vs.ko.
    parse_rule(rule, |_| Some(VS_ROOT)).map_err(|e| Error::Usage(e.render(rule)))?;
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    let rules = parse_rule(rule, |name| {
        vss.iter()
            .find(|i| name_bytes(&i.name) == name.as_bytes())
            .map(|i| i.id)
    })
    .map_err(|e| Error::Usage(e.render(rule)))?;
    match dev.add_rules(&rules) {
        Ok(first) => Ok((0..rules.len() as u32)
            .map(|i| format!("{}\n", first.wrapping_add(i)))
            .collect()),
        Err(e) => {
            let fresh = dev.list().unwrap_or(vss);
            Err(errors::addrule_failed(e.errno, &rules, &fresh))
        }
    }
}

fn delrule(id: &str) -> Result<String, Error> {
    let id = args::parse_rule_id(id)?;
    let (dev, _) = open()?;
    dev.del_rule(id)
        .map_err(|e| errors::delrule_failed(e.errno, id))?;
    Ok(String::new())
}

fn rules(as_json: bool) -> Result<String, Error> {
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    let rules = dev.rules().map_err(errors::read_failed)?;
    if as_json {
        json(&output::rules_json(&rules, &vss))
    } else {
        Ok(output::rules_table(&rules, &vss))
    }
}

fn addprocess(vs: &str, pid: &str, tree: bool) -> Result<String, Error> {
    let pid = args::parse_pid(pid)?;
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    let target = *resolve::find(&vss, vs)?;
    match dev.add_process(pid, target.id, tree) {
        Ok(moved) => Ok(format!("{moved}\n")),
        Err(e) => {
            let fresh = dev.list().unwrap_or(vss);
            Err(errors::addprocess_failed(e.errno, pid, &target, &fresh))
        }
    }
}

fn which(pid: &str, as_json: bool) -> Result<String, Error> {
    let pid = args::parse_pid(pid)?;
    let (dev, _) = open()?;
    let id = dev.which(pid).map_err(|e| errors::which_failed(e, pid))?;
    let vss = list(&dev)?;
    if as_json {
        json(&output::which_json(pid, id, &vss))
    } else {
        Ok(output::which_text(id, &vss))
    }
}

/// The command name of task `pid`, if it still exists.
fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end_matches('\n').to_string())
}

fn ps(vs: Option<&str>, as_json: bool) -> Result<String, Error> {
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    let targets: Vec<VsInfo> = match vs {
        Some(vs) => {
            let target = *resolve::find(&vss, vs)?;
            if target.id == VS_ROOT {
                return if as_json {
                    eprintln!("vsctl: {}", output::ROOT_MEMBERS_NOTE);
                    json(&output::ps_json(&[], &vss))
                } else {
                    Ok(format!("{}\n", output::ROOT_MEMBERS_NOTE))
                };
            }
            vec![target]
        }
        None => vss.iter().filter(|i| i.id != VS_ROOT).copied().collect(),
    };
    let mut members = Vec::new();
    for target in &targets {
        let mut pids = match dev.members(target.id) {
            Ok(pids) => pids,
            // Destroyed since the list was read: it has no members any more.
            Err(e) if e.errno == libc::ENOENT && vs.is_none() => continue,
            Err(e) => return Err(errors::get_failed(e, target)),
        };
        pids.sort_unstable();
        members.extend(pids.into_iter().map(|pid| Member {
            pid,
            comm: comm(pid),
            id: target.id,
        }));
    }
    if as_json {
        json(&output::ps_json(&members, &vss))
    } else {
        Ok(output::ps_table(&members, &vss))
    }
}

/// The wall-clock time of day, `HH:MM:SS` in local time.
fn clock() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t = libc::time_t::try_from(now).unwrap_or(0);
    // SAFETY: an all-zero `tm` is a valid value; localtime_r only writes to it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to a time_t and a tm for the duration of the call.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return format!(
            "{:02}:{:02}:{:02} UTC",
            now / 3600 % 24,
            now / 60 % 60,
            now % 60
        );
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// A numeric parameter of the vs module, if it can be read.
fn module_param(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/sys/module/vs/parameters/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Write one frame of `top`; `Ok(false)` when the reader has gone away.
fn emit(out: &mut impl Write, frame: &str) -> Result<bool, Error> {
    match out.write_all(frame.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::Failed(format!("write: {e}"))),
    }
}

/// `top`: prints its frames as it goes, so it returns nothing for `main` to print.
fn top_cmd(interval: &str, count: Option<&str>, as_json: bool) -> Result<String, Error> {
    let interval = args::parse_interval(interval)?;
    let count = count.map(args::parse_count).transpose()?;
    let (dev, _) = open()?;
    let tty = !as_json && io::stdout().is_terminal();
    let mut out = io::stdout().lock();
    let mut prev = list(&dev)?;
    let mut taken = Instant::now();
    let mut frames = 0u64;
    while count.is_none_or(|c| frames < c) {
        // Sleep out the rest of the interval: printing does not stretch it.
        std::thread::sleep(interval.saturating_sub(taken.elapsed()));
        let cur = list(&dev)?;
        let now = Instant::now();
        let elapsed = now - taken;
        let rows = top::frame(&prev, &cur, elapsed);
        let text = if as_json {
            let time = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_secs_f64();
            let line = serde_json::to_string(&top::frame_json(time, elapsed, &rows))
                .map_err(|e| Error::Failed(format!("json: {e}")))?;
            line + "\n"
        } else if tty {
            let ctl = top::Controller {
                period_ms: module_param("cpu_period_ms"),
                ticks: module_param("cpu_ticks"),
                tick_ns: module_param("cpu_tick_ns"),
            };
            format!(
                "\x1b[H\x1b[2J{}\n{}",
                top::header(&clock(), interval, &ctl),
                top::frame_text(&rows)
            )
        } else if frames > 0 {
            format!("\n{}", top::frame_text(&rows))
        } else {
            top::frame_text(&rows)
        };
        if !emit(&mut out, &text)? {
            break;
        }
        prev = cur;
        taken = now;
        frames += 1;
    }
    Ok(String::new())
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
        Commands::Top {
            interval,
            count,
            json,
        } => top_cmd(interval, count.as_deref(), *json),
        Commands::Version { json } => version(*json),
        Commands::Addrule { rule } => addrule(rule),
        Commands::Delrule { id } => delrule(id),
        Commands::Rules { json } => rules(*json),
        Commands::Addprocess { vs, pid, tree } => addprocess(vs, pid, *tree),
        Commands::Which { pid, json } => which(pid, *json),
        Commands::Ps { vs, json } => ps(vs.as_deref(), *json),
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
            &["rules", "--json"],
            &["which", "1", "--json"],
            &["ps", "--json"],
            &["ps", "web", "--json"],
            &["top", "--json"],
        ] {
            assert!(parse(argv).is_ok(), "{argv:?}");
        }
    }

    #[test]
    fn rule_and_process_arguments() {
        match parse(&["addrule", "(fork, www1) -> (www1)"]).map(|c| c.command) {
            Ok(Commands::Addrule { rule }) => assert_eq!(rule, "(fork, www1) -> (www1)"),
            other => panic!("{other:?}"),
        }
        match parse(&["addprocess", "web", "1234", "--tree"]).map(|c| c.command) {
            Ok(Commands::Addprocess { vs, pid, tree }) => {
                assert_eq!((vs.as_str(), pid.as_str(), tree), ("web", "1234", true))
            }
            other => panic!("{other:?}"),
        }
        match parse(&["ps"]).map(|c| c.command) {
            Ok(Commands::Ps { vs, json }) => assert_eq!((vs, json), (None, false)),
            other => panic!("{other:?}"),
        }
        for argv in [
            &["addrule"][..],
            &["addrule", "(fork, a) -> (b)", "extra"],
            &["delrule"],
            &["addprocess", "web"],
            &["which"],
        ] {
            let e = parse(argv).err().map(|e| e.exit_code());
            assert_eq!(e, Some(2), "{argv:?}");
        }
    }

    #[test]
    fn top_arguments() {
        match parse(&["top"]).map(|c| c.command) {
            Ok(Commands::Top {
                interval,
                count,
                json,
            }) => assert_eq!((interval.as_str(), count, json), ("1", None, false)),
            other => panic!("{other:?}"),
        }
        match parse(&["top", "--interval", "0.5", "--count", "2", "--json"]).map(|c| c.command) {
            Ok(Commands::Top {
                interval,
                count,
                json,
            }) => assert_eq!(
                (interval.as_str(), count.as_deref(), json),
                ("0.5", Some("2"), true)
            ),
            other => panic!("{other:?}"),
        }
        let e = parse(&["top", "web"]).err().map(|e| e.exit_code());
        assert_eq!(e, Some(2), "top takes no VS");
        // Bad values: usage errors before the device is opened.
        assert!(matches!(top_cmd("0.05", None, false), Err(Error::Usage(_))));
        assert!(matches!(
            top_cmd("1", Some("0"), true),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn bad_pids_and_rule_ids_are_refused_before_opening_the_device() {
        assert!(matches!(delrule("0"), Err(Error::Usage(_))));
        assert!(matches!(delrule("x"), Err(Error::Usage(_))));
        assert!(matches!(
            addprocess("web", "0", false),
            Err(Error::Usage(_))
        ));
        assert!(matches!(which("-1", false), Err(Error::Usage(_))));
        assert_eq!(
            addrule("(forkk, www1) -> (www1)").map_err(|e| (e.exit_code(), e.to_string())),
            Err((
                2,
                "unknown event 'forkk' (expected one of: fork, exec, socket, connect, accept, \
                 unix-connect, unix-accept, unix-recv, pipe-read, msg-recv)\n  \
                 (forkk, www1) -> (www1)\n   ^^^^^"
                    .into()
            ))
        );
    }

    #[test]
    fn addrule_help_shows_the_notation() {
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("addrule")
            .map(|c| c.render_long_help().to_string());
        assert!(help.is_some_and(|h| h.contains("'keep'") && h.contains("www[1|2]")));
        let top = Cli::command().render_long_help().to_string();
        assert!(top.contains("(accept, www[1|2], req=www[2|1]) -> (www[2|1])"));
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
