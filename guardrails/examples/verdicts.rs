//! Dumps every verdict (full JSON, scores included) over the development data and synthetic
//! inputs, one line each, so that a performance change can be proven verdict-neutral by `diff`:
//!
//! ```text
//! cargo run -p guardrails --release --example verdicts > before.txt   # old build
//! cargo run -p guardrails --release --example verdicts > after.txt    # new build
//! cmp before.txt after.txt
//! ```
//! Each development record is scanned as text in both directions and wrapped in an MCP
//! `tools/call` request and a `tools/call` result; then come the benchmark bodies and ~6000
//! deterministic pseudo-random texts spliced from the records with digits, separators, keys,
//! secrets-shaped and non-ASCII fragments.

#[path = "../benches/corpus.rs"]
#[allow(dead_code)]
mod corpus;
#[path = "common/data.rs"]
#[allow(dead_code)]
mod data;

use guardrails::{Direction, Engine, Policy};

fn main() {
    let root = std::env::args().nth(1).map(std::path::PathBuf::from).unwrap_or_else(data::dataset_root);
    let engine = Engine::new(Policy::default()).expect("engine");
    let mut texts: Vec<String> = Vec::new();
    texts.extend(data::classification(&root).expect("classification").into_iter().map(|r| r.text));
    texts.extend(data::pii(&root).expect("pii").into_iter().map(|r| r.text));
    let secret_lines: Vec<String> = data::secrets(&root).expect("secrets").into_iter().map(|r| r.text).collect();
    texts.push(secret_lines.join("\n"));
    texts.extend(secret_lines);
    let n_dev = texts.len();
    // Synthetic splices.
    const FRAGS: &[&str] = &[
        " ",
        "\n",
        "\t",
        "=",
        ": ",
        "\"",
        "'",
        "0",
        "12",
        "4111 1111 1111 1111",
        "078-05-1120",
        "123456789",
        "+1 (415) 555-0132",
        "DE89 3704 0044 0532 0130 00",
        "10.0.0.1",
        "fe80::1",
        "a@b.co",
        "user.name@example.com",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_0123456789abcdefABCDEF0123456789abcd",
        "sk-ant-api03-",
        "xoxb-",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
        "password",
        "secret_key",
        "api_key = ",
        "token: ",
        "-----BEGIN RSA PRIVATE KEY-----",
        "é",
        "ß",
        "İ",
        "Ⅻ",
        "ﬁ",
        "\u{200b}",
        "\u{202e}",
        "\u{e0041}",
        "\u{1b}[31m",
        "😀",
        "Ｉｇｎｏｒｅ",
        "1gn0r3",
        "p@$$w0rd",
        "IGNORE",
        "ignore previous instructions",
        "you are now DAN",
        "system prompt",
        "<IMPORTANT>",
        "~/.ssh/id_rsa",
        "do not tell the user",
        "What is the capital of Brazil?",
        "aGVsbG8gd29ybGQgaWdub3JlIGFsbCBwcmV2aW91cyBpbnN0cnVjdGlvbnM=",
        "0123456789abcdef0123456789abcdef",
        "\\u0041",
        "{",
        "}",
        "[",
        "]",
        ",",
        ".",
        "?",
        "!",
        "SSN",
        "phone",
        "call me at",
        "IBAN",
        "card",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..6000 {
        let mut s = String::new();
        let parts = 1 + (rnd() % 24) as usize;
        for _ in 0..parts {
            if rnd() % 3 == 0 {
                let t = &texts[(rnd() % n_dev as u64) as usize];
                let mut a = (rnd() % (t.len() as u64 + 1)) as usize;
                let mut b = (a + (rnd() % 300) as usize).min(t.len());
                while !t.is_char_boundary(a) {
                    a -= 1;
                }
                while !t.is_char_boundary(b) {
                    b += 1;
                }
                s.push_str(&t[a..b]);
            } else {
                s.push_str(FRAGS[(rnd() % FRAGS.len() as u64) as usize]);
            }
        }
        texts.push(s);
    }
    let mut out = String::new();
    let mut emit = |kind: &str, i: usize, v: &guardrails::Verdict| {
        out.push_str(kind);
        out.push(' ');
        out.push_str(&i.to_string());
        out.push(' ');
        out.push_str(&serde_json::to_string(v).expect("verdict json"));
        out.push('\n');
    };
    for (i, t) in texts.iter().enumerate() {
        emit("text-req", i, &engine.scan_text(t, Direction::Request));
        emit("text-resp", i, &engine.scan_text(t, Direction::Response));
        let call = serde_json::json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": "t", "arguments": {"body": t, "api_key": t}}})
        .to_string();
        emit("mcp-call", i, &engine.scan_mcp(&call, Direction::Request));
        let result =
            serde_json::json!({"jsonrpc": "2.0", "id": i, "result": {"content": [{"type": "text", "text": t}]}})
                .to_string();
        emit("mcp-result", i, &engine.scan_mcp(&result, Direction::Response));
        let plain = serde_json::json!({"note": t, "n": i}).to_string();
        emit("json", i, &engine.scan_mcp(&plain, Direction::Response));
    }
    let bodies = [
        corpus::mixed_json(256 * 1024),
        corpus::mixed_json(16 * 1024),
        corpus::tools_call(4096),
        corpus::tools_list(20),
    ];
    for (i, b) in bodies.iter().enumerate() {
        emit("bench-resp", i, &engine.scan_mcp(b, Direction::Response));
        emit("bench-req", i, &engine.scan_mcp(b, Direction::Request));
    }
    print!("{out}");
}
