//! The kernel glue's copy of the arming groups (src/vs_glue.h) matches vs-core's.

use vs_core::arming::{ARM_ACCEPT, ARM_FORK_LIMIT, ARM_MSG, ARM_PIPE, ARM_UNIX_RECV};

/// The value of `#define NAME (1U << n)` in the glue header.
fn glue_define(header: &str, name: &str) -> u32 {
    let line = header
        .lines()
        .find(|l| l.split_whitespace().take(2).eq(["#define", name]))
        .unwrap_or_else(|| panic!("{name} not defined in vs_glue.h"));
    let shift = line
        .split("<<")
        .nth(1)
        .and_then(|r| r.trim().trim_end_matches(')').trim().parse::<u32>().ok())
        .unwrap_or_else(|| panic!("cannot read {name}: {line}"));
    1 << shift
}

#[test]
fn glue_header_has_the_same_groups() {
    let header = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../src/vs_glue.h"))
        .expect("src/vs_glue.h");
    for (name, value) in [
        ("VS_ARM_FORK_LIMIT", ARM_FORK_LIMIT),
        ("VS_ARM_PIPE", ARM_PIPE),
        ("VS_ARM_MSG", ARM_MSG),
        ("VS_ARM_UNIX_RECV", ARM_UNIX_RECV),
        ("VS_ARM_ACCEPT", ARM_ACCEPT),
    ] {
        assert_eq!(glue_define(&header, name), value, "{name}");
    }
}
