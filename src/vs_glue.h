/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C glue's interface: what vs_glue.c offers the Rust side (declared again, for Rust, in
 * src/glue.rs: keep the two in step) and what it calls in Rust.
 */
#ifndef VS_GLUE_H
#define VS_GLUE_H

#include <linux/types.h>

/* Provided by Rust. */
long vs_rust_ioctl(unsigned int cmd, unsigned long arg);

/* Provided by vs_glue.c. */
unsigned long vs_glue_state_lock(void);
void vs_glue_state_unlock(unsigned long flags);
bool vs_glue_capable_admin(void);
int vs_glue_misc_register(void);
void vs_glue_misc_deregister(void);

#endif /* VS_GLUE_H */
