//! Is an ELF executable static? Enough of the ELF format to tell, for `supervisor install`.
//!
//! Theory of operation: the kernel runs a dynamically linked executable by first loading the
//! program interpreter named in its `PT_INTERP` program header (`/lib64/ld-linux-x86-64.so.2`
//! for glibc); in an image without that file, `execve` fails with ENOENT ("No such file or
//! directory"), which names the binary, not the missing loader. The interpreter then loads every
//! library named by a `DT_NEEDED` entry of the `PT_DYNAMIC` segment. So an executable is static
//! when it has no `PT_INTERP` and no `DT_NEEDED`. A static-pie has a `PT_DYNAMIC` (for its own
//! relocations) but needs nothing: static too.
//!
//! [`linkage`] is a pure function over the file's bytes; it never trusts an offset without
//! bounds-checking it, so a truncated or hostile file gives an [`ElfError`], never a panic.

use std::fmt;

/// How an executable is linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linkage {
    /// No program interpreter and no shared libraries: runs in an empty image.
    Static,
    /// Needs a loader and/or shared libraries at run time.
    Dynamic {
        /// The `PT_INTERP` path, if any.
        interpreter: Option<String>,
        /// The `DT_NEEDED` names (as far as they can be resolved; `?` otherwise).
        needed: Vec<String>,
    },
}

impl fmt::Display for Linkage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Linkage::Static => f.write_str("statically linked"),
            Linkage::Dynamic {
                interpreter,
                needed,
            } => {
                f.write_str("dynamically linked")?;
                let mut parts = Vec::new();
                if let Some(i) = interpreter {
                    parts.push(format!("loader {i}"));
                }
                if !needed.is_empty() {
                    parts.push(format!("needs {}", needed.join(", ")));
                }
                if !parts.is_empty() {
                    write!(f, " ({})", parts.join("; "))?;
                }
                Ok(())
            }
        }
    }
}

/// Why the bytes could not be read as an ELF executable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF file")]
    NotElf,
    #[error("unsupported ELF class or byte order")]
    Unsupported,
    #[error("truncated or corrupt ELF {0}")]
    Corrupt(&'static str),
}

const PT_LOAD: u64 = 1;
const PT_DYNAMIC: u64 = 2;
const PT_INTERP: u64 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;

/// Bounds-checked reads of the fields of a 32- or 64-bit, little- or big-endian ELF file.
struct Reader<'a> {
    b: &'a [u8],
    wide: bool,
    big: bool,
}

impl Reader<'_> {
    /// The unsigned integer of `len` bytes at `at`, in the file's byte order.
    fn uint(&self, at: usize, len: usize) -> Option<u64> {
        let bytes = self.b.get(at..at.checked_add(len)?)?;
        let push = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
        Some(if self.big {
            bytes.iter().fold(0, push)
        } else {
            bytes.iter().rev().fold(0, push)
        })
    }

    /// The size of an address, offset or size field (`Elf32_Addr`/`Elf64_Addr`).
    fn word_len(&self) -> usize {
        if self.wide { 8 } else { 4 }
    }

    fn word(&self, at: usize) -> Option<u64> {
        self.uint(at, self.word_len())
    }

    /// A NUL-terminated string at `at` (lossy, at most 4 KiB).
    fn cstr(&self, at: u64) -> Option<String> {
        let rest = self.b.get(usize::try_from(at).ok()?..)?;
        let rest = &rest[..rest.len().min(4096)];
        let end = rest.iter().position(|&c| c == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

/// One program header, the fields this module uses.
struct Segment {
    kind: u64,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// How the executable in `bytes` is linked.
pub fn linkage(bytes: &[u8]) -> Result<Linkage, ElfError> {
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Err(ElfError::NotElf);
    }
    let wide = match bytes.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err(ElfError::Unsupported),
    };
    let big = match bytes.get(5) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err(ElfError::Unsupported),
    };
    let r = Reader {
        b: bytes,
        wide,
        big,
    };
    let segments = segments(&r).ok_or(ElfError::Corrupt("program headers"))?;

    let interpreter = match segments.iter().find(|s| s.kind == PT_INTERP) {
        Some(s) => Some(
            r.cstr(s.offset)
                .ok_or(ElfError::Corrupt("interpreter path"))?,
        ),
        None => None,
    };
    let needed = match segments.iter().find(|s| s.kind == PT_DYNAMIC) {
        Some(d) => needed(&r, d, &segments).ok_or(ElfError::Corrupt("dynamic section"))?,
        None => Vec::new(),
    };
    Ok(if interpreter.is_none() && needed.is_empty() {
        Linkage::Static
    } else {
        Linkage::Dynamic {
            interpreter,
            needed,
        }
    })
}

fn segments(r: &Reader) -> Option<Vec<Segment>> {
    // e_phoff, e_phentsize and e_phnum sit at different offsets in the two classes, and so do the
    // fields of a program header: (offset, vaddr, filesz) here.
    let (phoff, phentsize, phnum) = if r.wide {
        (r.uint(0x20, 8)?, r.uint(0x36, 2)?, r.uint(0x38, 2)?)
    } else {
        (r.uint(0x1c, 4)?, r.uint(0x2a, 2)?, r.uint(0x2c, 2)?)
    };
    let fields = if r.wide { [8, 16, 32] } else { [4, 8, 16] };
    let phoff = usize::try_from(phoff).ok()?;
    let phentsize = usize::try_from(phentsize).ok()?;
    if phnum > 0 && phentsize < fields[2] + r.word_len() {
        return None;
    }
    (0..usize::try_from(phnum).ok()?)
        .map(|i| {
            let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
            Some(Segment {
                kind: r.uint(at, 4)?,
                offset: r.word(at + fields[0])?,
                vaddr: r.word(at + fields[1])?,
                filesz: r.word(at + fields[2])?,
            })
        })
        .collect()
}

/// The `DT_NEEDED` names of the dynamic segment `dynamic`. Names are offsets into the string
/// table, which `DT_STRTAB` gives as a virtual address: a `PT_LOAD` segment maps it to the file.
fn needed(r: &Reader, dynamic: &Segment, segments: &[Segment]) -> Option<Vec<String>> {
    let start = usize::try_from(dynamic.offset).ok()?;
    let end = start.checked_add(usize::try_from(dynamic.filesz).ok()?)?;
    let mut names = Vec::new();
    let mut strtab = None;
    // Each entry is a tag and a value, both address-sized.
    for at in (start..end).step_by(2 * r.word_len()) {
        let tag = r.word(at)?;
        let val = r.word(at + r.word_len())?;
        match tag {
            DT_NULL => break,
            DT_NEEDED => names.push(val),
            DT_STRTAB => strtab = Some(val),
            _ => {}
        }
    }
    let table = strtab.and_then(|addr| {
        segments
            .iter()
            .find(|s| s.kind == PT_LOAD && addr >= s.vaddr && addr - s.vaddr < s.filesz)
            .and_then(|s| s.offset.checked_add(addr - s.vaddr))
    });
    Some(
        names
            .into_iter()
            .map(|n| {
                table
                    .and_then(|t| r.cstr(t.checked_add(n)?))
                    .unwrap_or_else(|| "?".into())
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal little-endian ELF64 image: the header, `phdrs` (kind, offset, vaddr, filesz)
    /// and `tail` appended at offset 0x200.
    fn elf64(phdrs: &[(u32, u64, u64, u64)], tail: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 0x200];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, &(kind, offset, vaddr, filesz)) in phdrs.iter().enumerate() {
            let at = 64 + i * 56;
            b[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            b[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
            b[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
            b[at + 32..at + 40].copy_from_slice(&filesz.to_le_bytes());
        }
        b.extend_from_slice(tail);
        b
    }

    fn dyn_entries(entries: &[(u64, u64)]) -> Vec<u8> {
        entries
            .iter()
            .flat_map(|(t, v)| [t.to_le_bytes(), v.to_le_bytes()].concat())
            .collect()
    }

    const LOAD: u32 = PT_LOAD as u32;
    const DYNAMIC: u32 = PT_DYNAMIC as u32;
    const INTERP: u32 = PT_INTERP as u32;

    #[test]
    fn no_interpreter_and_no_dynamic_segment_is_static() {
        assert_eq!(
            linkage(&elf64(&[(LOAD, 0, 0, 0x200)], &[])),
            Ok(Linkage::Static)
        );
    }

    #[test]
    fn a_static_pie_has_a_dynamic_segment_but_needs_nothing() {
        let d = dyn_entries(&[(7, 0x1000), (DT_NULL, 0)]);
        let b = elf64(&[(DYNAMIC, 0x200, 0x200, d.len() as u64)], &d);
        assert_eq!(linkage(&b), Ok(Linkage::Static));
    }

    #[test]
    fn interpreter_and_needed_libraries_are_named() {
        // The string table at file offset 0x200 (vaddr 0x400200), then the dynamic entries; the
        // entry after DT_NULL is inside the segment but must not count.
        let strings = b"\0libc.so.6\0libm.so.6\0/lib/ld.so\0";
        let mut tail = strings.to_vec();
        let dyn_at = 0x200 + tail.len() as u64;
        tail.extend(dyn_entries(&[
            (DT_NEEDED, 1),
            (DT_STRTAB, 0x400200),
            (DT_NEEDED, 11),
            (DT_NULL, 0),
            (DT_NEEDED, 99),
        ]));
        let b = elf64(
            &[
                (INTERP, 0x200 + 21, 0, 11),
                (LOAD, 0, 0x400000, 0x400),
                (DYNAMIC, dyn_at, 0, 80),
            ],
            &tail,
        );
        let l = linkage(&b).unwrap();
        assert_eq!(
            l,
            Linkage::Dynamic {
                interpreter: Some("/lib/ld.so".into()),
                needed: vec!["libc.so.6".into(), "libm.so.6".into()],
            }
        );
        assert_eq!(
            l.to_string(),
            "dynamically linked (loader /lib/ld.so; needs libc.so.6, libm.so.6)"
        );
    }

    #[test]
    fn unresolvable_names_still_count_as_needed() {
        let d = dyn_entries(&[(DT_NEEDED, 5), (DT_NULL, 0)]);
        let b = elf64(&[(DYNAMIC, 0x200, 0, d.len() as u64)], &d);
        assert_eq!(
            linkage(&b),
            Ok(Linkage::Dynamic {
                interpreter: None,
                needed: vec!["?".into()]
            })
        );
    }

    #[test]
    fn a_big_endian_32_bit_header_is_read_in_its_own_layout() {
        // e_phoff 52, e_phentsize 32, e_phnum 1; one PT_INTERP at offset 0x60.
        let mut b = vec![0u8; 0x70];
        b[..6].copy_from_slice(b"\x7fELF\x01\x02");
        b[0x1c..0x20].copy_from_slice(&52u32.to_be_bytes());
        b[0x2a..0x2c].copy_from_slice(&32u16.to_be_bytes());
        b[0x2c..0x2e].copy_from_slice(&1u16.to_be_bytes());
        b[52..56].copy_from_slice(&3u32.to_be_bytes());
        b[56..60].copy_from_slice(&0x60u32.to_be_bytes());
        b[0x60..0x6a].copy_from_slice(b"/lib/ld.1\0");
        assert_eq!(
            linkage(&b),
            Ok(Linkage::Dynamic {
                interpreter: Some("/lib/ld.1".into()),
                needed: vec![]
            })
        );
    }

    #[test]
    fn garbage_truncated_and_hostile_offsets_are_errors_not_panics() {
        assert_eq!(linkage(b""), Err(ElfError::NotElf));
        assert_eq!(linkage(b"#!/bin/sh\n"), Err(ElfError::NotElf));
        assert_eq!(linkage(b"\x7fELF\x03\x01"), Err(ElfError::Unsupported));
        let whole = elf64(&[(INTERP, 0x200, 0, 8)], b"/ld.so\0");
        for cut in 0..whole.len() {
            let _ = linkage(&whole[..cut]);
        }
        let far = u64::MAX - 3;
        for phdr in [(INTERP, far, 0, 8), (DYNAMIC, far, 0, far)] {
            assert!(matches!(
                linkage(&elf64(&[phdr], &[])),
                Err(ElfError::Corrupt(_))
            ));
        }
        let mut huge_phoff = elf64(&[], &[]);
        huge_phoff[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        huge_phoff[0x38] = 1;
        assert_eq!(
            linkage(&huge_phoff),
            Err(ElfError::Corrupt("program headers"))
        );
    }

    // Real files. This test binary is built by the same cargo configuration as `supervisor`
    // (the musl target of .cargo/config.toml), so it must be static like the binary.
    #[test]
    fn this_test_binary_is_static() {
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        assert_eq!(linkage(&bytes), Ok(Linkage::Static), "{}", exe.display());
    }

    #[test]
    fn the_hosts_bin_true_is_dynamic() {
        let bytes = std::fs::read("/bin/true").unwrap();
        let Ok(Linkage::Dynamic {
            interpreter,
            needed,
        }) = linkage(&bytes)
        else {
            panic!("/bin/true: {:?}", linkage(&bytes));
        };
        let interpreter = interpreter.expect("an interpreter");
        assert!(interpreter.starts_with("/lib"), "{interpreter}");
        assert!(needed.iter().any(|n| n.starts_with("libc.")), "{needed:?}");
    }
}
