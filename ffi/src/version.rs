//! Versions: of the library, and of the ABI it implements.

use crate::types::VOLLEY_ABI_VERSION;
use std::ffi::c_char;

/// The ABI version of the loaded library. A program checks it against the
/// header it was built with: `volley_abi_version() == VOLLEY_ABI_VERSION`.
///
/// Ownership: nothing.
/// Threads: any thread.
/// Returns: the version.
#[unsafe(no_mangle)]
pub extern "C" fn volley_abi_version() -> u32 {
    VOLLEY_ABI_VERSION
}

/// The library's version, e.g. "0.1.0".
///
/// Ownership: a static string; never free it.
/// Threads: any thread.
/// Returns: the version.
#[unsafe(no_mangle)]
pub extern "C" fn volley_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
