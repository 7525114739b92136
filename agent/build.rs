//! Builds the eBPF programs (`ebpf/programs`, bpf target, nightly + bpf-linker) with aya-build
//! and leaves the object in `OUT_DIR/akto-tap-tc`, which `capture::ebpf` embeds.
//!
//! Without the eBPF toolchain (or with `AYA_BUILD_SKIP=1`) the agent still builds: the object
//! is empty, and `akto-tap capture` says why eBPF is unavailable and uses libpcap. The reason
//! is compiled in as `AKTO_TAP_EBPF_BUILD`. `scripts/ensure-tools.sh` installs the toolchain.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let programs = manifest.join("../ebpf/programs");
    let common = manifest.join("../ebpf/common");
    println!("cargo:rerun-if-changed={}", common.display());
    let root = programs.to_string_lossy().into_owned();
    let package = aya_build::Package { name: "akto-tap-ebpf", root_dir: &root, ..Default::default() };
    let object = out.join("akto-tap-tc");
    let status = match aya_build::build_ebpf([package], aya_build::Toolchain::default()) {
        Ok(()) if object.exists() => "built".to_string(),
        Ok(()) => "skipped (AYA_BUILD_SKIP)".to_string(),
        Err(e) => {
            println!("cargo:warning=eBPF programs not built ({e:#}); akto-tap capture will use libpcap");
            format!("not built: {e}")
        }
    };
    if !object.exists() {
        if let Err(e) = std::fs::write(&object, b"") {
            println!("cargo:warning=cannot write {}: {e}", object.display());
        }
    }
    let status: String = status.chars().map(|c| if c.is_control() { ' ' } else { c }).take(400).collect();
    println!("cargo:rustc-env=AKTO_TAP_EBPF_BUILD={status}");
}
