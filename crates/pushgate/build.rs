//! Rebuilds the gateway when anything under `web/` changes: the pages are compiled in
//! (`src/web.rs`), and a file added there is not otherwise seen by cargo.

fn main() {
    println!("cargo::rerun-if-changed=../../web");
}
