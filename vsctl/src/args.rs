// SPDX-License-Identifier: GPL-2.0
//! Pure parsing of command-line values into ABI requests: names, ids, shares, limits and
//! attribute names. Problems are usage errors (exit status 2).

use std::time::Duration;

use vs_core::abi::{
    VsAttrs, VsSet, VS_ATTR_CPU, VS_ATTR_NET, VS_ATTR_PROCS, VS_GLOBAL_MAX, VS_GLOBAL_MIN,
    VS_LOCAL_MAX, VS_LOCAL_MIN, VS_NAME_LEN, VS_PROCS_UNLIMITED, VS_SHARE_MAX, VS_SHARE_MIN,
};
use vs_core::tree::{id_in_range, validate_name};

use crate::errors::Error;

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

    pub const ALL: [Attr; 3] = [Attr::Cpu, Attr::Net, Attr::Procs];
}

pub const NAME_RULE: &str =
    "names are 1-31 characters [A-Za-z0-9_.-], starting with a letter or '_'";

/// The NUL-padded name buffer for `name`, checked with the module's own rule.
pub fn name_buf(name: &str) -> Result<[u8; VS_NAME_LEN], Error> {
    let invalid = || Error::Usage(format!("invalid name '{name}': {NAME_RULE}"));
    let bytes = name.as_bytes();
    if bytes.len() >= VS_NAME_LEN || bytes.contains(&0) {
        return Err(invalid());
    }
    let mut buf = [0u8; VS_NAME_LEN];
    buf[..bytes.len()].copy_from_slice(bytes);
    validate_name(&buf).map_err(|_| invalid())?;
    Ok(buf)
}

/// A share in percent of the parent's pool: `1..=100`, with an optional trailing `%`.
pub fn parse_share(option: &str, s: &str) -> Result<u32, Error> {
    let digits = s.trim().strip_suffix('%').unwrap_or(s.trim());
    match digits.parse::<u32>() {
        Ok(v) if (VS_SHARE_MIN..=VS_SHARE_MAX).contains(&v) => Ok(v),
        _ => Err(Error::Usage(format!(
            "invalid {option} '{s}': share must be {VS_SHARE_MIN}..{VS_SHARE_MAX}"
        ))),
    }
}

/// A process limit: a positive number or `unlimited`.
pub fn parse_max_procs(s: &str) -> Result<u32, Error> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(VS_PROCS_UNLIMITED);
    }
    match t.parse::<u32>() {
        Ok(v) if v != VS_PROCS_UNLIMITED => Ok(v),
        _ => Err(Error::Usage(format!(
            "invalid --max-procs '{s}': must be 1..{} or 'unlimited'",
            u32::MAX
        ))),
    }
}

/// An explicit VSID for a new VS.
pub fn parse_id(s: &str) -> Result<u32, Error> {
    match s.trim().parse::<u32>() {
        Ok(v) if id_in_range(v) => Ok(v),
        _ => Err(Error::Usage(format!(
            "invalid --id '{s}': id must be {VS_GLOBAL_MIN}..{VS_GLOBAL_MAX} (global) or \
             {VS_LOCAL_MIN}..{VS_LOCAL_MAX} (local)"
        ))),
    }
}

/// The attribute values given with `--cpu-share`, `--net-share` and `--max-procs`.
pub fn parse_values(
    cpu: Option<&str>,
    net: Option<&str>,
    procs: Option<&str>,
) -> Result<VsAttrs, Error> {
    let mut attrs = VsAttrs::default();
    if let Some(s) = cpu {
        attrs = attrs.with(VS_ATTR_CPU, parse_share("--cpu-share", s)?);
    }
    if let Some(s) = net {
        attrs = attrs.with(VS_ATTR_NET, parse_share("--net-share", s)?);
    }
    if let Some(s) = procs {
        attrs = attrs.with(VS_ATTR_PROCS, parse_max_procs(s)?);
    }
    Ok(attrs)
}

/// A process id: a positive number that fits a `pid_t`.
pub fn parse_pid(s: &str) -> Result<u32, Error> {
    match s.trim().parse::<u32>() {
        Ok(v) if v >= 1 && v <= i32::MAX as u32 => Ok(v),
        _ => Err(Error::Usage(format!(
            "invalid pid '{s}': must be a positive number"
        ))),
    }
}

/// Shortest and longest refresh interval of `top`, seconds.
pub const INTERVAL_MIN: f64 = 0.1;
pub const INTERVAL_MAX: f64 = 86_400.0;

/// The `--interval` of `top`: seconds, at least [`INTERVAL_MIN`].
pub fn parse_interval(s: &str) -> Result<Duration, Error> {
    match s.trim().parse::<f64>() {
        Ok(v) if (INTERVAL_MIN..=INTERVAL_MAX).contains(&v) => Ok(Duration::from_secs_f64(v)),
        _ => Err(Error::Usage(format!(
            "invalid --interval '{s}': must be a number of seconds from {INTERVAL_MIN} to \
             {INTERVAL_MAX}"
        ))),
    }
}

/// The `--count` of `top`: a positive number of frames.
pub fn parse_count(s: &str) -> Result<u64, Error> {
    match s.trim().parse::<u64>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(Error::Usage(format!(
            "invalid --count '{s}': must be a positive number"
        ))),
    }
}

/// A rule id, as `vsctl rules` prints it: a positive number.
pub fn parse_rule_id(s: &str) -> Result<u32, Error> {
    match s.trim().parse::<u32>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(Error::Usage(format!(
            "invalid rule id '{s}': must be a positive number (see 'vsctl rules')"
        ))),
    }
}

fn mask(attrs: &[Attr]) -> u32 {
    attrs.iter().fold(0, |m, a| m | a.bit())
}

/// The `VS_IOC_SET` request for VS `id`; refuses an empty request and an attribute that is
/// both attached and detached or set.
pub fn set_request(
    id: u32,
    values: VsAttrs,
    detach: &[Attr],
    attach: &[Attr],
) -> Result<VsSet, Error> {
    let attach_mask = mask(attach);
    let detach_mask = mask(detach);
    for a in Attr::ALL {
        if attach_mask & a.bit() == 0 {
            continue;
        }
        if values.mask & a.bit() != 0 {
            return Err(Error::Usage(format!(
                "--attach {} conflicts with {}: an attached attribute has no own value",
                a.name(),
                a.option()
            )));
        }
        if detach_mask & a.bit() != 0 {
            return Err(Error::Usage(format!(
                "--attach {0} conflicts with --detach {0}",
                a.name()
            )));
        }
    }
    if attach_mask | detach_mask | values.mask == 0 {
        return Err(Error::Usage(
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

    fn usage(r: Result<impl std::fmt::Debug, Error>) -> String {
        match r {
            Err(Error::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn names_follow_the_module_rule() {
        let b = name_buf("www1").unwrap();
        assert_eq!(&b[..5], b"www1\0");
        assert!(name_buf("_a.b-c").is_ok());
        assert!(name_buf(&"x".repeat(31)).is_ok());
        assert_eq!(
            usage(name_buf("a b")),
            "invalid name 'a b': names are 1-31 characters [A-Za-z0-9_.-], starting with a \
             letter or '_'"
        );
        for bad in ["", "1abc", "-x", "a/b", "é", "a\0b"] {
            assert!(matches!(name_buf(bad), Err(Error::Usage(_))), "{bad:?}");
        }
        assert!(usage(name_buf(&"x".repeat(32))).contains("1-31 characters"));
    }

    #[test]
    fn shares_are_percentages() {
        assert_eq!(parse_share("--cpu-share", "1").unwrap(), 1);
        assert_eq!(parse_share("--cpu-share", "100").unwrap(), 100);
        assert_eq!(parse_share("--cpu-share", "25%").unwrap(), 25);
        for bad in ["0", "101", "-5", "abc", "", "50%%", "4294967296"] {
            let m = usage(parse_share("--net-share", bad));
            assert_eq!(
                m,
                format!("invalid --net-share '{bad}': share must be 1..100")
            );
        }
    }

    #[test]
    fn max_procs_takes_numbers_or_unlimited() {
        assert_eq!(parse_max_procs("unlimited").unwrap(), VS_PROCS_UNLIMITED);
        assert_eq!(parse_max_procs("Unlimited").unwrap(), VS_PROCS_UNLIMITED);
        assert_eq!(parse_max_procs("1").unwrap(), 1);
        assert_eq!(parse_max_procs("4294967295").unwrap(), u32::MAX);
        for bad in ["0", "-1", "many", "4294967296", ""] {
            assert!(
                usage(parse_max_procs(bad)).contains("'unlimited'"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ids_are_global_or_local() {
        assert_eq!(parse_id("1").unwrap(), 1);
        assert_eq!(parse_id("63").unwrap(), 63);
        assert_eq!(parse_id("64").unwrap(), 64);
        assert_eq!(parse_id("2147483647").unwrap(), 0x7fff_ffff);
        for bad in ["0", "2147483648", "4294967295", "x", "-1"] {
            let m = usage(parse_id(bad));
            assert!(
                m.ends_with("id must be 1..63 (global) or 64..2147483647 (local)"),
                "{m}"
            );
        }
    }

    #[test]
    fn values_fill_the_mask() {
        let a = parse_values(Some("25"), None, Some("unlimited")).unwrap();
        assert_eq!(a.mask, (1 << VS_ATTR_CPU) | (1 << VS_ATTR_PROCS));
        assert_eq!((a.cpu_share, a.max_procs), (25, 0));
        assert_eq!(parse_values(None, None, None).unwrap(), VsAttrs::default());
        assert!(parse_values(None, Some("0"), None).is_err());
    }

    #[test]
    fn set_requests() {
        let v = parse_values(Some("30"), None, None).unwrap();
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
    fn pids_and_rule_ids() {
        assert_eq!(parse_pid("1").unwrap(), 1);
        assert_eq!(parse_pid("2147483647").unwrap(), 2_147_483_647);
        for bad in ["0", "-1", "2147483648", "x", ""] {
            assert_eq!(
                usage(parse_pid(bad)),
                format!("invalid pid '{bad}': must be a positive number")
            );
        }
        assert_eq!(parse_rule_id("7").unwrap(), 7);
        assert_eq!(parse_rule_id("4294967295").unwrap(), u32::MAX);
        for bad in ["0", "-3", "4294967296", "r1"] {
            assert!(usage(parse_rule_id(bad)).starts_with(&format!("invalid rule id '{bad}'")));
        }
    }

    #[test]
    fn top_interval_and_count() {
        assert_eq!(parse_interval("1").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_interval("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_interval("0.1").unwrap(), Duration::from_millis(100));
        assert_eq!(
            parse_interval(" 2.25 ").unwrap(),
            Duration::from_millis(2250)
        );
        for bad in ["0", "0.09", "-1", "x", "", "nan", "inf", "86401", "1s"] {
            assert_eq!(
                usage(parse_interval(bad)),
                format!(
                    "invalid --interval '{bad}': must be a number of seconds from 0.1 to 86400"
                )
            );
        }
        assert_eq!(parse_count("1").unwrap(), 1);
        assert_eq!(parse_count("1000").unwrap(), 1000);
        for bad in ["0", "-2", "x", "1.5"] {
            assert_eq!(
                usage(parse_count(bad)),
                format!("invalid --count '{bad}': must be a positive number")
            );
        }
    }

    #[test]
    fn attr_bits_match_the_abi() {
        assert_eq!(Attr::Cpu.bit() | Attr::Net.bit() | Attr::Procs.bit(), 0b111);
        assert_eq!(Attr::Net.index(), VS_ATTR_NET);
    }
}
