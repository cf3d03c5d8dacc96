//! Build script: rebuilds the crate when a rule file is added under `rules/`.
//!
//! The shipped rules are embedded with `include_dir!`. Its files reach the
//! binary through `include_bytes!`, so cargo notices when one of them is
//! edited, but on stable Rust the macro cannot tell cargo that it listed the
//! folders: a new rule file would be left out of the binary until something
//! else forced a rebuild. Watching the folder closes that gap.

fn main() {
    // A directory here is scanned recursively for changes.
    println!("cargo:rerun-if-changed=rules");
}
