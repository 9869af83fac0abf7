// SPDX-License-Identifier: GPL-2.0
//! The man page `dist/vsctl.8` and the bash, zsh and fish completions in `dist/completions/`,
//! generated from vsctl's clap definitions (clap_mangen, clap_complete) by a test: the test
//! fails when the committed files differ from what the definitions give, and
//! `VS_REGENERATE=1 cargo test -p vsctl generated` (`make generate`) rewrites them.
//! Test-only: vsctl itself does not carry the generators.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// What the page says beyond the clap definitions, in roff: the overview.
const OVERVIEW: &str = r#".PP
A virtual service (VS) is a resource context with a CPU share, a network share, a
process\-count limit and statistics. VSs form a tree under the root VS 0, which holds all
unclassified work. A child shares each attribute of its parent until it is detached for that
attribute. Classification rules bind each task to the VS it is working for, at fork, exec,
socket, connect, accept and IPC gates.
.PP
.B vsctl
drives the
.B vs
kernel module through
.IR /dev/vs .
Reads are open to every user; changes need
.BR CAP_SYS_ADMIN .
"#;

/// The configuration file section, in roff.
const CONFIGURATION: &str = r#".SH CONFIGURATION FILE
.B vsctl apply
and
.B vsctl export
use a TOML file holding the VS tree and the rule table.
.B vs.service
applies
.I /etc/vs/vs.toml
at boot and on reload.
.PP
.nf
.RS 4
rules = [
    "(fork, www1) \-> (www1)",
    "(accept, fcgi, req=*) \-> (req)",
]

[[vs]]
name = "web"
id = 10
cpu_share = 60

[[vs]]
name = "www1"
parent = "web"
net_share = 50
max_procs = 200
.RE
.fi
.PP
.B rules
is an array of rules in the notation of
.BR "vsctl addrule" ,
in evaluation order; a rule with alternatives stands for several.
Each
.B [[vs]]
table is one VS:
.TP
.B name
required; 1 to 31 characters [A\-Za\-z0\-9_.\-], starting with a letter or _.
The root is implicit and cannot be listed.
.TP
.B id
optional: 1..63 (global) or 64..2147483647 (local). Without it, an existing VS of that name
keeps its id and a new one gets the next free local id.
.TP
.B parent
optional: the name of another VS of the file, or root (the default).
.TP
.BR cpu_share ", " net_share
1..100, percent of the parent's share. Given: the VS has its own (detached) value;
left out: it inherits. The own shares drawn from one pool (those of the VSs whose parent
is in it) add up to at most 100.
.TP
.B max_procs
1..4294967295 or "unlimited"; left out: inherited.
.PP
The whole file is checked before anything changes; each problem is reported as
.IR FILE : LINE ": " FIELD ": " what .
Then
.B apply
changes only what differs: VSs and rules not in the file are removed, VSs of the file that
are missing are created, others updated; a VS whose id or parent changes is destroyed and
created again. If the module refuses a step (a VS to destroy still has tasks, a race with
another change), the steps done are undone and
.B apply
fails: the configuration is then the one it found. Deleted rules come back in their order,
with new ids.
.PP
Members (which tasks are in which VS) are not part of the file: rules are how work gets in.
.B vsctl export
writes the live state in this format, so that
.B "vsctl export | vsctl apply \-"
changes nothing, and applying a file twice changes nothing the second time.
"#;

/// Metrics, files and references, in roff.
const TRAILER: &str = r#".SH METRICS
.B "vsctl stats \-\-format prometheus"
prints every counter of every VS in Prometheus' text exposition format: one metric family
per counter (vs_processes, vs_cpu_seconds_total, vs_forks_total, vs_tx_bytes_total, ...), one
series per VS, labelled
.B vs
(the name) and
.B id
(the VSID). For node_exporter's textfile collector, write it atomically, e.g. every minute:
.PP
.nf
.RS 4
vsctl stats \-\-format prometheus >/var/lib/prometheus/node\-exporter/vs.prom.tmp &&
    mv /var/lib/prometheus/node\-exporter/vs.prom.tmp /var/lib/prometheus/node\-exporter/vs.prom
.RE
.fi
.SH FILES
.TP
.I /dev/vs
the control device of the vs module.
.TP
.I /etc/vs/vs.toml
the configuration that
.B vs.service
applies at boot and on
.BR "systemctl reload vs" .
.TP
.I vs.service
a oneshot unit: loads the module
.RB ( "modprobe vs" ),
then runs
.BR "vsctl apply /etc/vs/vs.toml" ;
reload applies the file again; stop leaves the configuration in force.
.SH SEE ALSO
.BR tc (8),
.BR systemctl (1),
.BR modprobe (8),
.BR dkms (8)
"#;

/// The page for `cmd`'s subcommand `sub`: its usage, description and options as a
/// subsection of COMMANDS (clap_mangen renders them as sections of their own).
fn subcommand(sub: &clap::Command) -> String {
    let man = clap_mangen::Man::new(sub.clone());
    let mut raw = Vec::new();
    for render in [
        clap_mangen::Man::render_synopsis_section,
        clap_mangen::Man::render_description_section,
        clap_mangen::Man::render_options_section,
    ] {
        let _ = render(&man, &mut raw);
    }
    let raw = String::from_utf8_lossy(&raw);
    let mut out = format!(".SS \"vsctl {}\"\n", sub.get_name());
    for line in raw.lines() {
        match line.strip_prefix(".SH ") {
            Some(name) if name.contains("OPTIONS") => out.push_str(".PP\nOptions:\n"),
            Some(_) => out.push_str(".PP\n"),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The man page.
pub fn man_page() -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual("System Administration")
        .title("VSCTL");
    let mut buf = Vec::new();
    let _ = man.render_title(&mut buf);
    let _ = man.render_name_section(&mut buf);
    let _ = man.render_synopsis_section(&mut buf);
    let _ = man.render_description_section(&mut buf);
    let mut page = String::from_utf8_lossy(&buf).into_owned();
    page.push_str(OVERVIEW);
    let mut buf = Vec::new();
    let _ = man.render_options_section(&mut buf);
    page.push_str(&String::from_utf8_lossy(&buf));
    page.push_str(".SH COMMANDS\n");
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        page.push_str(&subcommand(sub));
    }
    page.push_str(CONFIGURATION);
    let mut buf = Vec::new();
    let _ = man.render_extra_section(&mut buf);
    page.push_str(&String::from_utf8_lossy(&buf).replacen(".SH EXTRA", ".SH NOTES", 1));
    page.push_str(TRAILER);
    let mut buf = Vec::new();
    let _ = man.render_version_section(&mut buf);
    page.push_str(&String::from_utf8_lossy(&buf));
    page
}

/// The completion script for `shell`.
pub fn completion(shell: Shell) -> String {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "vsctl", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Every generated file, by path under `dist/`.
pub fn files() -> Vec<(&'static str, String)> {
    vec![
        ("vsctl.8", man_page()),
        ("completions/vsctl.bash", completion(Shell::Bash)),
        ("completions/_vsctl", completion(Shell::Zsh)),
        ("completions/vsctl.fish", completion(Shell::Fish)),
    ]
}

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist")
}

#[test]
fn generated_files_are_up_to_date() {
    let regenerate = std::env::var_os("VS_REGENERATE").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (path, text) in files() {
        let full = dist().join(path);
        if regenerate {
            if let Some(dir) = full.parent() {
                std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            }
            std::fs::write(&full, &text).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
        } else if std::fs::read_to_string(&full).ok().as_deref() != Some(text.as_str()) {
            stale.push(format!("dist/{path}"));
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files {stale:?}: run `make generate` (VS_REGENERATE=1 cargo test -p \
         vsctl generated) and commit them"
    );
}

#[test]
fn man_page_covers_every_command_and_the_file_format() {
    let page = man_page();
    let cmd = Cli::command();
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let heading = format!(".SS \"vsctl {}\"\n", sub.get_name());
        assert!(page.contains(&heading), "no {heading:?}");
    }
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH COMMANDS",
        ".SH CONFIGURATION FILE",
        ".SH METRICS",
        ".SH NOTES",
        ".SH FILES",
    ] {
        assert!(page.contains(section), "no {section}");
    }
    assert!(page.contains("\n.TH VSCTL 8 "), "the title");
    assert!(
        page.contains("\\-\\-dry\\-run"),
        "apply's options are listed"
    );
}

#[test]
fn completions_know_the_commands_and_formats() {
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let c = completion(shell);
        for word in ["apply", "export", "stats", "prometheus", "addrule"] {
            assert!(c.contains(word), "{shell}: no {word}");
        }
    }
}
