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

/// Set IP_TOS of socket `fd` (the DSCP is `tos >> 2`).
pub fn set_tos(fd: i32, tos: i32) {
    // SAFETY: a valid int option and its length.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_TOS,
            &tos as *const i32 as *const _,
            4,
        )
    };
}

/// IP_TOS of socket `fd`.
pub fn tos_of(fd: i32) -> i32 {
    let mut v: i32 = 0;
    let mut len = 4u32;
    // SAFETY: a valid int out-pointer and its length.
    unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_TOS,
            &mut v as *mut i32 as *mut _,
            &mut len,
        )
    };
    v
}
