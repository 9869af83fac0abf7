// SPDX-License-Identifier: GPL-2.0
/*
 * vs C glue: the few kernel facilities that 6.12's Rust crate does not wrap (the misc device,
 * capable(), an irq-safe spinlock). Kept thin on purpose: every decision is made in Rust; the
 * functions here only register, forward and lock. Declared to Rust in src/glue.rs.
 */
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/spinlock.h>

#include "vs_glue.h"

/*
 * The one lock of the module state (src/state.rs). irqsave because the state is also read
 * from probe handlers and the qdisc, which may run with interrupts off or in softirq.
 */
static DEFINE_SPINLOCK(vs_state_lock);

unsigned long vs_glue_state_lock(void)
{
	unsigned long flags;

	spin_lock_irqsave(&vs_state_lock, flags);
	return flags;
}

void vs_glue_state_unlock(unsigned long flags)
{
	spin_unlock_irqrestore(&vs_state_lock, flags);
}

bool vs_glue_capable_admin(void)
{
	return capable(CAP_SYS_ADMIN);
}

static long vs_fop_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	return vs_rust_ioctl(cmd, arg);
}

static const struct file_operations vs_fops = {
	/* Holds a module reference while /dev/vs is open: rmmod fails with EBUSY meanwhile. */
	.owner = THIS_MODULE,
	.unlocked_ioctl = vs_fop_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice vs_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "vs",
	.fops = &vs_fops,
	/* World-readable: reads are open to all, mutations check CAP_SYS_ADMIN per call. */
	.mode = 0666,
};

int vs_glue_misc_register(void)
{
	return misc_register(&vs_misc);
}

void vs_glue_misc_deregister(void)
{
	misc_deregister(&vs_misc);
}
