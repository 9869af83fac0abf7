// SPDX-License-Identifier: GPL-2.0
//! The command line: clap-derive commands whose `///` lines are the help, with typed
//! arguments (each value is parsed by its `value_parser` in `args`, before anything runs).

use std::time::Duration;

use clap::{Parser, Subcommand};
use vs_core::abi::VsAttrs;

use crate::args::{self, name_rule, Attr};
use crate::resolve::VsArg;

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
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
}

/// The values that `create` and `set` can give a VS.
#[derive(clap::Args, Debug)]
pub struct Values {
    /// CPU share in percent of the parent's share, 1..100 (gives the VS its own value)
    #[arg(long, value_name = "S", value_parser = args::share)]
    pub cpu_share: Option<u32>,
    /// Network share in percent of the parent's share, 1..100 (gives the VS its own value)
    #[arg(long, value_name = "S", value_parser = args::share)]
    pub net_share: Option<u32>,
    /// Most processes in the VS and the VSs inheriting from it: a number or 'unlimited'
    #[arg(long, value_name = "N", value_parser = args::max_procs)]
    pub max_procs: Option<u32>,
}

impl Values {
    /// The values as the ABI carries them.
    pub fn attrs(&self) -> VsAttrs {
        args::values(self.cpu_share, self.net_share, self.max_procs)
    }
}

/// How `stats` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    /// A table, or one counter a line for one VS
    Text,
    /// JSON, as --json
    Json,
    /// Prometheus text exposition format
    Prometheus,
}

#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Create a VS and print its VSID
    ///
    /// The new VS inherits every attribute it is not given a value for. Without --id it gets
    /// the next free local VSID (64 and up).
    Create {
        #[arg(help = concat!("Name: ", name_rule!()), value_parser = args::name)]
        name: String,
        /// Parent VS, by name or VSID [default: root]
        #[arg(long, short, value_name = "VS")]
        parent: Option<VsArg>,
        /// VSID: 1..63 (global, cluster-wide) or 64..2147483647 (local)
        #[arg(long, value_name = "N", value_parser = args::vs_id)]
        id: Option<u32>,
        #[command(flatten)]
        values: Values,
    },
    /// Destroy a VS that has no child VSs and no member processes
    Destroy {
        /// The VS: name or VSID
        vs: VsArg,
    },
    /// Change the attributes of a VS
    ///
    /// A value (--cpu-share, --net-share, --max-procs) detaches the attribute: the VS gets its
    /// own value. --detach gives the VS its own copy of the value it inherits; --attach drops
    /// its own value so that it inherits again. The module applies attaches, then detaches,
    /// then values, all or nothing.
    Set {
        /// The VS: name or VSID
        vs: VsArg,
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
        vs: VsArg,
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
    ///
    /// --format prometheus prints them in Prometheus' text exposition format: one metric per
    /// counter (vs_forks_total, vs_cpu_seconds_total, ...), one series per VS labelled vs
    /// (the name) and id (the VSID), for node_exporter's textfile collector.
    Stats {
        /// The VS: name or VSID [default: every VS]
        vs: Option<VsArg>,
        /// Print JSON (the same as --format json)
        #[arg(long)]
        json: bool,
        /// Output format
        #[arg(long, value_enum, value_name = "FORMAT", conflicts_with = "json")]
        format: Option<StatsFormat>,
    },
    /// Bring the VSs and rules to those of a configuration file (TOML; - reads standard input)
    ///
    /// The whole file is checked first; a problem is reported with its file, line and field,
    /// and nothing is changed. Then apply changes only what differs: it creates, updates and
    /// destroys VSs and deletes and adds rules, in an order the module accepts, printing each
    /// step. If the module refuses a step, the steps done are undone and apply fails: the
    /// configuration is then the one it found. A VS whose id or parent changes is destroyed
    /// and created again. Every VS and rule not in the file is removed. Members (which tasks
    /// are in which VS) are not part of the file: rules are how work gets in, and a VS with
    /// tasks cannot be destroyed. The format is described in vsctl(8) and docs/config.md;
    /// `vsctl export` writes it.
    Apply {
        /// The configuration file, or - for standard input
        file: String,
        /// Print the steps, change nothing
        #[arg(long, short = 'n')]
        dry_run: bool,
    },
    /// Print the VSs and rules as a configuration file for `vsctl apply`
    ///
    /// Every VS but root with its id, parent and own attribute values (inherited ones are
    /// left out), and the rules in evaluation order, VSs by name. Members are not exported.
    /// `vsctl export | vsctl apply -` changes nothing.
    Export,
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
        #[arg(long, short = 'd', value_name = "SECS", default_value = "1", value_parser = args::interval)]
        interval: Duration,
        /// Stop after N frames [default: run until interrupted]
        #[arg(long, short = 'n', value_name = "N", value_parser = args::count)]
        count: Option<u64>,
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
        #[arg(value_name = "RULE_ID", value_parser = args::rule_id)]
        id: u32,
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
        vs: VsArg,
        /// The process id
        #[arg(value_parser = args::pid)]
        pid: libc::pid_t,
        /// Move the descendants of the process too
        #[arg(long)]
        tree: bool,
    },
    /// Print the VS a task belongs to: its name and VSID
    Which {
        /// The process (or thread) id
        #[arg(value_parser = args::pid)]
        pid: libc::pid_t,
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
        vs: Option<VsArg>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::addrule;
    use crate::error::{self, Error};
    use clap::CommandFactory;
    use vs_core::abi::VS_PROCS_UNLIMITED;

    fn parse(argv: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("vsctl").chain(argv.iter().copied()))
    }

    /// The one-line message and exit status of a command line a value parser refuses.
    /// (Values starting with `-` are given as `--option=-1` or after `--`, as on the shell.)
    fn refused(argv: &[&str]) -> (u8, String) {
        match parse(argv).err().as_ref().and_then(error::from_clap) {
            Some(e) => (e.exit_code(), e.message().to_string()),
            None => panic!("{argv:?} was not refused by a value parser"),
        }
    }

    fn usage(argv: &[&str]) -> String {
        let (code, msg) = refused(argv);
        assert_eq!(code, 2, "{argv:?}");
        msg
    }

    /// What `create NAME --OPTION VALUE` parses to.
    fn values(option: &str, value: &str) -> Values {
        match parse(&["create", "x", option, value]).map(|c| c.command) {
            Ok(Commands::Create { values, .. }) => values,
            other => panic!("{other:?}"),
        }
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
                assert_eq!(parent, Some(VsArg::Name("web".into())));
                assert_eq!(id, Some(7));
                assert_eq!(values.max_procs, Some(VS_PROCS_UNLIMITED));
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
                assert_eq!(vs, VsArg::Name("web".into()));
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
                assert_eq!((vs, pid, tree), (VsArg::Name("web".into()), 1234, true))
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

    /// What `top` parses to: interval, count, json.
    fn top(argv: &[&str]) -> (Duration, Option<u64>, bool) {
        match parse(argv).map(|c| c.command) {
            Ok(Commands::Top {
                interval,
                count,
                json,
            }) => (interval, count, json),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn top_arguments() {
        assert_eq!(top(&["top"]), (Duration::from_secs(1), None, false));
        assert_eq!(
            top(&["top", "--interval", "0.5", "--count", "2", "--json"]),
            (Duration::from_millis(500), Some(2), true)
        );
        let e = parse(&["top", "web"]).err().map(|e| e.exit_code());
        assert_eq!(e, Some(2), "top takes no VS");
        // Bad values: usage errors before the device is opened.
        assert!(usage(&["top", "--interval", "0.05"]).starts_with("invalid --interval"));
        assert!(usage(&["top", "-d", "0.05"]).starts_with("invalid --interval"));
        assert!(usage(&["top", "--count", "0", "--json"]).starts_with("invalid --count"));
    }

    #[test]
    fn top_interval_and_count() {
        assert_eq!(top(&["top", "-d", "1"]).0, Duration::from_secs(1));
        assert_eq!(top(&["top", "-d", "0.5"]).0, Duration::from_millis(500));
        assert_eq!(top(&["top", "-d", "0.1"]).0, Duration::from_millis(100));
        assert_eq!(top(&["top", "-d", " 2.25 "]).0, Duration::from_millis(2250));
        for bad in ["0", "0.09", "-1", "x", "", "nan", "inf", "86401", "1s"] {
            assert_eq!(
                usage(&["top", &format!("--interval={bad}")]),
                format!(
                    "invalid --interval '{bad}': must be a number of seconds from 0.1 to 86400"
                )
            );
        }
        assert_eq!(top(&["top", "-n", "1"]).1, Some(1));
        assert_eq!(top(&["top", "-n", "1000"]).1, Some(1000));
        for bad in ["0", "-2", "x", "1.5"] {
            assert_eq!(
                usage(&["top", &format!("--count={bad}")]),
                format!("invalid --count '{bad}': must be a positive number")
            );
        }
    }

    #[test]
    fn names_follow_the_module_rule() {
        for good in ["www1", "_a.b-c"] {
            assert!(parse(&["create", good]).is_ok(), "{good}");
        }
        assert!(parse(&["create", &"x".repeat(31)]).is_ok());
        assert_eq!(
            usage(&["create", "a b"]),
            "invalid name 'a b': names are 1-31 characters [A-Za-z0-9_.-], starting with a \
             letter or '_'"
        );
        for bad in ["", "1abc", "-x", "a/b", "é"] {
            assert!(
                usage(&["create", "--", bad]).starts_with("invalid name"),
                "{bad:?}"
            );
        }
        assert!(usage(&["create", &"x".repeat(32)]).contains("1-31 characters"));
    }

    #[test]
    fn shares_are_percentages() {
        assert_eq!(values("--cpu-share", "1").cpu_share, Some(1));
        assert_eq!(values("--cpu-share", "100").cpu_share, Some(100));
        assert_eq!(values("--cpu-share", "25%").cpu_share, Some(25));
        for bad in ["0", "101", "-5", "abc", "", "50%%", "4294967296"] {
            assert_eq!(
                usage(&["create", "x", &format!("--net-share={bad}")]),
                format!("invalid --net-share '{bad}': share must be 1..100")
            );
        }
    }

    #[test]
    fn max_procs_takes_numbers_or_unlimited() {
        let procs = |v| values("--max-procs", v).max_procs;
        assert_eq!(procs("unlimited"), Some(VS_PROCS_UNLIMITED));
        assert_eq!(procs("Unlimited"), Some(VS_PROCS_UNLIMITED));
        assert_eq!(procs("1"), Some(1));
        assert_eq!(procs("4294967295"), Some(u32::MAX));
        for bad in ["0", "-1", "many", "4294967296", ""] {
            assert!(
                usage(&["create", "x", &format!("--max-procs={bad}")]).contains("'unlimited'"),
                "{bad:?}"
            );
        }
        assert_eq!(
            usage(&["create", "t_v", "--max-procs", "lots"]),
            "invalid --max-procs 'lots': must be 1..4294967295 or 'unlimited'"
        );
    }

    #[test]
    fn ids_are_global_or_local() {
        let id = |v: &str| match parse(&["create", "x", "--id", v]).map(|c| c.command) {
            Ok(Commands::Create { id, .. }) => id,
            other => panic!("{other:?}"),
        };
        assert_eq!(id("1"), Some(1));
        assert_eq!(id("63"), Some(63));
        assert_eq!(id("64"), Some(64));
        assert_eq!(id("2147483647"), Some(0x7fff_ffff));
        for bad in ["0", "2147483648", "4294967295", "x", "-1"] {
            let m = usage(&["create", "x", &format!("--id={bad}")]);
            assert!(
                m.ends_with("id must be 1..63 (global) or 64..2147483647 (local)"),
                "{m}"
            );
        }
    }

    #[test]
    fn pids_and_rule_ids() {
        let pid = |v: &str| match parse(&["which", v]).map(|c| c.command) {
            Ok(Commands::Which { pid, .. }) => pid,
            other => panic!("{other:?}"),
        };
        assert_eq!(pid("1"), 1);
        assert_eq!(pid("2147483647"), 2_147_483_647);
        for bad in ["0", "-1", "2147483648", "x", ""] {
            assert_eq!(
                usage(&["which", "--", bad]),
                format!("invalid pid '{bad}': must be a positive number")
            );
        }
        let rule = |v: &str| match parse(&["delrule", v]).map(|c| c.command) {
            Ok(Commands::Delrule { id }) => id,
            other => panic!("{other:?}"),
        };
        assert_eq!(rule("7"), 7);
        assert_eq!(rule("4294967295"), u32::MAX);
        for bad in ["0", "-3", "4294967296", "r1"] {
            assert!(usage(&["delrule", "--", bad]).starts_with(&format!("invalid rule id '{bad}'")));
        }
    }

    #[test]
    fn bad_pids_and_rule_ids_are_refused_before_opening_the_device() {
        assert!(usage(&["delrule", "0"]).starts_with("invalid rule id"));
        assert!(usage(&["delrule", "x"]).starts_with("invalid rule id"));
        assert!(usage(&["addprocess", "web", "0"]).starts_with("invalid pid"));
        assert!(usage(&["which", "--json", "--", "-1"]).starts_with("invalid pid"));
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
    fn create_help_states_the_name_rule() {
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("create")
            .map(|c| c.render_help().to_string());
        assert!(help.is_some_and(|h| h.contains(concat!("Name: ", name_rule!()))));
    }

    #[test]
    fn bad_values_are_refused_before_opening_the_device() {
        // These fail in argument parsing, so they behave the same with or without /dev/vs.
        assert_eq!(
            refused(&["create", "www1", "--cpu-share", "0"]),
            (2, "invalid --cpu-share '0': share must be 1..100".into())
        );
        assert!(usage(&["create", "a b"]).starts_with("invalid name 'a b'"));
        assert!(usage(&["create", "x", "--id", "0"]).starts_with("invalid --id"));
        let none = Values {
            cpu_share: None,
            net_share: None,
            max_procs: None,
        };
        assert!(matches!(
            crate::commands::set(&VsArg::Name("web".into()), &none, &[], &[]),
            Err(Error::Usage(..))
        ));
    }
}
