//! The shared library's SONAME: `libvolley.so.0`, the ABI's major version
//! (programs linked with -lvolley record it; scripts/install.sh installs
//! the file under that name with the unversioned symlink beside it).

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvolley.so.0");
    }
}
