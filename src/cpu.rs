// SPDX-License-Identifier: GPL-2.0
//! The CPU share controller's tick: the kernel half of `cpu_control::Vs::cpu_tick`.
//!
//! Runs every `cpu_period_ms` in a work item (process context). Nice values can only be set
//! outside the state lock (`set_user_nice` takes the runqueue lock, and the runtime probe takes
//! the state lock under the runqueue lock: the opposite order would deadlock), so a tick is:
//! snapshot the members (locked), sample each task (unlocked), decide (locked), apply
//! (unlocked). The buffers are kept in the state between ticks (grown in process context).

use kernel::prelude::*;

use crate::cpu_control::{NiceAction, TaskSample};
use crate::{glue, state};

/// Apply nice changes; a task that changed meanwhile is left as it is (see `glue::set_nice`).
fn apply(actions: &[NiceAction]) {
    for a in actions {
        glue::set_nice(a.pid as i32, a.expect, a.nice);
    }
}

fn tick() -> Result {
    // Nothing classified: no task to sample or renice, and nothing vs reniced that could need
    // restoring (entries of reniced tasks stay until their nice is given back); the counters
    // still move on.
    if state::HINTS.no_members() {
        return state::with(|s| {
            s.vs.cpu_tick(&[], &mut []);
            Ok(())
        });
    }
    let (mut samples, mut actions, members) = state::with(|s| {
        Ok((
            core::mem::replace(&mut s.tick_samples, KVVec::new()),
            core::mem::replace(&mut s.tick_actions, KVVec::new()),
            s.vs.members.len(),
        ))
    })?;
    // Grown outside the lock, never cleared: the snapshot writes what it keeps.
    grow(&mut samples, members)?;
    // Members may join between the locked sections; they are sampled next tick. One section
    // per chunk of the member table, so that none grows with the member count.
    let (mut n, mut from) = (0, Some(0));
    while let (Some(at), Some(out)) = (from, samples.get_mut(n..members)) {
        if out.is_empty() {
            break;
        }
        let (k, next) = state::with(|s| Ok(s.vs.members_snapshot(at, out)))?;
        n += k;
        from = next;
    }
    for s in samples.iter_mut().take(n) {
        *s = match glue::task_sample(s.pid as i32) {
            Some((runnable, nice)) => TaskSample {
                pid: s.pid,
                alive: true,
                runnable,
                nice,
            },
            None => TaskSample {
                pid: s.pid,
                ..TaskSample::default()
            },
        };
    }
    grow(&mut actions, n)?;
    let k = state::with(|s| Ok(s.vs.cpu_tick(&samples[..n], &mut actions[..n])))?;
    apply(&actions[..k]);
    state::with(|s| {
        s.tick_samples = samples;
        s.tick_actions = actions;
        Ok(())
    })
}

/// Make `v` at least `len` long (in process context, outside the lock).
fn grow<T: Clone + Default>(v: &mut KVVec<T>, len: usize) -> Result {
    if let Some(more) = len.checked_sub(v.len()).filter(|&m| m > 0) {
        v.extend_with(more, T::default(), GFP_KERNEL)?;
    }
    Ok(())
}

/// Called by the glue's delayed work.
#[no_mangle]
extern "C" fn vs_rust_cpu_tick() {
    // An allocation failure skips this tick; the next one tries again.
    let _ = tick();
}

/// The controller, running while this lives. Dropping it stops the work and gives every task
/// vs reniced its own nice value back: drop it after the probes (so that no gate moves a task
/// meanwhile) and before the state.
pub(crate) struct Controller(());

impl Controller {
    /// Start the periodic tick; the state must exist.
    pub(crate) fn start() -> Self {
        glue::cpu_start();
        Controller(())
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        glue::cpu_stop();
        restore_all();
    }
}

/// Give every task vs reniced its own nice value back (the controller and the probes are
/// stopped).
fn restore_all() {
    let Ok(n) = state::with(|s| Ok(s.vs.members.len())) else {
        return;
    };
    let Ok(mut actions) = KVVec::from_elem(NiceAction::default(), n, GFP_KERNEL) else {
        pr_warn!("out of memory: nice values of {} tasks not restored\n", n);
        return;
    };
    if let Ok(k) = state::with(|s| Ok(s.vs.restore_all(&mut actions))) {
        apply(&actions[..k]);
    }
}
