//! Links the bare-metal image with the hypervisor's linker script; host
//! builds (the library's tests) link nothing special.
fn main() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../linker/hypervisor.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=0x1000");
        println!("cargo:rustc-link-arg-bins=-static");
        // Position-independent code at a fixed address (see kernel/build.rs).
        println!("cargo:rustc-link-arg-bins=--no-pie");
    }
}
