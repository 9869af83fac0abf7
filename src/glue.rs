// SPDX-License-Identifier: GPL-2.0
//! The C functions of `src/vs_glue.c`, declared in one place.
//!
//! Only this file names them; the rest of the module goes through the safe wrappers below.

extern "C" {
    fn vs_glue_state_lock() -> usize;
    fn vs_glue_state_unlock(flags: usize);
    fn vs_glue_capable_admin() -> bool;
    fn vs_glue_misc_register() -> core::ffi::c_int;
    fn vs_glue_misc_deregister();
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

/// Create `/dev/vs`; after this, ioctls can arrive at `device::vs_rust_ioctl`.
pub(crate) fn misc_register() -> kernel::error::Result {
    // SAFETY: called once from module init, paired with `misc_deregister` in module exit.
    let ret = unsafe { vs_glue_misc_register() };
    if ret < 0 {
        Err(kernel::error::Error::from_errno(ret))
    } else {
        Ok(())
    }
}

/// Remove `/dev/vs`.
pub(crate) fn misc_deregister() {
    // SAFETY: only called after a successful `misc_register`.
    unsafe { vs_glue_misc_deregister() }
}
