use super::*;
use proptest::prelude::*;

const LIMITS: Limits = Limits { max_holes: 8, max_bytes: 1 << 20, max_window: 1 << 30 };

#[derive(Default)]
struct Out {
    data: Vec<u8>,
    gaps: Vec<u64>,
    ended: bool,
}

fn collect(chunks: Chunks<'_>, o: &mut Out) {
    for c in chunks {
        match c {
            Chunk::Data(d) => o.data.extend_from_slice(&d),
            Chunk::Gap(n) => {
                o.gaps.push(n);
                o.data.extend(std::iter::repeat_n(b'?', n as usize));
            }
            Chunk::End => o.ended = true,
        }
    }
}

fn run(a: &mut Assembler, seq: u32, data: &[u8], fin: bool, budget: &mut Budget, stats: &mut Stats, o: &mut Out) {
    let mut v = Chunks::new();
    a.on_segment(seq, data, fin, LIMITS, budget, stats, &mut v);
    collect(v, o);
}

fn budget() -> Budget {
    Budget { used: 0, cap: 1 << 30 }
}

#[test]
fn in_order_out_of_order_and_retransmissions() {
    let (mut a, mut b, mut s, mut o) = (Assembler::default(), budget(), Stats::default(), Out::default());
    a.on_syn(999);
    run(&mut a, 1006, b"world", false, &mut b, &mut s, &mut o);
    assert_eq!(o.data, b"");
    assert_eq!(a.buffered(), 5);
    run(&mut a, 1000, b"hello ", false, &mut b, &mut s, &mut o);
    assert_eq!(o.data, b"hello world");
    run(&mut a, 1000, b"hello", false, &mut b, &mut s, &mut o);
    assert_eq!(s.retransmitted_bytes, 5);
    assert_eq!(b.used, 0);
    run(&mut a, 1011, b"", true, &mut b, &mut s, &mut o);
    assert!(o.ended);
}

#[test]
fn sequence_wraps_around() {
    let (mut a, mut b, mut s, mut o) = (Assembler::default(), budget(), Stats::default(), Out::default());
    a.on_syn(u32::MAX - 2);
    run(&mut a, 2, b"cd", false, &mut b, &mut s, &mut o);
    run(&mut a, u32::MAX - 1, b"xyab", false, &mut b, &mut s, &mut o);
    assert_eq!(o.data, b"xyabcd");
}

#[test]
fn overlap_keeps_first_copy_and_counts_conflict() {
    let (mut a, mut b, mut s, mut o) = (Assembler::default(), budget(), Stats::default(), Out::default());
    a.on_syn(0);
    run(&mut a, 5, b"AAAA", false, &mut b, &mut s, &mut o);
    run(&mut a, 3, b"BBBBBB", false, &mut b, &mut s, &mut o);
    run(&mut a, 1, b"xx", false, &mut b, &mut s, &mut o);
    assert_eq!(o.data, b"xxBBAAAA");
    assert_eq!(s.overlap_conflicts, 1);
}

#[test]
fn acked_gap_is_skipped_when_later_data_arrives() {
    let (mut a, mut b, mut s, mut o) = (Assembler::default(), budget(), Stats::default(), Out::default());
    a.on_syn(0);
    run(&mut a, 1, b"abc", false, &mut b, &mut s, &mut o);
    a.on_peer_ack(10); // peer got bytes 1..10; we only saw 1..4
    run(&mut a, 10, b"jk", false, &mut b, &mut s, &mut o);
    assert_eq!(o.data, b"abc??????jk");
    assert_eq!(o.gaps, vec![6]);
    assert_eq!(s.gap_bytes, 6);
}

#[test]
fn unacked_hole_waits_and_flush_skips_it() {
    let (mut a, mut b, mut s, mut o) = (Assembler::default(), budget(), Stats::default(), Out::default());
    a.on_syn(0);
    run(&mut a, 5, b"ef", true, &mut b, &mut s, &mut o);
    assert!(!o.ended);
    let mut v = Chunks::new();
    a.flush(&mut b, &mut s, &mut v);
    collect(v, &mut o);
    assert_eq!(o.data, b"????ef");
    assert!(o.ended);
    assert_eq!(b.used, 0);
}

#[test]
fn hole_cap_drops_and_counts() {
    let (mut a, mut b, mut s, mut o) = (Assembler::default(), budget(), Stats::default(), Out::default());
    a.on_syn(0);
    for i in 0..LIMITS.max_holes as u32 + 3 {
        run(&mut a, 10 + i * 10, b"x", false, &mut b, &mut s, &mut o);
    }
    assert_eq!(s.drop_segment_holes, 3);
    assert_eq!(a.buffered(), LIMITS.max_holes);
}

#[test]
fn budget_cap_drops_and_counts() {
    let (mut a, mut s, mut o) = (Assembler::default(), Stats::default(), Out::default());
    let mut b = Budget { used: 0, cap: 4 };
    a.on_syn(0);
    run(&mut a, 10, b"abcdef", false, &mut b, &mut s, &mut o);
    assert_eq!(s.drop_segment_total_bytes, 1);
    assert_eq!(b.used, 0);
}

#[test]
fn far_segment_outside_window_dropped() {
    let (mut a, mut b, mut s, mut o) = (Assembler::default(), budget(), Stats::default(), Out::default());
    a.on_syn(0);
    let lim = Limits { max_window: 100, ..LIMITS };
    let mut v = Chunks::new();
    a.on_segment(500, b"x", false, lim, &mut b, &mut s, &mut v);
    collect(v, &mut o);
    assert_eq!(s.drop_segment_window, 1);
}

proptest! {
    /// Oracle: any segmentation, reordering and duplication of a stream reassembles to the
    /// stream itself (as long as the hole cap is not hit).
    #[test]
    fn reassembles_any_permutation(
        len in 1usize..3000,
        cuts in proptest::collection::vec(1usize..400, 1..40),
        order_seed in any::<u64>(),
        dup in proptest::collection::vec(any::<bool>(), 40),
        isn in any::<u32>(),
    ) {
        let stream: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let mut segs = Vec::new();
        let mut pos = 0;
        let mut ci = 0;
        while pos < len {
            let n = cuts[ci % cuts.len()].min(len - pos);
            segs.push((pos, n));
            if dup[ci % dup.len()] { segs.push((pos, n)); }
            pos += n;
            ci += 1;
        }
        // Deterministic shuffle within windows of 4 to keep the number of holes small.
        let mut x = order_seed | 1;
        for w in segs.chunks_mut(4) {
            for i in (1..w.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                w.swap(i, (x % (i as u64 + 1)) as usize);
            }
        }
        let (mut a, mut b, mut s, mut o) = (Assembler::default(), budget(), Stats::default(), Out::default());
        a.on_syn(isn);
        for (off, n) in segs {
            let seq = isn.wrapping_add(1).wrapping_add(off as u32);
            run(&mut a, seq, &stream[off..off + n], false, &mut b, &mut s, &mut o);
        }
        prop_assert_eq!(o.data, stream);
        prop_assert_eq!(b.used, 0);
        prop_assert_eq!(s.gaps, 0);
    }
}
