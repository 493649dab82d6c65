//! Embeds the committed OpenAPI document (`openapi.json`, 1.8 MB of JSON, generated from every
//! route group's declarations and checked current by the suite) gzip-compressed, so the apps
//! function carries ~100 KB for it and serves it without depending on the other groups.

use std::io::Write as _;

fn main() {
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");
    println!("cargo::rerun-if-changed={source}");
    let document = std::fs::read(source).expect("openapi.json at the workspace's root");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&document).expect("compressing in memory");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("openapi.json.gz");
    std::fs::write(out, gz.finish().expect("compressing in memory")).expect("writing OUT_DIR");
}
