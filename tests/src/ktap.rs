// SPDX-License-Identifier: GPL-2.0
//! KTAP runner: forks each test, enforces a time limit, prints `ok`/`not ok`/`# SKIP` lines
//! and the kselftest `# Totals` line; the exit status is 0 only if nothing failed.

use std::io::Write;
use std::time::Duration;

/// Why a test did not pass.
#[derive(Debug)]
pub enum Fail {
    /// An assertion failed: the message says which and with what values.
    Fail(String),
    /// The test cannot run here; the message says why. Never counted as a pass.
    Skip(String),
}

pub type Outcome = Result<(), Fail>;

/// One test: a name and the function that runs it.
#[derive(Clone, Copy)]
pub struct Test {
    pub name: &'static str,
    pub func: fn() -> Outcome,
    /// Seconds before the child is killed and the test fails.
    pub timeout: u32,
}

/// Fail the current test unless `cond`, with a formatted message.
#[macro_export]
macro_rules! check {
    ($cond:expr) => {
        if !$cond {
            return Err($crate::Fail::Fail(format!("{}:{}: check failed: {}", file!(), line!(), stringify!($cond))));
        }
    };
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::Fail::Fail(format!("{}:{}: {}", file!(), line!(), format!($($arg)+))));
        }
    };
}

/// Fail unless `left == right`, printing both.
#[macro_export]
macro_rules! check_eq {
    ($left:expr, $right:expr $(, $($arg:tt)+)?) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            let ctx: String = String::new() $(+ &format!($($arg)+))?;
            return Err($crate::Fail::Fail(format!(
                "{}:{}: {} == {} failed: {:?} != {:?} {}",
                file!(), line!(), stringify!($left), stringify!($right), l, r, ctx
            )));
        }
    }};
}

/// Turn any `Result` with a debuggable error into a test failure with context.
pub trait Context<T> {
    fn ctx(self, what: &str) -> Result<T, Fail>;
}

impl<T, E: std::fmt::Debug> Context<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, Fail> {
        self.map_err(|e| Fail::Fail(format!("{what}: {e:?}")))
    }
}

const KSFT_PASS: i32 = 0;
const KSFT_FAIL: i32 = 1;
const KSFT_SKIP: i32 = 4;

fn run_child(t: &Test) -> i32 {
    // SAFETY: alarm has no memory-safety preconditions; SIGALRM's default action ends the child.
    unsafe { libc::alarm(t.timeout) };
    let res = std::panic::catch_unwind(t.func);
    let code = match res {
        Ok(Ok(())) => KSFT_PASS,
        Ok(Err(Fail::Fail(msg))) => {
            println!("# {}: {msg}", t.name);
            KSFT_FAIL
        }
        Ok(Err(Fail::Skip(msg))) => {
            println!("# {}: SKIP {msg}", t.name);
            KSFT_SKIP
        }
        Err(_) => {
            println!("# {}: panicked", t.name);
            KSFT_FAIL
        }
    };
    let _ = std::io::stdout().flush();
    code
}

/// Run `tests` of `suite`, print KTAP, and exit: 0 when none failed.
///
/// `VS_TEST=name` in the environment runs only the tests whose name contains `name`.
pub fn run(suite: &str, tests: &[Test]) -> ! {
    let only = std::env::var("VS_TEST").unwrap_or_default();
    let tests: Vec<&Test> = tests
        .iter()
        .filter(|t| t.name.contains(only.as_str()))
        .collect();
    println!("TAP version 13");
    println!("1..{}", tests.len());
    println!("# suite: {suite}");
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    for (i, t) in tests.iter().enumerate() {
        let _ = std::io::stdout().flush();
        // SAFETY: the harness is single-threaded, so the child may run arbitrary code.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // Its own process group, so that whatever it forks goes when it is done.
            // SAFETY: plain syscall in the child.
            unsafe { libc::setpgid(0, 0) };
            let code = run_child(t);
            // SAFETY: leave the child without running the parent's atexit handlers twice.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        let mut waited = -1;
        if pid > 0 {
            // SAFETY: `status` is a valid out-pointer; `pid` is our child.
            waited = unsafe { libc::waitpid(pid, &mut status, 0) };
            // Children the test left running (a timed-out test's hogs, say) end with it.
            // SAFETY: signals only the test's own process group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let n = i + 1;
        if pid < 0 || waited != pid {
            println!("not ok {n} {} # could not fork or wait", t.name);
            fail += 1;
        } else if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            let why = if sig == libc::SIGALRM {
                format!("timed out after {} s", t.timeout)
            } else {
                format!("killed by signal {sig}")
            };
            println!("not ok {n} {} # {why}", t.name);
            fail += 1;
        } else {
            match libc::WEXITSTATUS(status) {
                KSFT_PASS => {
                    println!("ok {n} {}", t.name);
                    pass += 1;
                }
                KSFT_SKIP => {
                    println!("ok {n} {} # SKIP", t.name);
                    skip += 1;
                }
                _ => {
                    println!("not ok {n} {}", t.name);
                    fail += 1;
                }
            }
        }
    }
    println!("# Totals: pass:{pass} fail:{fail} xfail:0 xpass:0 skip:{skip} error:0");
    let _ = std::io::stdout().flush();
    std::process::exit(if fail == 0 { 0 } else { 1 });
}

/// Sleep helper for tests that wait for the kernel to act.
pub fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// The table of a test program: `tests![a, b, c]` with each a `fn() -> Outcome`.
#[macro_export]
macro_rules! tests {
    ($($name:ident $(: $timeout:expr)?),* $(,)?) => {
        &[$($crate::Test {
            name: stringify!($name),
            func: $name,
            timeout: { let _t = 60; $(let _t = $timeout;)? _t },
        }),*]
    };
}
