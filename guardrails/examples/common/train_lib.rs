//! Training of the injection model: logistic regression with max-over-windows pooling
//! (multiple-instance learning), plain SGD, deterministic order. Shared by `examples/train.rs` and
//! the held-out evaluation.

use guardrails::model::{features, windows};
use guardrails::normalize;

use super::data::Record;

/// One record as feature buckets per window.
pub struct Prepared {
    pub windows: Vec<Vec<u32>>,
    pub label: f32,
}

/// Hyper-parameters (fixed; see README).
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub bits: u8,
    pub epochs: usize,
    pub lr: f32,
    pub l2: f32,
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params { bits: 16, epochs: 24, lr: 0.5, l2: 1e-4, seed: 0x5EED }
    }
}

pub fn prepare(records: &[Record], bits: u8) -> Vec<Prepared> {
    let mask = (1u32 << bits) - 1;
    records
        .iter()
        .map(|r| {
            let n = normalize(&r.text).text;
            let wins: Vec<(usize, usize)> = windows(n.len()).collect();
            let mut per: Vec<Vec<u32>> = vec![Vec::new(); wins.len()];
            let len = n.len();
            features(&n, |pos, h| {
                for (k, &(s, e)) in wins.iter().enumerate() {
                    let inside = pos >= s && (pos < e || (e == len && pos <= len));
                    if inside {
                        per[k].push(h & mask);
                    }
                }
            });
            Prepared { windows: per, label: if r.positive() { 1.0 } else { 0.0 } }
        })
        .collect()
}

fn window_z(w: &[f32], bias: f32, feats: &[u32]) -> f32 {
    if feats.is_empty() {
        return bias;
    }
    let s: f32 = feats.iter().map(|&f| w[f as usize]).sum();
    bias + s / (feats.len() as f32).sqrt()
}

/// Trains on `data[idx]`; returns (bias, weights).
pub fn train(data: &[Prepared], idx: &[usize], p: Params) -> (f32, Vec<f32>) {
    let mut w = vec![0f32; 1 << p.bits];
    let mut bias = 0f32;
    let pos = idx.iter().filter(|&&i| data[i].label > 0.5).count().max(1) as f32;
    let neg = (idx.len() as f32 - pos).max(1.0);
    let total = idx.len() as f32;
    let (wp, wn) = (total / (2.0 * pos), total / (2.0 * neg));
    let mut order: Vec<usize> = idx.to_vec();
    let mut state = p.seed;
    for epoch in 0..p.epochs {
        // Fisher–Yates with xorshift64: reproducible.
        for i in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let j = (state % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let lr = p.lr / (1.0 + epoch as f32).sqrt();
        for &i in &order {
            let d = &data[i];
            let (best, z) = d
                .windows
                .iter()
                .enumerate()
                .map(|(k, f)| (k, window_z(&w, bias, f)))
                .fold((0, f32::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
            let prob = 1.0 / (1.0 + (-z).exp());
            let g = (prob - d.label) * if d.label > 0.5 { wp } else { wn };
            let feats = &d.windows[best];
            let scale = if feats.is_empty() { 0.0 } else { 1.0 / (feats.len() as f32).sqrt() };
            for &f in feats {
                let wf = &mut w[f as usize];
                *wf -= lr * (g * scale + p.l2 * *wf);
            }
            bias -= lr * g * 0.1;
        }
    }
    (bias, w)
}
