// SPDX-License-Identifier: GPL-2.0
//! One function per command: open the device, ask, and render the answer (`output`) or
//! explain the failure (`explain`). Each returns what goes to standard output.

use serde_json::Value;
use vs_client::Device;
use vs_core::abi::{name_bytes, VsInfo, VsVersion, VS_ID_AUTO, VS_ROOT};
use vs_core::rule_parse::parse_rule;

use crate::args::{self, Attr};
use crate::cli::{StatsFormat, Values};
use crate::error::Error;
use crate::explain::{self, CreateCtx};
use crate::output::{self, Member};
use crate::prometheus;
use crate::resolve::{self, VsArg};

/// Open the device and check that it speaks our ABI: done once by every command.
pub fn open() -> Result<(Device, VsVersion), Error> {
    let dev = Device::open().map_err(explain::open_failed)?;
    let version = dev.version().map_err(explain::open_failed)?;
    explain::check_abi(&version)?;
    Ok((dev, version))
}

pub fn list(dev: &Device) -> Result<Vec<VsInfo>, Error> {
    dev.list().map_err(explain::read_failed)
}

fn json(v: &Value) -> Result<String, Error> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| Error::Failed(format!("json: {e}")))
}

pub fn create(
    name: &str,
    parent: Option<&VsArg>,
    id: Option<u32>,
    values: &Values,
) -> Result<String, Error> {
    let attrs = values.attrs();
    let (dev, version) = open()?;
    let vss = list(&dev)?;
    let parent = *resolve::find(&vss, parent.unwrap_or(&VsArg::ROOT))?;
    match dev.create(name, parent.id, id.unwrap_or(VS_ID_AUTO), attrs) {
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
            Err(explain::create_failed(e.errno, &ctx))
        }
    }
}

pub fn destroy(vs: &VsArg) -> Result<String, Error> {
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    let target = resolve::find(&vss, vs)?;
    if target.id == VS_ROOT {
        return Err(explain::destroy_root());
    }
    dev.destroy(target.id)
        .map_err(|e| explain::destroy_failed(e.errno, target))?;
    Ok(String::new())
}

pub fn set(vs: &VsArg, values: &Values, detach: &[Attr], attach: &[Attr]) -> Result<String, Error> {
    let mut req = args::set_request(0, values.attrs(), detach, attach)?;
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    let target = *resolve::find(&vss, vs)?;
    req.id = target.id;
    match dev.set(req.id, req.attach_mask, req.detach_mask, req.values) {
        Ok(()) => Ok(String::new()),
        Err(e) => {
            let fresh = dev.list().unwrap_or(vss);
            Err(explain::set_failed(e.errno, &target, &req, &fresh))
        }
    }
}

pub fn show(vs: &VsArg, as_json: bool) -> Result<String, Error> {
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    let target = resolve::find(&vss, vs)?;
    let info = dev
        .get(target.id)
        .map_err(|e| explain::get_failed(e, target))?;
    if as_json {
        json(&output::vs_json(&info, &vss))
    } else {
        Ok(output::show_text(&info, &vss))
    }
}

pub fn list_cmd(as_json: bool) -> Result<String, Error> {
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    if as_json {
        json(&output::list_json(&vss))
    } else {
        Ok(output::list_text(&vss))
    }
}

pub fn stats(vs: Option<&VsArg>, format: StatsFormat) -> Result<String, Error> {
    let as_json = format == StatsFormat::Json;
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    match vs {
        Some(vs) => {
            let target = resolve::find(&vss, vs)?;
            let info = dev
                .get(target.id)
                .map_err(|e| explain::get_failed(e, target))?;
            if format == StatsFormat::Prometheus {
                Ok(prometheus::exposition(&[info]))
            } else if as_json {
                json(&output::stats_entry_json(&info))
            } else {
                Ok(output::stats_text(&info))
            }
        }
        None if format == StatsFormat::Prometheus => Ok(prometheus::exposition(&vss)),
        None if as_json => json(&output::stats_all_json(&vss)),
        None => Ok(output::stats_table(&vss)),
    }
}

pub fn version(as_json: bool) -> Result<String, Error> {
    let (_, v) = open()?;
    if as_json {
        json(&output::version_json(&v))
    } else {
        Ok(output::version_text(&v))
    }
}

/// A rule that does not parse: a usage error, with the offending part underlined.
fn bad_rule(rule: &str) -> impl Fn(vs_core::rule_parse::ParseError) -> Error + '_ {
    move |e| Error::Usage(clap::error::ErrorKind::ValueValidation, e.render(rule))
}

pub fn addrule(rule: &str) -> Result<String, Error> {
    // Syntax first, with every name taken as known: a typo is reported even without vs.ko.
    parse_rule(rule, |_| Some(VS_ROOT)).map_err(bad_rule(rule))?;
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    let rules = parse_rule(rule, |name| {
        vss.iter()
            .find(|i| name_bytes(&i.name) == name.as_bytes())
            .map(|i| i.id)
    })
    .map_err(bad_rule(rule))?;
    match dev.add_rules(&rules) {
        Ok(first) => Ok((0..rules.len() as u32)
            .map(|i| format!("{}\n", first.wrapping_add(i)))
            .collect()),
        Err(e) => {
            let fresh = dev.list().unwrap_or(vss);
            Err(explain::addrule_failed(e.errno, &rules, &fresh))
        }
    }
}

pub fn delrule(id: u32) -> Result<String, Error> {
    let (dev, _) = open()?;
    dev.del_rule(id)
        .map_err(|e| explain::delrule_failed(e.errno, id))?;
    Ok(String::new())
}

pub fn rules(as_json: bool) -> Result<String, Error> {
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    let rules = dev.rules().map_err(explain::read_failed)?;
    if as_json {
        json(&output::rules_json(&rules, &vss))
    } else {
        Ok(output::rules_table(&rules, &vss))
    }
}

pub fn addprocess(vs: &VsArg, pid: libc::pid_t, tree: bool) -> Result<String, Error> {
    let (dev, _) = open()?;
    let vss = list(&dev)?;
    let target = *resolve::find(&vss, vs)?;
    match dev.add_process(target.id, pid, tree) {
        Ok(moved) => Ok(format!("{moved}\n")),
        Err(e) => {
            let fresh = dev.list().unwrap_or(vss);
            Err(explain::addprocess_failed(e.errno, pid, &target, &fresh))
        }
    }
}

pub fn which(pid: libc::pid_t, as_json: bool) -> Result<String, Error> {
    let (dev, _) = open()?;
    let id = dev.which(pid).map_err(|e| explain::which_failed(e, pid))?;
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

pub fn ps(vs: Option<&VsArg>, as_json: bool) -> Result<String, Error> {
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
        let pids = match dev.members(target.id) {
            Ok(pids) => pids,
            // Destroyed since the list was read: it has no members any more.
            Err(e) if e.errno == libc::ENOENT && vs.is_none() => continue,
            Err(e) => return Err(explain::get_failed(e, target)),
        };
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
