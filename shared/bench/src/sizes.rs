//! Sizes: each function's binary built for this machine (the release profile strips it) and
//! its deployment zip, beside `lambda_http`'s hello world built the same way (`functions.rs`).
//!
//! The zip is made as `cargo lambda build --output-format zip` makes it: one entry,
//! `bootstrap`, deflated (level 6); `--keep-zips` leaves them in `target/<profile>/zips/`.

use std::io::Write as _;

use crate::BenchResult;
use crate::functions::{self, HELLO};
use crate::report::{Better, Report};

/// A zip archive holding `data` as `name` (mode 0755), deflated, as bytes.
pub fn zip(name: &str, data: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
    deflate.write_all(data).expect("writing to memory");
    let packed = deflate.finish().expect("writing to memory");
    let (crc, name_len) = (crc.sum(), name.len() as u16);
    let sizes = |out: &mut Vec<u8>| {
        out.extend(crc.to_le_bytes());
        out.extend((packed.len() as u32).to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
    };
    let mut out = Vec::with_capacity(packed.len() + 128);
    // Local file header: version 2.0, no flags, deflate, a fixed time (2026-11-24 00:00).
    out.extend([0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 8, 0, 0, 0, 0x78, 0x5d]);
    sizes(&mut out);
    out.extend(name_len.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(name.as_bytes());
    out.extend(&packed);
    let central = out.len() as u32;
    // Central directory entry: made by Unix (3), external attributes = mode 0100755 << 16.
    out.extend([0x50, 0x4b, 0x01, 0x02, 20, 3, 20, 0, 0, 0, 8, 0, 0, 0, 0x78, 0x5d]);
    sizes(&mut out);
    out.extend(name_len.to_le_bytes());
    out.extend([0u8; 8]); // extra, comment, disk, internal attributes
    out.extend((0o100755u32 << 16).to_le_bytes());
    out.extend(0u32.to_le_bytes()); // the local header's offset
    out.extend(name.as_bytes());
    let central_len = out.len() as u32 - central;
    // End of central directory.
    out.extend([0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0]);
    out.extend(central_len.to_le_bytes());
    out.extend(central.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

pub async fn bench(report: &mut Report) -> BenchResult {
    let chosen = functions::selected()?;
    let profiles = functions::profiles();
    println!("\nSizes: each function's binary (host build, stripped) and its zip (profiles: {})", profiles.join(", "));
    for profile in &profiles {
        functions::build(profile, &chosen)?;
    }
    let keep = std::env::args().any(|a| a == "--keep-zips");
    let mib = |bytes: usize| bytes as f64 / (1024.0 * 1024.0);
    // (profile, bin) -> (binary, zip) in bytes.
    let mut sizes: Vec<(String, &str, usize, usize)> = Vec::new();
    let order = chosen.iter().filter(|f| f.bin == HELLO).chain(chosen.iter().filter(|f| f.bin != HELLO));
    for f in order {
        for profile in &profiles {
            let path = functions::path(profile, f.bin)?;
            let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let zipped = zip("bootstrap", &data);
            if keep {
                let dir = path.parent().ok_or("a directory")?.join("zips").join(f.bin);
                std::fs::create_dir_all(&dir)?;
                std::fs::write(dir.join("bootstrap.zip"), &zipped)?;
            }
            let (binary, archive) = (data.len(), zipped.len());
            println!("    {:<11} [{profile}] binary {:.2} MiB, zip {:.2} MiB", f.bin, mib(binary), mib(archive));
            let base = sizes.iter().find(|(p, b, ..)| p == "release" && *b == f.bin && profile != "release");
            let (baseline_name, base_binary, base_zip) = match base {
                Some((_, _, b, z)) => (format!("{} [release]", f.bin), *b, *z),
                None => {
                    let hello = sizes.iter().find(|(p, b, ..)| p == profile && *b == HELLO);
                    let (b, z) = hello.map_or((binary, archive), |(_, _, b, z)| (*b, *z));
                    (format!("{HELLO} [{profile}]"), b, z)
                }
            };
            let label = |what: &str| format!("{} [{profile}]: {what}", f.bin);
            report.add("size", label("binary"), mib(binary), "MiB", Better::Lower, &baseline_name, mib(base_binary));
            report.add("size", label("zip"), mib(archive), "MiB", Better::Lower, &baseline_name, mib(base_zip));
            sizes.push((profile.clone(), f.bin, binary, archive));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The archive reads back (checked with Python's zipfile when it is here).
    #[test]
    fn the_zip_is_a_zip() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let bytes = zip("bootstrap", &data);
        assert!(bytes.len() < data.len() / 10, "deflated");
        let path = std::env::temp_dir().join(format!("portico-zip-test-{}.zip", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let script = "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); i = z.getinfo('bootstrap'); \
                      assert z.testzip() is None; assert i.external_attr >> 16 == 0o100755; print(i.file_size)";
        if let Ok(out) = std::process::Command::new("python3").args(["-c", script]).arg(&path).output() {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "100000");
        }
        std::fs::remove_file(&path).unwrap();
    }
}
