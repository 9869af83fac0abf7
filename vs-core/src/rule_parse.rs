// SPDX-License-Identifier: GPL-2.0
//! The rule notation of the paper, parsed into [`VsRule`]s and printed back.
//!
//! Userspace only (cargo feature `parse`): it allocates, so the kernel module never compiles
//! this file.
//!
//! ```text
//! rule    := '(' event ',' vs [',' opt]* ')' '->' '(' target ')'
//! event   := fork | exec | socket | connect | accept | unix-connect | unix-accept
//!          | unix-recv | pipe-read | msg-recv
//! vs      := '*' | NAME | VSID
//! opt     := 'req=' vs          events with a requester only
//!          | 'path=' PATH       exec only: absolute, 1..127 bytes, no blanks, ',' or ')'
//! target  := NAME | VSID | 'req' | 'keep'
//! ```
//!
//! Blanks are free around tokens. A VS token may hold one group of alternatives, as in
//! `www[1|2]` or `[www1|www2]`; every token with a group must have as many alternatives, and
//! the rule stands for as many rules, the i-th alternatives of all tokens taken together:
//! `(accept, www[1|2], req=www[2|1]) -> (www[2|1])` is `(accept, www1, req=www2) -> (www2)`
//! and `(accept, www2, req=www1) -> (www1)`. Paths are taken literally (`/usr/bin/[` is one).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::abi::{
    vs_event_has_req, VsRule, VS_ANY, VS_EV_EXEC, VS_EV_MAX, VS_EV_NAMES, VS_LOCAL_MAX,
    VS_PATH_LEN, VS_TARGET_KEEP, VS_TARGET_REQ,
};
use crate::tree::is_valid_name;

/// A rule that does not parse: what is wrong, and the byte span of the offending token in the
/// rule text (`len` 0 at the end of the text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub pos: usize,
    pub len: usize,
    pub msg: String,
}

impl ParseError {
    fn new(pos: usize, len: usize, msg: impl Into<String>) -> Self {
        ParseError {
            pos,
            len,
            msg: msg.into(),
        }
    }

    /// The message, then the rule text and a line of carets under the offending token, both
    /// indented by two blanks:
    ///
    /// ```text
    /// no VS named 'www3'
    ///   (fork, www3) -> (www1)
    ///          ^^^^
    /// ```
    pub fn render(&self, text: &str) -> String {
        let mut pos = self.pos.min(text.len());
        while !text.is_char_boundary(pos) {
            pos -= 1;
        }
        let mut end = pos.saturating_add(self.len).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        // One character of output per character of input, so that the carets line up.
        let shown: String = text
            .chars()
            .map(|c| {
                if c.is_whitespace() || c.is_control() {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        let col = text[..pos].chars().count();
        let width = text[pos..end].chars().count().max(1);
        format!(
            "{}\n  {}\n  {}{}",
            self.msg,
            shown.trim_end(),
            " ".repeat(col),
            "^".repeat(width)
        )
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl core::error::Error for ParseError {}

/// The events, comma-separated, for messages.
fn event_list() -> String {
    VS_EV_NAMES[1..].join(", ")
}

/// The events that have a requester, comma-separated, for messages.
fn req_event_list() -> String {
    (1..=VS_EV_MAX)
        .filter(|&ev| vs_event_has_req(ev))
        .map(|ev| VS_EV_NAMES[ev as usize])
        .collect::<Vec<_>>()
        .join(", ")
}

/// Blanks and the punctuation of the notation end a word.
fn is_delim(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b',' | b'(' | b')')
}

/// A VS token as written, with its alternatives spelled out (one if it has no group).
struct Token<'a> {
    pos: usize,
    text: &'a str,
    alts: Vec<String>,
}

impl Token<'_> {
    fn error(&self, msg: impl Into<String>) -> ParseError {
        ParseError::new(self.pos, self.text.len(), msg)
    }
}

/// The first token with a group of alternatives: the one the others must pair up with.
struct Group {
    count: usize,
    token: String,
}

/// Where a VS token stands, which decides what it may be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Cur,
    Req,
    Target,
}

struct Parser<'a, F> {
    text: &'a str,
    pos: usize,
    resolve: F,
    group: Option<Group>,
}

impl<'a, F: FnMut(&str) -> Option<u32>> Parser<'a, F> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// The longest run of bytes from the cursor not matching `stop`; moves past it.
    fn word(&mut self, stop: impl Fn(u8) -> bool) -> (usize, &'a str) {
        let start = self.pos;
        while self.peek().is_some_and(|b| !stop(b)) {
            self.pos += 1;
        }
        (start, &self.text[start..self.pos])
    }

    /// An error about what is at the cursor: the next word, one punctuation character, or
    /// nothing at the end of the text.
    fn error_here(&self, msg: impl Into<String>) -> ParseError {
        let rest = &self.text[self.pos..];
        let len = match rest.bytes().next() {
            None => 0,
            Some(b) if is_delim(b) => 1,
            Some(_) => rest
                .bytes()
                .position(is_delim)
                .unwrap_or(rest.len())
                .max(rest.chars().next().map_or(0, char::len_utf8)),
        };
        ParseError::new(self.pos, len, msg)
    }

    fn expect(&mut self, lit: &str, msg: &str) -> Result<(), ParseError> {
        self.skip_ws();
        if self.text[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            Ok(())
        } else {
            Err(self.error_here(msg))
        }
    }

    fn rule(&mut self) -> Result<Vec<VsRule>, ParseError> {
        self.skip_ws();
        if self.peek().is_none() {
            return Err(self.error_here("empty rule: expected '(EVENT, VS) -> (TARGET)'"));
        }
        self.expect(
            "(",
            "expected '(' to start the rule: (EVENT, VS) -> (TARGET)",
        )?;
        let event = self.event()?;
        self.expect(",", "expected ',' and the VS after the event")?;
        let cur = self.vs(
            Place::Cur,
            event,
            "the VS of the task (a name, an id or '*')",
        )?;
        let mut req: Option<Vec<u32>> = None;
        let mut path: Option<[u8; VS_PATH_LEN]> = None;
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b')') => {
                    self.pos += 1;
                    break;
                }
                Some(b',') => {
                    self.pos += 1;
                    self.option(event, &mut req, &mut path)?;
                }
                _ => return Err(self.error_here("expected ',' or ')'")),
            }
        }
        self.expect("->", "expected '->' between the two parts of the rule")?;
        self.expect("(", "expected '(' before the target")?;
        let target = self.vs(
            Place::Target,
            event,
            "the target (a name, an id, 'req' or 'keep')",
        )?;
        self.expect(")", "expected ')'")?;
        self.skip_ws();
        if self.peek().is_some() {
            let rest = self.text[self.pos..].trim_end();
            return Err(ParseError::new(
                self.pos,
                rest.len(),
                "trailing text after rule",
            ));
        }

        let n = self.group.as_ref().map_or(1, |g| g.count);
        // A token without a group has one value, shared by every expanded rule.
        let pick = |v: &[u32], i: usize| if v.len() == 1 { v[0] } else { v[i] };
        Ok((0..n)
            .map(|i| VsRule {
                event,
                cur: pick(&cur, i),
                req: req.as_deref().map_or(VS_ANY, |r| pick(r, i)),
                target: pick(&target, i),
                path: path.unwrap_or([0; VS_PATH_LEN]),
                ..VsRule::default()
            })
            .collect())
    }

    fn event(&mut self) -> Result<u32, ParseError> {
        self.skip_ws();
        let (pos, w) = self.word(is_delim);
        if w.is_empty() {
            return Err(self.error_here(format!("expected an event (one of: {})", event_list())));
        }
        match VS_EV_NAMES[1..].iter().position(|&n| n == w) {
            Some(i) => Ok(i as u32 + 1),
            None => Err(ParseError::new(
                pos,
                w.len(),
                format!("unknown event '{w}' (expected one of: {})", event_list()),
            )),
        }
    }

    /// One option after the VS of the task: `req=VS` or `path=PATH`.
    fn option(
        &mut self,
        event: u32,
        req: &mut Option<Vec<u32>>,
        path: &mut Option<[u8; VS_PATH_LEN]>,
    ) -> Result<(), ParseError> {
        self.skip_ws();
        let (kpos, key) = self.word(|b| is_delim(b) || b == b'=');
        // The whole option, up to the next ',' or ')', for messages about the option itself.
        let rest = &self.text[kpos..];
        let span = rest
            .find([',', ')'])
            .map_or(rest, |e| &rest[..e])
            .trim_end()
            .len();
        match key {
            "req" => {
                if !vs_event_has_req(event) {
                    return Err(ParseError::new(
                        kpos,
                        span,
                        format!("req= is only valid for {}", req_event_list()),
                    ));
                }
                if req.is_some() {
                    return Err(ParseError::new(kpos, span, "req= given twice"));
                }
                self.expect("=", "expected '=' after 'req'")?;
                *req = Some(self.vs(Place::Req, event, "a VS after 'req='")?);
            }
            "path" => {
                if event != VS_EV_EXEC {
                    return Err(ParseError::new(kpos, span, "path= is only valid for exec"));
                }
                if path.is_some() {
                    return Err(ParseError::new(kpos, span, "path= given twice"));
                }
                self.expect("=", "expected '=' after 'path'")?;
                *path = Some(self.path()?);
            }
            "" => return Err(self.error_here("expected an option (req=VS or path=PATH) after ','")),
            _ => {
                return Err(ParseError::new(
                    kpos,
                    key.len(),
                    format!("unknown option '{key}' (expected req=VS or path=PATH)"),
                ))
            }
        }
        Ok(())
    }

    /// The value of `path=`, literally: `[`, `(` and `=` are ordinary characters in it.
    fn path(&mut self) -> Result<[u8; VS_PATH_LEN], ParseError> {
        self.skip_ws();
        let (pos, p) = self.word(|b| b.is_ascii_whitespace() || b == b',' || b == b')');
        let error = |msg: &str| Err(ParseError::new(pos, p.len(), msg));
        if p.is_empty() {
            return Err(self.error_here("expected a path after 'path='"));
        }
        if !p.starts_with('/') {
            return error("path must be absolute (start with '/')");
        }
        if p.len() >= VS_PATH_LEN {
            return error("path is longer than 127 bytes");
        }
        if p.contains('\0') {
            return error("path contains a NUL byte");
        }
        let mut buf = [0u8; VS_PATH_LEN];
        buf[..p.len()].copy_from_slice(p.as_bytes());
        Ok(buf)
    }

    /// A VS token at `place`: read it, spell out its alternatives, check that they pair up
    /// with the earlier groups, and resolve each. `what` names the expected token.
    fn vs(&mut self, place: Place, event: u32, what: &str) -> Result<Vec<u32>, ParseError> {
        self.skip_ws();
        let (pos, text) = self.word(is_delim);
        if text.is_empty() {
            return Err(self.error_here(format!("expected {what}")));
        }
        if place == Place::Cur && text.contains('=') {
            return Err(ParseError::new(
                pos,
                text.len(),
                format!("expected {what} before the option '{text}'"),
            ));
        }
        let tok = alternatives(pos, text)?;
        if tok.alts.len() > 1 || text.contains('[') {
            match &self.group {
                None => {
                    self.group = Some(Group {
                        count: tok.alts.len(),
                        token: text.to_string(),
                    })
                }
                Some(g) if g.count != tok.alts.len() => {
                    return Err(tok.error(format!(
                        "alternatives do not pair up: '{}' has {}, '{}' has {}",
                        g.token,
                        g.count,
                        text,
                        tok.alts.len()
                    )))
                }
                Some(_) => {}
            }
        }
        let mut ids = Vec::with_capacity(tok.alts.len());
        for alt in &tok.alts {
            ids.push(self.resolve_one(&tok, alt, place, event)?);
        }
        Ok(ids)
    }

    /// One alternative of `tok`.
    fn resolve_one(
        &mut self,
        tok: &Token,
        s: &str,
        place: Place,
        event: u32,
    ) -> Result<u32, ParseError> {
        if place == Place::Target {
            match s {
                "req" if vs_event_has_req(event) => return Ok(VS_TARGET_REQ),
                "req" => {
                    return Err(tok.error(format!(
                        "target 'req' needs an event with a requester ({})",
                        req_event_list()
                    )))
                }
                "keep" => return Ok(VS_TARGET_KEEP),
                "*" => {
                    return Err(tok.error(
                        "the target cannot be '*' (use 'keep' to stay, 'req' to join the \
                         requester's VS)",
                    ))
                }
                _ => {}
            }
        }
        if s == "*" {
            return Ok(VS_ANY);
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return match s.parse::<u32>() {
                Ok(id) if id <= VS_LOCAL_MAX => Ok(id),
                _ => Err(tok.error(format!("VS id {s} is out of range (0..{VS_LOCAL_MAX})"))),
            };
        }
        (self.resolve)(s).ok_or_else(|| tok.error(format!("no VS named '{s}'")))
    }
}

/// Spell out the alternatives of the token `text` at `pos`: `www[1|2]` is `www1`, `www2`.
fn alternatives(pos: usize, text: &str) -> Result<Token<'_>, ParseError> {
    let at = |i: usize, msg: &str| Err(ParseError::new(pos + i, 1, msg));
    let whole = |msg: String| Err(ParseError::new(pos, text.len(), msg));
    let Some(open) = text.find('[') else {
        if let Some(i) = text.find(']') {
            return at(i, "']' without '['");
        }
        if let Some(i) = text.find('|') {
            return at(i, "'|' outside of a [..|..] group");
        }
        return Ok(Token {
            pos,
            text,
            alts: vec![text.to_string()],
        });
    };
    let (prefix, after) = (&text[..open], &text[open + 1..]);
    if let Some(i) = prefix.find(']') {
        return at(i, "']' without '['");
    }
    if let Some(i) = prefix.find('|') {
        return at(i, "'|' outside of a [..|..] group");
    }
    let Some(close) = after.find(']').map(|i| open + 1 + i) else {
        return at(open, "'[' without ']'");
    };
    let (inner, suffix) = (&text[open + 1..close], &text[close + 1..]);
    if let Some(i) = inner.find('[') {
        return at(open + 1 + i, "groups of alternatives do not nest");
    }
    for (c, msg) in [
        ('[', "only one group of alternatives per VS"),
        (']', "']' without '['"),
        ('|', "'|' outside of a [..|..] group"),
    ] {
        if let Some(i) = suffix.find(c) {
            return at(close + 1 + i, msg);
        }
    }
    if inner.split('|').any(str::is_empty) {
        return whole(format!("empty alternative in '{text}'"));
    }
    Ok(Token {
        pos,
        text,
        alts: inner
            .split('|')
            .map(|alt| format!("{prefix}{alt}{suffix}"))
            .collect(),
    })
}

/// Parse one rule of the notation. Names are looked up with `resolve`; numbers are VSIDs;
/// a rule with alternatives gives several rules, in the order of the alternatives.
pub fn parse_rule(
    text: &str,
    resolve: impl FnMut(&str) -> Option<u32>,
) -> Result<Vec<VsRule>, ParseError> {
    Parser {
        text,
        pos: 0,
        resolve,
        group: None,
    }
    .rule()
}

/// Rule `r` in the notation, VSs by name where `name_of` knows one that reads back as itself
/// (else by id). With the matching `resolve`, [`parse_rule`] gives `r` back (but its id and
/// hits, which are not part of the notation).
pub fn format_rule(r: &VsRule, name_of: impl Fn(u32) -> Option<String>) -> String {
    let vs = |id: u32, target: bool| match name_of(id) {
        Some(n) if is_valid_name(n.as_bytes()) && !(target && (n == "req" || n == "keep")) => n,
        _ => id.to_string(),
    };
    let event = match VS_EV_NAMES.get(r.event as usize) {
        Some(n) if r.event != 0 => n.to_string(),
        _ => format!("event-{}", r.event),
    };
    let cur = if r.cur == VS_ANY {
        "*".to_string()
    } else {
        vs(r.cur, false)
    };
    let mut s = format!("({event}, {cur}");
    if r.req != VS_ANY {
        s.push_str(", req=");
        s.push_str(&vs(r.req, false));
    }
    let path_len = r.path.iter().position(|&b| b == 0).unwrap_or(VS_PATH_LEN);
    if path_len > 0 {
        s.push_str(", path=");
        s.push_str(&String::from_utf8_lossy(&r.path[..path_len]));
    }
    let target = match r.target {
        VS_TARGET_REQ => "req".to_string(),
        VS_TARGET_KEEP => "keep".to_string(),
        id => vs(id, true),
    };
    s.push_str(") -> (");
    s.push_str(&target);
    s.push(')');
    s
}
