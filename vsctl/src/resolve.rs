// SPDX-License-Identifier: GPL-2.0
//! The VS argument of the commands: a name or a VSID. Names start with a letter or `_`, so
//! a string of digits is always an id.

use std::convert::Infallible;
use std::str::FromStr;

use vs_core::abi::{name_bytes, VsInfo, VS_ROOT};

use crate::error::Error;

/// What a VS argument designates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VsArg {
    /// A VSID; kept wide so that a number beyond `u32` reads back as typed.
    Id(u64),
    Name(String),
}

impl VsArg {
    /// The root VS.
    pub const ROOT: VsArg = VsArg::Id(VS_ROOT as u64);
}

impl FromStr for VsArg {
    type Err = Infallible;

    fn from_str(arg: &str) -> Result<Self, Infallible> {
        Ok(
            if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
                // More digits than any u64: no VS has that id either.
                VsArg::Id(arg.parse().unwrap_or(u64::MAX))
            } else {
                VsArg::Name(arg.to_string())
            },
        )
    }
}

/// The entry of VS `id` in `list`.
pub fn by_id(list: &[VsInfo], id: u32) -> Option<&VsInfo> {
    list.iter().find(|i| i.id == id)
}

/// The entry of the VS that `arg` designates, from the answer of `VS_IOC_LIST`.
pub fn find<'a>(list: &'a [VsInfo], arg: &VsArg) -> Result<&'a VsInfo, Error> {
    match arg {
        VsArg::Id(id) => u32::try_from(*id)
            .ok()
            .and_then(|id| by_id(list, id))
            .ok_or_else(|| Error::Failed(format!("no VS with id {id}"))),
        VsArg::Name(name) => list
            .iter()
            .find(|i| name_bytes(&i.name) == name.as_bytes())
            .ok_or_else(|| Error::Failed(format!("no VS named '{name}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::sample;

    fn parse(s: &str) -> VsArg {
        match s.parse() {
            Ok(a) => a,
            Err(e) => match e {},
        }
    }

    #[test]
    fn digits_are_ids_everything_else_names() {
        assert_eq!(parse("0"), VsArg::Id(0));
        assert_eq!(parse("77"), VsArg::Id(77));
        assert_eq!(parse("99999999999999999999999"), VsArg::Id(u64::MAX));
        assert_eq!(parse("www1"), VsArg::Name("www1".into()));
        assert_eq!(parse("-5"), VsArg::Name("-5".into()));
        assert_eq!(parse(""), VsArg::Name(String::new()));
    }

    #[test]
    fn finds_by_name_or_id() {
        let l = sample();
        let find = |s: &str| find(&l, &parse(s)).copied();
        assert_eq!(find("www1").map(|i| i.id), Ok(65));
        assert_eq!(find("65").map(|i| i.id), Ok(65));
        assert_eq!(find("0").map(|i| i.id), Ok(0));
        assert_eq!(find("root").map(|i| i.id), Ok(0));
        assert_eq!(
            find("www3"),
            Err(Error::Failed("no VS named 'www3'".into()))
        );
        assert_eq!(find("77"), Err(Error::Failed("no VS with id 77".into())));
        assert_eq!(
            find("4294967296"),
            Err(Error::Failed("no VS with id 4294967296".into()))
        );
        assert!(find("ww").is_err(), "no prefix matching");
    }
}
