// The crate's binary is the eBPF object; this empty library lets `cargo metadata` and host
// builds of the workspace see the package.
#![no_std]
