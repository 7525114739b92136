//! Counters of everything the engine did, and of everything a cap or bad input cost.
//!
//! One flat struct of `u64`s so shards can be summed and the agent can export every field as a
//! metric without a hand-kept list: [`Stats::fields`] yields `(name, help, value)`.

macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $name:ident ),* $(,)?) => {
        /// Engine counters. All are monotonic except the `*_now` gauges.
        #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
        pub struct Stats {
            $( $(#[doc = $doc])* pub $name: u64, )*
        }

        impl Stats {
            /// Adds another shard's counters to these.
            pub fn merge(&mut self, other: &Stats) {
                $( self.$name += other.$name; )*
            }

            /// Every counter as `(name, help, value)`.
            pub fn fields(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$( (stringify!($name), concat!($($doc),*).trim_ascii(), self.$name), )*]
            }
        }
    };
}

counters! {
    /// Packets handed to the engine.
    packets,
    /// Bytes of packets handed to the engine.
    packet_bytes,
    /// Packets dropped: link layer could not be decoded (truncated, unknown type).
    drop_link,
    /// Packets dropped: IP header invalid or truncated.
    drop_ip,
    /// Packets dropped: not TCP (after tunnels were opened).
    drop_not_tcp,
    /// Packets dropped: TCP header invalid or truncated.
    drop_tcp_header,
    /// Packets whose captured length was shorter than the IP length (payload cut by snaplen).
    truncated_packets,
    /// VXLAN packets decapsulated.
    vxlan_packets,
    /// IPv4 fragments received.
    ip_fragments,
    /// IPv4 datagrams reassembled from fragments.
    ip_reassembled,
    /// IPv4 fragments dropped: defragmentation cap reached (datagrams or bytes).
    drop_defrag_cap,
    /// IPv4 datagrams dropped: not completed before the defragmentation timeout.
    drop_defrag_timeout,
    /// IPv6 packets dropped: fragmented (IPv6 reassembly is not supported).
    drop_ipv6_fragment,
    /// TCP flows created.
    flows_created,
    /// TCP flows removed after both sides closed (FIN/RST).
    flows_closed,
    /// TCP flows removed after the idle timeout.
    flows_idle_expired,
    /// TCP flows evicted because the flow table was full.
    flows_evicted_cap,
    /// TCP flows flushed at the end of input.
    flows_flushed,
    /// Flows currently tracked (gauge).
    flows_now,
    /// Payload bytes delivered in order to the HTTP layer.
    stream_bytes,
    /// Payload bytes received again after they were delivered (retransmissions), ignored.
    retransmitted_bytes,
    /// Overlapping segments whose bytes differed from what was kept (first copy wins).
    overlap_conflicts,
    /// Segments dropped because the direction already had the maximum number of holes.
    drop_segment_holes,
    /// Segments dropped because the flow's out-of-order buffer was full.
    drop_segment_flow_bytes,
    /// Segments dropped because the global out-of-order budget was exhausted.
    drop_segment_total_bytes,
    /// Segments dropped: starting too far beyond the next expected byte.
    drop_segment_window,
    /// Gaps skipped in a stream (data never seen).
    gaps,
    /// Bytes skipped in gaps.
    gap_bytes,
    /// Out-of-order bytes currently buffered (gauge).
    buffered_bytes_now,
    /// Flows whose roles were never determined (no SYN, no HTTP start seen): data discarded.
    unknown_role_bytes,
    /// HTTP exchanges emitted.
    exchanges,
    /// Exchanges emitted without a response (pending).
    exchanges_pending,
    /// Exchanges emitted with a gap in one of their messages.
    exchanges_with_gap,
    /// Exchanges with a body cut at the body cap.
    exchanges_truncated,
    /// Responses that had no request to pair with, dropped.
    orphan_responses,
    /// Requests dropped because the connection had the maximum number of pending requests.
    drop_pending_requests,
    /// Stream bytes skipped while looking for the next message start after an error or gap.
    resync_skipped_bytes,
    /// Heads larger than the head cap.
    head_too_large,
    /// Malformed request or status lines or header blocks.
    malformed_heads,
    /// Body bytes beyond the body cap (counted, not kept).
    body_bytes_over_cap,
    /// Body bytes not kept because the engine-wide body budget was exhausted.
    body_bytes_over_budget,
    /// Body bytes currently held by unfinished exchanges (gauge).
    body_bytes_held_now,
    /// Bodies whose decoded size hit the decompression cap.
    decode_capped,
    /// Bodies whose content coding failed to decode (kept as received).
    decode_errors,
    /// Bytes after a CONNECT or 101 upgrade, not parsed.
    tunnel_bytes,
}
