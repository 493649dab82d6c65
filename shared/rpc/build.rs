//! Compiles OpenCue's vendored protos (`proto/`) into one FileDescriptorSet embedded in the
//! binary, with protox: a pure-Rust compiler, so no `protoc` is needed to build Portico.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from("proto");
    println!("cargo:rerun-if-changed=proto");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("shared/rpc/proto")
        .map(|e| e.expect("proto entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .map(|p| PathBuf::from(p.file_name().expect("file name")))
        .collect();
    files.sort();
    let set = protox::compile(&files, [&dir]).unwrap_or_else(|e| panic!("OpenCue protos do not compile: {e}"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("opencue.fds");
    std::fs::write(out, prost::Message::encode_to_vec(&set)).expect("write the descriptor set");
}
