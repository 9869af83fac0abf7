// SPDX-License-Identifier: GPL-2.0
//! Processes for gate tests: run code in a forked child, or park a child until released.

/// Run `f` in a forked child and return its exit status (or 128 + signal).
pub fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: fork in a test process; the child only runs `f` and then `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: end the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    wait(pid)
}

/// Wait for child `pid`: its exit status, 128 + signal, or -1 if it is not our child.
pub fn wait(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer.
    if pid < 0 || unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return -1;
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// A child that sits in `pause()` until killed; reaped on drop.
pub struct Parked(pub i32);

impl Parked {
    #[allow(clippy::new_without_default)] // forks: not something to do by default
    pub fn new() -> Parked {
        // SAFETY: the child only pauses (async-signal-safe) until a signal ends it.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            loop {
                // SAFETY: plain syscall.
                unsafe { libc::pause() };
            }
        }
        Parked(pid)
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: our own child.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
            wait(self.0);
        }
    }
}

/// The current process id as the kernel's pid_t.
pub fn getpid() -> i32 {
    std::process::id() as i32
}
