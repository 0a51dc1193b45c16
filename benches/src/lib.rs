//! Criterion benches live in `benches/hot_paths.rs`; run `cargo bench -p volley-benches`.
