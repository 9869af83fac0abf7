// SPDX-License-Identifier: GPL-2.0
//! The values of the command line: clap's value parsers (each returns why a value is wrong;
//! [`crate::error::from_clap`] names the argument), the attribute names, and the `set`
//! request. The rules themselves are the module's, from `vs_core::tree`.

use std::time::Duration;

use clap::error::ErrorKind;
use vs_core::abi::{
    VsAttrs, VsSet, VS_ATTR_CPU, VS_ATTR_NET, VS_ATTR_PROCS, VS_GLOBAL_MAX, VS_GLOBAL_MIN,
    VS_LOCAL_MAX, VS_LOCAL_MIN, VS_PROCS_UNLIMITED, VS_SHARE_MAX, VS_SHARE_MIN,
};
use vs_core::tree::{id_in_range, is_valid_name, set_conflict, SetConflict};

use crate::error::Error;

/// The name rule in words (`vs_core::tree::is_valid_name` is the rule): a macro, so that the
/// help text can be built from it at compile time.
macro_rules! name_rule {
    () => {
        "1-31 characters [A-Za-z0-9_.-], starting with a letter or '_'"
    };
}
pub(crate) use name_rule;

/// An attribute, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Attr {
    /// CPU share
    Cpu,
    /// Network share
    Net,
    /// Process limit
    Procs,
}

impl Attr {
    /// The attribute of a `VS_ATTR_*` index.
    pub fn of(attr: u32) -> Attr {
        match attr {
            VS_ATTR_CPU => Attr::Cpu,
            VS_ATTR_NET => Attr::Net,
            _ => Attr::Procs,
        }
    }

    /// The `VS_ATTR_*` index.
    pub fn index(self) -> u32 {
        match self {
            Attr::Cpu => VS_ATTR_CPU,
            Attr::Net => VS_ATTR_NET,
            Attr::Procs => VS_ATTR_PROCS,
        }
    }

    /// The bit in the ABI's attribute masks.
    pub fn bit(self) -> u32 {
        1 << self.index()
    }

    pub fn name(self) -> &'static str {
        match self {
            Attr::Cpu => "cpu",
            Attr::Net => "net",
            Attr::Procs => "procs",
        }
    }

    /// The option that sets this attribute's value.
    pub fn option(self) -> &'static str {
        match self {
            Attr::Cpu => "--cpu-share",
            Attr::Net => "--net-share",
            Attr::Procs => "--max-procs",
        }
    }
}

/// A VS name that follows the module's rule.
pub fn name(s: &str) -> Result<String, String> {
    if is_valid_name(s.as_bytes()) {
        Ok(s.to_string())
    } else {
        Err(concat!("names are ", name_rule!()).into())
    }
}

/// A share in percent of the parent's pool: `1..=100`, with an optional trailing `%`.
pub fn share(s: &str) -> Result<u32, String> {
    let digits = s.trim().strip_suffix('%').unwrap_or(s.trim());
    match digits.parse::<u32>() {
        Ok(v) if (VS_SHARE_MIN..=VS_SHARE_MAX).contains(&v) => Ok(v),
        _ => Err(format!("share must be {VS_SHARE_MIN}..{VS_SHARE_MAX}")),
    }
}

/// A process limit: a positive number or `unlimited`.
pub fn max_procs(s: &str) -> Result<u32, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(VS_PROCS_UNLIMITED);
    }
    match t.parse::<u32>() {
        Ok(v) if v != VS_PROCS_UNLIMITED => Ok(v),
        _ => Err(format!("must be 1..{} or 'unlimited'", u32::MAX)),
    }
}

/// An explicit VSID for a new VS.
pub fn vs_id(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(v) if id_in_range(v) => Ok(v),
        _ => Err(format!(
            "id must be {VS_GLOBAL_MIN}..{VS_GLOBAL_MAX} (global) or \
             {VS_LOCAL_MIN}..{VS_LOCAL_MAX} (local)"
        )),
    }
}

/// A process id: a positive number that fits a `pid_t`.
pub fn pid(s: &str) -> Result<libc::pid_t, String> {
    match s.trim().parse::<libc::pid_t>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err("must be a positive number".into()),
    }
}

/// Shortest and longest refresh interval of `top`, seconds.
pub const INTERVAL_MIN: f64 = 0.1;
pub const INTERVAL_MAX: f64 = 86_400.0;

/// The `--interval` of `top`: seconds, at least [`INTERVAL_MIN`].
pub fn interval(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (INTERVAL_MIN..=INTERVAL_MAX).contains(&v) => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!(
            "must be a number of seconds from {INTERVAL_MIN} to {INTERVAL_MAX}"
        )),
    }
}

/// The `--count` of `top`: a positive number of frames.
pub fn count(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err("must be a positive number".into()),
    }
}

/// A rule id, as `vsctl rules` prints it: a positive number.
pub fn rule_id(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err("must be a positive number (see 'vsctl rules')".into()),
    }
}

/// The attribute values given with `--cpu-share`, `--net-share` and `--max-procs`.
pub fn values(cpu: Option<u32>, net: Option<u32>, procs: Option<u32>) -> VsAttrs {
    [
        (VS_ATTR_CPU, cpu),
        (VS_ATTR_NET, net),
        (VS_ATTR_PROCS, procs),
    ]
    .into_iter()
    .fold(VsAttrs::default(), |attrs, (attr, v)| match v {
        Some(v) => attrs.with(attr, v),
        None => attrs,
    })
}

fn mask(attrs: &[Attr]) -> u32 {
    attrs.iter().fold(0, |m, a| m | a.bit())
}

/// The `VS_IOC_SET` request for VS `id`; refuses an empty request and one the module would
/// refuse as contradictory (`vs_core::tree::set_conflict`).
pub fn set_request(
    id: u32,
    values: VsAttrs,
    detach: &[Attr],
    attach: &[Attr],
) -> Result<VsSet, Error> {
    let attach_mask = mask(attach);
    let detach_mask = mask(detach);
    let conflict = |m: String| Error::Usage(ErrorKind::ArgumentConflict, m);
    match set_conflict(attach_mask, detach_mask, values.mask) {
        Some(SetConflict::AttachAndValue(attr)) => {
            let a = Attr::of(attr);
            return Err(conflict(format!(
                "--attach {} conflicts with {}: an attached attribute has no own value",
                a.name(),
                a.option()
            )));
        }
        Some(SetConflict::AttachAndDetach(attr)) => {
            return Err(conflict(format!(
                "--attach {0} conflicts with --detach {0}",
                Attr::of(attr).name()
            )));
        }
        None => {}
    }
    if attach_mask | detach_mask | values.mask == 0 {
        return Err(Error::Usage(
            ErrorKind::MissingRequiredArgument,
            "set: nothing to change (give --cpu-share, --net-share, --max-procs, --detach or \
             --attach)"
                .into(),
        ));
    }
    Ok(VsSet {
        id,
        attach_mask,
        detach_mask,
        _pad: 0,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vs_core::abi::VS_NAME_LEN;

    fn usage(r: Result<impl std::fmt::Debug, Error>) -> String {
        match r {
            Err(Error::Usage(_, m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn the_name_rule_in_words_matches_the_abi() {
        let longest = format!("1-{} characters", VS_NAME_LEN - 1);
        assert!(name_rule!().starts_with(&longest));
        assert!(name("_a.b-c").is_ok());
        for bad in ["a\0b", "é"] {
            assert!(name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_fill_the_mask() {
        let a = values(Some(25), None, Some(VS_PROCS_UNLIMITED));
        assert_eq!(a.mask, (1 << VS_ATTR_CPU) | (1 << VS_ATTR_PROCS));
        assert_eq!((a.cpu_share, a.max_procs), (25, 0));
        assert_eq!(values(None, None, None), VsAttrs::default());
    }

    #[test]
    fn set_requests() {
        let v = values(Some(30), None, None);
        let r = set_request(7, v, &[Attr::Net, Attr::Net], &[Attr::Procs]).unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(r.detach_mask, 1 << VS_ATTR_NET);
        assert_eq!(r.attach_mask, 1 << VS_ATTR_PROCS);
        assert_eq!(r.values.mask, 1 << VS_ATTR_CPU);
        assert_eq!(r.values.cpu_share, 30);

        assert_eq!(
            usage(set_request(7, v, &[], &[Attr::Cpu])),
            "--attach cpu conflicts with --cpu-share: an attached attribute has no own value"
        );
        assert_eq!(
            usage(set_request(
                7,
                VsAttrs::default(),
                &[Attr::Net],
                &[Attr::Net]
            )),
            "--attach net conflicts with --detach net"
        );
        assert!(usage(set_request(7, VsAttrs::default(), &[], &[])).contains("nothing to change"));
    }

    #[test]
    fn attr_bits_match_the_abi() {
        assert_eq!(Attr::Cpu.bit() | Attr::Net.bit() | Attr::Procs.bit(), 0b111);
        assert_eq!(Attr::Net.index(), VS_ATTR_NET);
        for a in [Attr::Cpu, Attr::Net, Attr::Procs] {
            assert_eq!(Attr::of(a.index()), a);
        }
    }
}
