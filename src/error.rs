// SPDX-License-Identifier: GPL-2.0
//! How the pure logic's errors become errnos: the table the README's error list documents.

use kernel::error::{code::*, Error};

use crate::tree;

/// The errno for a refusal of the VS hierarchy.
pub(crate) fn to_errno(e: tree::Error) -> Error {
    match e {
        tree::Error::Invalid => EINVAL,
        tree::Error::NotFound => ENOENT,
        tree::Error::Exists => EEXIST,
        tree::Error::Busy => EBUSY,
        tree::Error::NoSpace => ENOSPC,
        tree::Error::Again => EAGAIN,
    }
}
