//! Builds the eBPF programs (`ebpf/programs`, bpf target, nightly + bpf-linker) with aya-build
//! and leaves their objects in `OUT_DIR`: `akto-tap-tc`, which `capture::ebpf` embeds, and
//! `akto-tap-tls`, which `tls::kernel` embeds.
//!
//! Without the eBPF toolchain (or with `AYA_BUILD_SKIP=1`) the agent still builds: the objects
//! are empty, and `akto-tap capture` says why eBPF is unavailable and uses libpcap. The reason
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
    let objects: Vec<PathBuf> = programs_bins(&programs).into_iter().map(|name| out.join(name)).collect();
    let status = match aya_build::build_ebpf([package], aya_build::Toolchain::default()) {
        Ok(()) if objects.iter().all(|o| o.exists()) => "built".to_string(),
        Ok(()) => "skipped (AYA_BUILD_SKIP)".to_string(),
        Err(e) => {
            println!("cargo:warning=eBPF programs not built ({e:#}); akto-tap capture will use libpcap");
            format!("not built: {e}")
        }
    };
    // Every object the agent embeds must exist, or its `include_bytes!` stops the build.
    for object in objects.iter().filter(|o| !o.exists()) {
        if let Err(e) = std::fs::write(object, b"") {
            println!("cargo:warning=cannot write {}: {e}", object.display());
        }
    }
    let status: String = status.chars().map(|c| if c.is_control() { ' ' } else { c }).take(400).collect();
    println!("cargo:rustc-env=AKTO_TAP_EBPF_BUILD={status}");
}

/// The binaries of the programs crate (its `[[bin]]` names), one object each. Read from its
/// manifest so that a new program cannot be forgotten here: each object missing after a failed
/// build must be written empty, or the agent's `include_bytes!` of it stops the build.
fn programs_bins(programs: &std::path::Path) -> Vec<String> {
    let path = programs.join("Cargo.toml");
    println!("cargo:rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let manifest: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bins = manifest.get("bin").and_then(toml::Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let names: Vec<String> = bins.iter().filter_map(|b| b.get("name")?.as_str()).map(str::to_owned).collect();
    assert!(!names.is_empty(), "{}: no [[bin]] names", path.display());
    names
}
