// SPDX-License-Identifier: GPL-2.0
//! The C functions of `src/vs_glue.c`, declared in one place.
//!
//! Only this file names them; the rest of the module goes through the safe wrappers below.

extern "C" {
    fn vs_glue_state_lock() -> usize;
    fn vs_glue_state_unlock(flags: usize);
    fn vs_glue_capable_admin() -> bool;
    fn vs_glue_nr_cpu_ids() -> core::ffi::c_uint;
    fn vs_glue_this_cpu() -> core::ffi::c_uint;
    fn vs_glue_misc_register() -> core::ffi::c_int;
    fn vs_glue_misc_deregister();
    fn vs_glue_probes_register() -> core::ffi::c_int;
    fn vs_glue_probes_unregister();
    fn vs_glue_arm();
    fn vs_glue_missing_gates() -> u32;
    fn vs_net_register() -> core::ffi::c_int;
    fn vs_net_unregister();
    fn vs_vsq_register() -> core::ffi::c_int;
    fn vs_vsq_unregister();
    fn vs_glue_for_each_task(
        vpid: i32,
        tree: bool,
        ctx: *mut core::ffi::c_void,
    ) -> core::ffi::c_int;
    fn vs_glue_task_exiting(task: *const core::ffi::c_void) -> bool;
    fn vs_net_listening(sk: usize) -> bool;
    fn vs_glue_global_pid(vpid: i32) -> core::ffi::c_int;
    fn vs_glue_pid_for_caller(pid: i32) -> core::ffi::c_int;
    fn vs_glue_paths_refresh_soon();
    fn vs_glue_paths_refresh_now();
    fn vs_glue_path_identity(path: *const u8, dev: *mut u32, ino: *mut u64) -> core::ffi::c_int;
    fn vs_glue_cpu_start();
    fn vs_glue_cpu_stop();
    fn vs_glue_task_sample(
        pid: i32,
        runnable: *mut bool,
        nice: *mut core::ffi::c_int,
    ) -> core::ffi::c_int;
    fn vs_glue_set_nice(
        pid: i32,
        expect: core::ffi::c_int,
        nice: core::ffi::c_int,
    ) -> core::ffi::c_int;
}

/// Have the rule paths resolved again soon (at most once a second). Any context.
pub(crate) fn paths_refresh_soon() {
    // SAFETY: schedules a work item; callable with the state lock dropped, from any context.
    unsafe { vs_glue_paths_refresh_soon() }
}

/// Resolve the rule paths now and wait. Process context, no lock held.
pub(crate) fn paths_refresh_now() {
    // SAFETY: process context (an ioctl); the work item takes the state lock itself.
    unsafe { vs_glue_paths_refresh_now() }
}

/// The identity of the file that NUL-terminated `path` names, or `None`. Process context;
/// resolves in the caller's mount namespace (the paths work item: the initial one).
pub(crate) fn path_identity(path: &[u8]) -> Option<(u32, u64)> {
    if path.last() != Some(&0) {
        return None;
    }
    let (mut dev, mut ino) = (0, 0);
    // SAFETY: `path` is NUL-terminated; the out-pointers are valid for the call.
    let ret = unsafe { vs_glue_path_identity(path.as_ptr(), &mut dev, &mut ino) };
    (ret == 0).then_some((dev, ino))
}

/// Whether the socket at `sk` (a listener the caller holds a reference to) is in `TCP_LISTEN`.
pub(crate) fn listening(sk: usize) -> bool {
    // SAFETY: the caller's `sk` is a live socket (the accept hook's listener).
    unsafe { vs_net_listening(sk) }
}

/// How many CPU ids there can be (`nr_cpu_ids`): ids are below it.
pub(crate) fn nr_cpu_ids() -> usize {
    // SAFETY: reads a variable fixed at boot.
    unsafe { vs_glue_nr_cpu_ids() as usize }
}

/// The CPU the caller runs on (exact in a probe, where preemption is off).
pub(crate) fn this_cpu() -> usize {
    // SAFETY: reads the current CPU's id; no precondition.
    unsafe { vs_glue_this_cpu() as usize }
}

/// Start the CPU controller's periodic work (`vs_rust_cpu_tick`).
pub(crate) fn cpu_start() {
    // SAFETY: the state exists; paired with `cpu_stop` before it goes (`cpu::Controller`).
    unsafe { vs_glue_cpu_start() }
}

/// Stop the CPU controller and wait for a running tick to finish.
pub(crate) fn cpu_stop() {
    // SAFETY: process context; cancelling a never-started work item is fine.
    unsafe { vs_glue_cpu_stop() }
}

/// A task's state for the controller: `Some((runnable, nice))`, or `None` if it is gone.
pub(crate) fn task_sample(pid: i32) -> Option<(bool, i8)> {
    let (mut runnable, mut nice) = (false, 0);
    // SAFETY: valid out-pointers for the duration of the call.
    let ret = unsafe { vs_glue_task_sample(pid, &mut runnable, &mut nice) };
    (ret == 0).then(|| (runnable, nice.clamp(-20, 19) as i8))
}

/// Set `pid`'s nice to `nice` if it is still `expect`. Process context only.
pub(crate) fn set_nice(pid: i32, expect: i8, nice: i8) {
    // SAFETY: called from the CPU work item or module exit (process context); no lock held.
    let _ = unsafe { vs_glue_set_nice(pid, expect.into(), nice.into()) };
}

fn to_result(ret: core::ffi::c_int) -> kernel::error::Result<i32> {
    if ret < 0 {
        Err(kernel::error::Error::from_errno(ret))
    } else {
        Ok(ret)
    }
}

/// A registration with the kernel (the gates, the network half, `/dev/vs`), undone when this
/// drops.
pub(crate) struct Registration {
    undo: unsafe extern "C" fn(),
}

impl Registration {
    /// Call `register`; on success, `undo` runs when the result drops.
    ///
    /// # Safety
    ///
    /// `register` may be called now (module init, after the state exists), and `undo` undoes
    /// it and may be called once it succeeded, in process context.
    unsafe fn new(
        register: unsafe extern "C" fn() -> core::ffi::c_int,
        undo: unsafe extern "C" fn(),
    ) -> kernel::error::Result<Self> {
        // SAFETY: the caller's promise.
        to_result(unsafe { register() })?;
        Ok(Registration { undo })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: `register` succeeded (the value exists only then); module exit or a failed
        // init, both process context.
        unsafe { (self.undo)() }
    }
}

/// Register every gate (tracepoints, kprobes), all or none; dropping the result unregisters
/// them and waits until none is running.
pub(crate) fn probes() -> kernel::error::Result<Registration> {
    // SAFETY: called from module init after the state exists; the pair belongs together.
    unsafe { Registration::new(vs_glue_probes_register, vs_glue_probes_unregister) }
}

/// Arm the optional probes the configuration needs now, disarm the rest, and wait (the glue's
/// work item does it, retrying a group that fails). Process context, no lock held.
pub(crate) fn arm() {
    // SAFETY: process context (an ioctl), no lock held; the work item serialises the arming.
    unsafe { vs_glue_arm() }
}

/// The optional probe groups (`arming`) whose hook could not be set up at load: their gates'
/// rules are refused.
pub(crate) fn missing_gates() -> u32 {
    // SAFETY: reads a value set at load, before /dev/vs existed, and constant since.
    unsafe { vs_glue_missing_gates() }
}

/// Register the accept queue's kprobes (admission, and a listener's teardown), all or none;
/// dropping the result unregisters them.
pub(crate) fn net() -> kernel::error::Result<Registration> {
    // SAFETY: called from module init after the state exists; the pair belongs together.
    unsafe { Registration::new(vs_net_register, vs_net_unregister) }
}

/// Register the vsq qdisc; dropping the result unregisters it (no vsq instance exists then:
/// each holds a module reference).
pub(crate) fn vsq() -> kernel::error::Result<Registration> {
    // SAFETY: called from module init after the state exists; the pair belongs together.
    unsafe { Registration::new(vs_vsq_register, vs_vsq_unregister) }
}

/// A task handed to [`for_each_task`]'s callback; valid for the duration of the callback.
pub(crate) struct TaskRef(*const core::ffi::c_void);

impl TaskRef {
    /// Whether the task has started exiting: binding it now would outlive it.
    pub(crate) fn exiting(&self) -> bool {
        // SAFETY: the pointer is a live task for the duration of the callback (RCU held by
        // the glue while it walks the task list).
        unsafe { vs_glue_task_exiting(self.0) }
    }
}

/// Call `f(global pid, task)` for each thread of process `vpid` (caller's pid namespace) and,
/// with `tree`, of its descendants. `ESRCH` if there is no such process. `f` runs under RCU.
pub(crate) fn for_each_task(
    vpid: i32,
    tree: bool,
    f: &mut dyn FnMut(i32, TaskRef),
) -> kernel::error::Result {
    let mut f = f;
    let ctx = &mut f as *mut &mut dyn FnMut(i32, TaskRef) as *mut core::ffi::c_void;
    // SAFETY: `ctx` points to `f`, alive until this returns; the glue passes it back only to
    // `vs_rust_bind_task` during the call.
    to_result(unsafe { vs_glue_for_each_task(vpid, tree, ctx) }).map(|_| ())
}

/// Called by the glue for each task of `for_each_task`.
///
/// # Safety
///
/// `ctx` is the pointer `for_each_task` passed; `task` a live task_struct.
#[no_mangle]
unsafe extern "C" fn vs_rust_bind_task(
    ctx: *mut core::ffi::c_void,
    pid: i32,
    task: *const core::ffi::c_void,
) {
    // SAFETY: per the contract, `ctx` points to the `&mut dyn FnMut` of `for_each_task`.
    let f = unsafe { &mut *(ctx as *mut &mut dyn FnMut(i32, TaskRef)) };
    f(pid, TaskRef(task));
}

/// The global pid of `vpid` in the caller's namespace; `ESRCH` if there is none.
pub(crate) fn global_pid(vpid: i32) -> kernel::error::Result<i32> {
    // SAFETY: no preconditions; runs in process context (ioctl).
    to_result(unsafe { vs_glue_global_pid(vpid) })
}

/// The pid of the task with global pid `pid` as the calling task's pid namespace sees it;
/// `None` if it is not visible there.
pub(crate) fn pid_for_caller(pid: i32) -> Option<u32> {
    // SAFETY: no preconditions; safe in atomic context (RCU inside).
    let nr = unsafe { vs_glue_pid_for_caller(pid) };
    u32::try_from(nr).ok().filter(|&n| n != 0)
}

/// Interrupt state saved by [`state_lock`]; give it back to [`state_unlock`].
pub(crate) struct IrqFlags(usize);

/// Take the state spinlock with interrupts off.
pub(crate) fn state_lock() -> IrqFlags {
    // SAFETY: no preconditions; the lock is a static in the glue.
    IrqFlags(unsafe { vs_glue_state_lock() })
}

/// Release the state spinlock taken by [`state_lock`].
pub(crate) fn state_unlock(flags: IrqFlags) {
    // SAFETY: `flags` came from `state_lock` (the type cannot be made elsewhere), so the lock
    // is held by this context.
    unsafe { vs_glue_state_unlock(flags.0) }
}

/// Whether the calling task has CAP_SYS_ADMIN (audited like any capability check).
pub(crate) fn capable_admin() -> bool {
    // SAFETY: called in process context (ioctl), as capable() requires.
    unsafe { vs_glue_capable_admin() }
}

/// Create `/dev/vs`: after this, ioctls can arrive at `device::vs_rust_ioctl`; dropping the
/// result removes it.
pub(crate) fn misc() -> kernel::error::Result<Registration> {
    // SAFETY: called once from module init after the state exists; the pair belongs together.
    unsafe { Registration::new(vs_glue_misc_register, vs_glue_misc_deregister) }
}
