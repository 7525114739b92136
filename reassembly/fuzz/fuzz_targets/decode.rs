//! Entry point: frame decoding. First byte picks the link type, the rest is the frame; the
//! input is also split into several frames so defragmentation state is exercised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reassembly::{Config, Engine, LinkType, Timestamp};

const LINKS: [LinkType; 7] = [
    LinkType::Ethernet,
    LinkType::Raw,
    LinkType::Null,
    LinkType::Loop,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Nflog,
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let link = LINKS[usize::from(sel) % LINKS.len()];
    let mut engine = Engine::new(Config::default());
    let mut out = Vec::new();
    for (i, frame) in rest.split(|b| *b == 0xFE).enumerate() {
        engine.on_frame(Timestamp(i as u64 * 1000), link, frame, &mut out);
    }
    engine.flush_all(&mut out);
    assert_eq!(engine.stats().body_bytes_held_now, 0);
});
