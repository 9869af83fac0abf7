//! The rule notation: examples of every form and every error, and a property test that
//! `format_rule` then `parse_rule` gives the rule back.

use proptest::prelude::*;
use vs_core::abi::*;
use vs_core::rule_parse::{format_rule, parse_rule, ParseError};

/// The VSs of the examples: www1 65, www2 66, fcgi 67, web 64, db1..db3 71..73, and two VSs
/// whose names are target keywords.
const NAMES: &[(&str, u32)] = &[
    ("web", 64),
    ("www1", 65),
    ("www2", 66),
    ("fcgi", 67),
    ("db1", 71),
    ("db2", 72),
    ("db3", 73),
    ("keep", 80),
    ("req", 81),
    ("g5", 5),
];

fn resolve(name: &str) -> Option<u32> {
    NAMES.iter().find(|(n, _)| *n == name).map(|&(_, id)| id)
}

fn name_of(id: u32) -> Option<String> {
    NAMES
        .iter()
        .find(|&&(_, i)| i == id)
        .map(|(n, _)| n.to_string())
}

fn parse(text: &str) -> Result<Vec<VsRule>, ParseError> {
    parse_rule(text, resolve)
}

fn rule(event: u32, cur: u32, req: u32, target: u32) -> VsRule {
    VsRule::new(event, cur, req, target)
}

fn path(p: &str) -> [u8; VS_PATH_LEN] {
    let mut b = [0u8; VS_PATH_LEN];
    b[..p.len()].copy_from_slice(p.as_bytes());
    b
}

/// The error of `text`, checked to point at `token` (the first occurrence of it at or after
/// byte `from`).
fn error_at(text: &str, token: &str, from: usize) -> String {
    let e = match parse(text) {
        Err(e) => e,
        Ok(r) => panic!("{text:?} parsed: {r:?}"),
    };
    let pos = text[from..].find(token).map(|i| i + from);
    assert_eq!(
        (Some(e.pos), e.len),
        (pos, token.len()),
        "{text:?}: {e:?} should point at {token:?}"
    );
    e.msg
}

fn err(text: &str, token: &str) -> String {
    error_at(text, token, 0)
}

#[test]
fn the_papers_examples() {
    assert_eq!(
        parse("(fork, www1) -> (www1)"),
        Ok(vec![rule(VS_EV_FORK, 65, VS_ANY, 65)])
    );
    assert_eq!(
        parse("(accept, fcgi, req=www2) -> (www2)"),
        Ok(vec![rule(VS_EV_ACCEPT, 67, 66, 66)])
    );
    assert_eq!(
        parse("(accept, www[1|2], req=www[2|1]) -> (www[2|1])"),
        Ok(vec![
            rule(VS_EV_ACCEPT, 65, 66, 66),
            rule(VS_EV_ACCEPT, 66, 65, 65)
        ])
    );
    let exec = parse("(exec, *, path=/usr/sbin/nginx) -> (web)");
    assert_eq!(
        exec,
        Ok(vec![VsRule {
            path: path("/usr/sbin/nginx"),
            ..rule(VS_EV_EXEC, VS_ANY, VS_ANY, 64)
        }])
    );
}

#[test]
fn every_event_by_name() {
    for (ev, name) in VS_EV_NAMES.iter().enumerate().skip(1) {
        let r = parse(&format!("({name}, web) -> (keep)"));
        assert_eq!(
            r,
            Ok(vec![rule(ev as u32, 64, VS_ANY, VS_TARGET_KEEP)]),
            "{name}"
        );
    }
}

#[test]
fn targets_ids_and_wildcards() {
    assert_eq!(
        parse("(unix-recv, *, req=*) -> (req)"),
        Ok(vec![rule(VS_EV_UNIX_RECV, VS_ANY, VS_ANY, VS_TARGET_REQ)])
    );
    assert_eq!(
        parse("(pipe-read, 0, req=64) -> (keep)"),
        Ok(vec![rule(VS_EV_PIPE_READ, 0, 64, VS_TARGET_KEEP)])
    );
    // Numbers are ids, without a lookup (the kernel checks that they exist).
    assert_eq!(
        parse("(fork, 2147483647) -> (0)"),
        Ok(vec![rule(VS_EV_FORK, VS_LOCAL_MAX, VS_ANY, 0)])
    );
    // A VS named like a keyword is a VS as the task's VS, a keyword as the target.
    assert_eq!(
        parse("(msg-recv, keep, req=req) -> (req)"),
        Ok(vec![rule(VS_EV_MSG_RECV, 80, 81, VS_TARGET_REQ)])
    );
    assert_eq!(
        parse("(fork, g5) -> (80)"),
        Ok(vec![rule(VS_EV_FORK, 5, VS_ANY, 80)])
    );
}

#[test]
fn blanks_are_free_around_tokens() {
    let want = Ok(vec![rule(VS_EV_ACCEPT, 67, 66, VS_TARGET_REQ)]);
    for text in [
        "(accept,fcgi,req=www2)->(req)",
        "  ( accept ,\tfcgi , req = www2 )  ->  ( req )  ",
        "(accept,\nfcgi,\n req=www2)\n->\n(req)\n",
    ] {
        assert_eq!(parse(text), want, "{text:?}");
    }
}

#[test]
fn options_in_any_order() {
    let r = parse("(exec, www1, path=/bin/sh) -> (keep)");
    assert_eq!(
        r,
        Ok(vec![VsRule {
            path: path("/bin/sh"),
            ..rule(VS_EV_EXEC, 65, VS_ANY, VS_TARGET_KEEP)
        }])
    );
    assert_eq!(
        parse("(unix-accept, fcgi, req=[www1|www2]) -> (www[1|2])"),
        Ok(vec![
            rule(VS_EV_UNIX_ACCEPT, 67, 65, 65),
            rule(VS_EV_UNIX_ACCEPT, 67, 66, 66)
        ])
    );
}

#[test]
fn paths_are_literal() {
    // '[', '|', '(' and '=' are ordinary in paths: /usr/bin/[ is a real program. Blanks, ','
    // and ')' end a path.
    for p in ["/usr/bin/[", "/a|b", "/x(1", "/k=v", "/", "/a]b[c"] {
        let r = parse(&format!("(exec, *, path={p}) -> (web)"));
        assert_eq!(r.map(|v| v[0].path), Ok(path(p)), "{p}");
    }
    let longest = format!("/{}", "a".repeat(126));
    let r = parse(&format!("(exec, *, path={longest}) -> (web)"));
    assert_eq!(r.map(|v| v[0].path), Ok(path(&longest)));
}

#[test]
fn alternatives_expand_pairwise() {
    // One group: the other tokens repeat.
    assert_eq!(
        parse("(fork, [www1|www2|fcgi]) -> (web)"),
        Ok(vec![
            rule(VS_EV_FORK, 65, VS_ANY, 64),
            rule(VS_EV_FORK, 66, VS_ANY, 64),
            rule(VS_EV_FORK, 67, VS_ANY, 64),
        ])
    );
    // Groups in the middle, with a suffix, with ids and keywords.
    assert_eq!(
        parse("(accept, db[1|2|3], req=[*|64|fcgi]) -> ([keep|req|db3])"),
        Ok(vec![
            rule(VS_EV_ACCEPT, 71, VS_ANY, VS_TARGET_KEEP),
            rule(VS_EV_ACCEPT, 72, 64, VS_TARGET_REQ),
            rule(VS_EV_ACCEPT, 73, 67, 73),
        ])
    );
    assert_eq!(
        parse("(fork, w[ww1|ww2]) -> (keep)").map(|v| v.len()),
        Ok(2)
    );
    // A group of one is a group: it does not pair with a group of two.
    assert!(parse("(fork, www[1]) -> (www[1|2])").is_err());
    assert_eq!(
        parse("(fork, www[1]) -> (web)"),
        Ok(vec![rule(VS_EV_FORK, 65, VS_ANY, 64)])
    );
}

#[test]
fn alternatives_must_pair_up() {
    let t = "(accept, www[1|2], req=db[1|2|3]) -> (web)";
    assert_eq!(
        err(t, "db[1|2|3]"),
        "alternatives do not pair up: 'www[1|2]' has 2, 'db[1|2|3]' has 3"
    );
    let t = "(accept, www[1|2], req=fcgi) -> ([web|www1|www2])";
    assert_eq!(
        err(t, "[web|www1|www2]"),
        "alternatives do not pair up: 'www[1|2]' has 2, '[web|www1|www2]' has 3"
    );
}

#[test]
fn malformed_alternatives() {
    assert_eq!(err("(fork, www[1|2) -> (web)", "["), "'[' without ']'");
    assert_eq!(err("(fork, www1]) -> (web)", "]"), "']' without '['");
    assert_eq!(
        err("(fork, www1|2) -> (web)", "|"),
        "'|' outside of a [..|..] group"
    );
    assert_eq!(
        error_at("(fork, w[w|x]w[1|2]) -> (web)", "[", 10),
        "only one group of alternatives per VS"
    );
    assert_eq!(
        error_at("(fork, w[w[1|2]]) -> (web)", "[", 9),
        "groups of alternatives do not nest"
    );
    assert_eq!(
        err("(fork, www[1|]) -> (web)", "www[1|]"),
        "empty alternative in 'www[1|]'"
    );
    assert_eq!(
        err("(fork, []) -> (web)", "[]"),
        "empty alternative in '[]'"
    );
}

#[test]
fn unknown_event() {
    let m = err("(forkk, www1) -> (www1)", "forkk");
    assert_eq!(
        m,
        "unknown event 'forkk' (expected one of: fork, exec, socket, connect, accept, \
         unix-connect, unix-accept, unix-recv, pipe-read, msg-recv)"
    );
    assert!(err("(Fork, www1) -> (www1)", "Fork").starts_with("unknown event 'Fork'"));
    assert!(err("(, www1) -> (www1)", ",").starts_with("expected an event (one of: fork,"));
}

#[test]
fn unknown_vs() {
    assert_eq!(err("(fork, www3) -> (www1)", "www3"), "no VS named 'www3'");
    assert_eq!(
        err("(accept, fcgi, req=www3) -> (www1)", "www3"),
        "no VS named 'www3'"
    );
    assert_eq!(err("(fork, www1) -> (nope)", "nope"), "no VS named 'nope'");
    // The whole token is marked; the message names the alternative.
    assert_eq!(
        err("(fork, www[1|3]) -> (www[1|2])", "www[1|3]"),
        "no VS named 'www3'"
    );
    assert_eq!(
        err("(fork, 2147483648) -> (web)", "2147483648"),
        "VS id 2147483648 is out of range (0..2147483647)"
    );
    assert_eq!(
        err(
            "(fork, web) -> (99999999999999999999)",
            "99999999999999999999"
        ),
        "VS id 99999999999999999999 is out of range (0..2147483647)"
    );
}

#[test]
fn req_only_with_a_requester() {
    let req_events = "accept, unix-accept, unix-recv, pipe-read, msg-recv";
    assert_eq!(
        err("(fork, www1, req=www2) -> (www2)", "req=www2"),
        format!("req= is only valid for {req_events}")
    );
    assert_eq!(
        err("(connect, www1, req = www2 ) -> (www2)", "req = www2"),
        format!("req= is only valid for {req_events}")
    );
    assert_eq!(
        err("(fork, www1) -> (req)", "req"),
        format!("target 'req' needs an event with a requester ({req_events})")
    );
    assert_eq!(
        err("(exec, www1) -> ([keep|req])", "[keep|req]"),
        format!("target 'req' needs an event with a requester ({req_events})")
    );
    assert_eq!(
        error_at("(accept, www1, req=www2, req=fcgi) -> (req)", "req=fcgi", 0),
        "req= given twice"
    );
    assert_eq!(
        err("(accept, www1, req) -> (req)", ")"),
        "expected '=' after 'req'"
    );
    assert_eq!(
        error_at("(accept, www1, req=) -> (req)", ")", 0),
        "expected a VS after 'req='"
    );
}

#[test]
fn path_only_for_exec() {
    assert_eq!(
        err("(fork, *, path=/bin/sh) -> (web)", "path=/bin/sh"),
        "path= is only valid for exec"
    );
    assert_eq!(
        err("(exec, *, path=bin/sh) -> (web)", "bin/sh"),
        "path must be absolute (start with '/')"
    );
    let long = format!("/{}", "a".repeat(127));
    assert_eq!(
        err(&format!("(exec, *, path={long}) -> (web)"), &long),
        "path is longer than 127 bytes"
    );
    assert_eq!(
        err("(exec, *, path=) -> (web)", ")"),
        "expected a path after 'path='"
    );
    assert_eq!(
        err("(exec, *, path=/a\0b) -> (web)", "/a\0b"),
        "path contains a NUL byte"
    );
    assert_eq!(
        err("(exec, *, path=/a, path=/b) -> (web)", "path=/b"),
        "path= given twice"
    );
    // A blank ends the path: what follows is not a ',' or ')'.
    assert_eq!(
        err("(exec, *, path=/my prog) -> (web)", "prog"),
        "expected ',' or ')'"
    );
}

#[test]
fn unknown_option() {
    assert_eq!(
        err("(accept, www1, foo=bar) -> (web)", "foo"),
        "unknown option 'foo' (expected req=VS or path=PATH)"
    );
    assert_eq!(
        err("(accept, www1, ) -> (web)", ")"),
        "expected an option (req=VS or path=PATH) after ','"
    );
    // Options come after the task's VS.
    assert_eq!(
        err("(accept, req=www2) -> (www2)", "req=www2"),
        "expected the VS of the task (a name, an id or '*') before the option 'req=www2'"
    );
}

#[test]
fn punctuation() {
    assert_eq!(
        err("", ""),
        "empty rule: expected '(EVENT, VS) -> (TARGET)'"
    );
    assert_eq!(
        error_at("   ", "", 3),
        "empty rule: expected '(EVENT, VS) -> (TARGET)'"
    );
    assert!(err("fork, www1) -> (www1)", "fork").starts_with("expected '(' to start"));
    assert_eq!(
        err("(fork) -> (www1)", ")"),
        "expected ',' and the VS after the event"
    );
    assert_eq!(
        err("(fork, ) -> (www1)", ")"),
        "expected the VS of the task (a name, an id or '*')"
    );
    assert_eq!(
        err("(fork, www1 www2) -> (www1)", "www2"),
        "expected ',' or ')'"
    );
    assert_eq!(err("(fork, www1 -> (www1)", "->"), "expected ',' or ')'");
    assert_eq!(
        err("(fork, www1) => (www1)", "=>"),
        "expected '->' between the two parts of the rule"
    );
    assert_eq!(
        err("(fork, www1) - > (www1)", "-"),
        "expected '->' between the two parts of the rule"
    );
    assert_eq!(
        error_at("(fork, www1) -> www1", "www1", 13),
        "expected '(' before the target"
    );
    assert_eq!(
        error_at("(fork, www1) -> ()", ")", 17),
        "expected the target (a name, an id, 'req' or 'keep')"
    );
    let t = "(fork, www1) -> (www1";
    let e = parse(t).err();
    assert_eq!(
        e,
        Some(ParseError {
            pos: t.len(),
            len: 0,
            msg: "expected ')'".into()
        })
    );
    assert_eq!(err("(fork, www1) -> (www1 www2)", "www2"), "expected ')'");
    assert_eq!(
        err("(fork, www1) -> (www1) extra (x)", "extra (x)"),
        "trailing text after rule"
    );
    assert_eq!(
        err("(fork, www1) -> (*)", "*"),
        "the target cannot be '*' (use 'keep' to stay, 'req' to join the requester's VS)"
    );
}

#[test]
fn names_are_resolved_only_when_needed() {
    let mut asked = Vec::new();
    let r = parse_rule("(accept, *, req=7) -> ([www1|keep])", |n| {
        asked.push(n.to_string());
        resolve(n)
    });
    assert_eq!(r.map(|v| v.len()), Ok(2));
    assert_eq!(asked, ["www1"], "no lookup for '*', ids or keywords");
}

#[test]
fn render_points_at_the_token() {
    let render = |t: &str| parse(t).err().map(|e| e.render(t));
    let caret = |col: usize, n: usize| format!("  {}{}", " ".repeat(col), "^".repeat(n));
    let t = "(accept, www[1|2], req=db[1|2|3]) -> (web)";
    assert_eq!(
        render(t),
        Some(format!(
            "alternatives do not pair up: 'www[1|2]' has 2, 'db[1|2|3]' has 3\n  {t}\n{}",
            caret(23, 9)
        ))
    );
    // At the end of the text: one caret just past it.
    let t = "(fork, www1) -> (www1";
    assert_eq!(
        render(t),
        Some(format!("expected ')'\n  {t}\n{}", caret(21, 1)))
    );
    // Newlines and tabs print as blanks so that the carets stay under the token.
    let t = "(fork,\n\twww3) -> (www1)";
    assert_eq!(
        render(t),
        Some(format!(
            "no VS named 'www3'\n  (fork,  www3) -> (www1)\n{}",
            caret(8, 4)
        ))
    );
    // Columns count characters, not bytes.
    let t = "(fork, wéé) -> (www1)";
    assert_eq!(
        render(t),
        Some(format!("no VS named 'wéé'\n  {t}\n{}", caret(7, 3)))
    );
    let t = "(fork, www1) -> (www1)";
    let odd = ParseError {
        pos: 1000,
        len: 5,
        msg: "x".into(),
    };
    assert!(odd
        .render(t)
        .ends_with(&format!("{}^", " ".repeat(2 + t.len()))));
    assert_eq!(odd.to_string(), "x");
}

#[test]
fn format_examples() {
    let f = |r: &VsRule| format_rule(r, name_of);
    assert_eq!(
        f(&rule(VS_EV_FORK, 65, VS_ANY, 65)),
        "(fork, www1) -> (www1)"
    );
    assert_eq!(
        f(&rule(VS_EV_ACCEPT, 67, 66, VS_TARGET_REQ)),
        "(accept, fcgi, req=www2) -> (req)"
    );
    assert_eq!(
        f(&VsRule {
            path: path("/usr/sbin/nginx"),
            ..rule(VS_EV_EXEC, VS_ANY, VS_ANY, VS_TARGET_KEEP)
        }),
        "(exec, *, path=/usr/sbin/nginx) -> (keep)"
    );
    // Unknown VSs by id; VSs named like keywords by id as targets only.
    assert_eq!(f(&rule(VS_EV_FORK, 99, VS_ANY, 0)), "(fork, 99) -> (0)");
    assert_eq!(
        f(&rule(VS_EV_MSG_RECV, 80, 81, 80)),
        "(msg-recv, keep, req=req) -> (80)"
    );
    assert_eq!(
        format_rule(&rule(VS_EV_FORK, 65, VS_ANY, 66), |_| Some(
            "bad name".into()
        )),
        "(fork, 65) -> (66)"
    );
    assert_eq!(
        format_rule(&rule(0, 65, VS_ANY, 66), |_| None),
        "(event-0, 65) -> (66)"
    );
}

/// A VS id: one with a name, or any valid id (most without a name).
fn any_vs() -> impl Strategy<Value = u32> {
    prop_oneof![
        proptest::sample::select(NAMES.iter().map(|&(_, id)| id).collect::<Vec<_>>()),
        0..=VS_LOCAL_MAX,
    ]
}

fn any_rule() -> impl Strategy<Value = VsRule> {
    (
        1..=VS_EV_MAX,
        prop_oneof![Just(VS_ANY), any_vs()],
        prop_oneof![Just(VS_ANY), any_vs()],
        prop_oneof![Just(VS_TARGET_REQ), Just(VS_TARGET_KEEP), any_vs()],
        proptest::option::of("/[A-Za-z0-9_./(\\[\\]|=+*-]{0,126}"),
    )
        .prop_map(|(event, cur, req, target, p)| {
            let has_req = vs_event_has_req(event);
            VsRule {
                event,
                cur,
                req: if has_req { req } else { VS_ANY },
                target: if target == VS_TARGET_REQ && !has_req {
                    VS_TARGET_KEEP
                } else {
                    target
                },
                path: match p {
                    Some(p) if event == VS_EV_EXEC => path(&p),
                    _ => [0; VS_PATH_LEN],
                },
                ..VsRule::default()
            }
        })
}

proptest! {
    #[test]
    fn format_then_parse_gives_the_rule_back(r in any_rule()) {
        let text = format_rule(&r, name_of);
        prop_assert_eq!(parse(&text), Ok(vec![r]), "{}", text);
        // The same with ids only.
        let text = format_rule(&r, |_| None);
        prop_assert_eq!(parse_rule(&text, |_| None), Ok(vec![r]), "{}", text);
    }

    #[test]
    fn parse_never_panics_and_errors_point_inside(text in "[ -~\t\né]{0,60}") {
        if let Err(e) = parse(&text) {
            prop_assert!(e.pos <= text.len() && e.pos + e.len <= text.len(), "{:?}", e);
            prop_assert!(text.is_char_boundary(e.pos) && text.is_char_boundary(e.pos + e.len));
            let r = e.render(&text);
            prop_assert!(r.lines().count() == 3 && r.ends_with('^'), "{}", r);
        }
    }

    #[test]
    fn near_misses_never_panic(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("("), Just(")"), Just(","), Just("->"), Just(" "), Just("fork"),
                Just("accept"), Just("exec"), Just("www[1|2]"), Just("db[1|2|3]"), Just("*"),
                Just("req="), Just("path="), Just("/bin/sh"), Just("keep"), Just("req"),
                Just("www1"), Just("["), Just("|"), Just("]"), Just("="), Just("65"),
            ],
            0..16,
        )
    ) {
        let text: String = parts.concat();
        match parse(&text) {
            Ok(rules) => prop_assert!(!rules.is_empty()),
            Err(e) => prop_assert!(e.pos + e.len <= text.len(), "{:?}", e),
        }
    }
}
