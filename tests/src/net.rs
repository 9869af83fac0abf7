// SPDX-License-Identifier: GPL-2.0
//! Sockets for gate tests: connect a socket made beforehand, so that what was set on it (its
//! VS tag, IP_TOS, non-blocking) stays. IPv4 only.

use std::net::SocketAddr;

/// connect(2) `fd` to `addr`: 0, or -1 with errno set (EINPROGRESS for a non-blocking socket);
/// -1 with no errno for an IPv6 address.
pub fn connect_raw(fd: i32, addr: &SocketAddr) -> i32 {
    let SocketAddr::V4(a) = addr else {
        return -1;
    };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: a valid sockaddr_in of the stated length.
    unsafe {
        libc::connect(
            fd,
            &sin as *const _ as *const libc::sockaddr,
            std::mem::size_of_val(&sin) as u32,
        )
    }
}
