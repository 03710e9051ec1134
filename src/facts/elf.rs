//! What kind of executable a file is: ELF (static or dynamic, Go or not) or a `#!` script.
//! Only headers are read (with positioned reads), so a large binary costs a few small reads.

use std::fs::File;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExecKind {
    Elf {
        /// No program interpreter (PT_INTERP): the kernel maps it alone, no ld.so, no libc hooks.
        static_linked: bool,
        /// Built by the Go toolchain: makes raw syscalls, so LD_PRELOAD tricks never apply.
        go: bool,
    },
    Script {
        interpreter: String,
    },
    Other,
}

const PT_INTERP: u32 = 3;
/// Sizes of `Elf32_Phdr`/`Elf64_Phdr` and `Elf32_Shdr`/`Elf64_Shdr`: the kernel execs only files
/// whose program header size is exact, and section tables of another size are not ones we read.
const PHDR_SIZE: [usize; 2] = [32, 56];
const SHDR_SIZE: [usize; 2] = [40, 64];
/// The kernel's limit on program headers (`65536 / sizeof(struct elf_phdr)`, fs/binfmt_elf.c).
const MAX_PHDR_BYTES: usize = 65536;
/// The names of sections are short; a larger string table is not read past this.
const MAX_SHSTRTAB: u64 = 1 << 20;

/// A file whose header said ELF. Every read is checked against the file's length and every
/// field read from a buffer is bounds-checked, so a malformed file gives `None` (and, at the
/// top, `ExecKind::Other`), never a panic or a huge allocation.
struct Reader {
    file: File,
    len: u64,
    le: bool,
    wide: bool,
}

impl Reader {
    /// `len` bytes at `off`; None when they are not all inside the file.
    fn bytes(&self, off: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
        if off.checked_add(len as u64).is_none_or(|end| end > self.len) {
            return Ok(None);
        }
        let mut b = vec![0u8; len];
        crate::os::read_exact_at(&self.file, &mut b, off)?;
        Ok(Some(b))
    }
    /// The unsigned integer of `len` bytes at `off` in `b`, in the file's byte order.
    fn uint(&self, b: &[u8], off: usize, len: usize) -> Option<u64> {
        let field = b.get(off..off.checked_add(len)?)?;
        let fold = |v: u64, byte: &u8| v << 8 | u64::from(*byte);
        Some(if self.le {
            field.iter().rev().fold(0, fold)
        } else {
            field.iter().fold(0, fold)
        })
    }
    /// An address-sized field (4 or 8 bytes) at the offset for this class.
    fn addr(&self, b: &[u8], off32: usize, off64: usize) -> Option<u64> {
        if self.wide {
            self.uint(b, off64, 8)
        } else {
            self.uint(b, off32, 4)
        }
    }
    /// A 16-bit field at the offset for this class, as a size or count.
    fn half(&self, b: &[u8], off32: usize, off64: usize) -> Option<usize> {
        let off = if self.wide { off64 } else { off32 };
        self.uint(b, off, 2).map(|v| v as usize)
    }
    fn class(&self) -> usize {
        usize::from(self.wide)
    }
}

pub fn classify(path: &Path) -> io::Result<ExecKind> {
    let file = super::files::open_regular(path)?;
    let mut head = [0u8; 256];
    let n = crate::os::read_at(&file, &mut head, 0)?;
    let head = &head[..n];
    if head.starts_with(b"#!") {
        let line = head[2..].split(|b| *b == b'\n').next().unwrap_or_default();
        let text = String::from_utf8_lossy(line);
        let mut words = text.split_whitespace();
        let mut interpreter = words.next().unwrap_or("").to_string();
        // `#!/usr/bin/env python3`: the real interpreter is env's argument.
        if interpreter.ends_with("/env")
            && let Some(w) = words.find(|w| !w.starts_with('-'))
        {
            interpreter = w.to_string();
        }
        return Ok(ExecKind::Script { interpreter });
    }
    let (Some(b"\x7fELF"), Some(&class), Some(&data)) = (head.get(..4), head.get(4), head.get(5))
    else {
        return Ok(ExecKind::Other);
    };
    if !matches!(class, 1 | 2) || !matches!(data, 1 | 2) {
        return Ok(ExecKind::Other);
    }
    let r = Reader {
        len: file.metadata()?.len(),
        file,
        le: data == 1,
        wide: class == 2,
    };
    let Some(h) = r.bytes(0, if r.wide { 64 } else { 52 })? else {
        return Ok(ExecKind::Other);
    };
    // Program headers decide what the kernel does with the file: when they cannot be read, it
    // refuses to run it, and so does lowport (Other). Sections only tell Go from the rest.
    Ok(match program_interp(&r, &h)? {
        Some(has_interp) => ExecKind::Elf {
            static_linked: !has_interp,
            go: go_sections(&r, &h)?.unwrap_or(false),
        },
        None => ExecKind::Other,
    })
}

/// Whether a PT_INTERP program header exists; None when the headers are malformed.
fn program_interp(r: &Reader, h: &[u8]) -> io::Result<Option<bool>> {
    let (Some(phoff), Some(size), Some(num)) =
        (r.addr(h, 28, 32), r.half(h, 42, 54), r.half(h, 44, 56))
    else {
        return Ok(None);
    };
    if size != PHDR_SIZE[r.class()] || num == 0 || size * num > MAX_PHDR_BYTES {
        return Ok(None);
    }
    let Some(ph) = r.bytes(phoff, size * num)? else {
        return Ok(None);
    };
    Ok(Some(
        ph.chunks_exact(size)
            .any(|e| r.uint(e, 0, 4) == Some(u64::from(PT_INTERP))),
    ))
}

/// Whether a section is named like the Go toolchain's; None when the sections are malformed.
fn go_sections(r: &Reader, h: &[u8]) -> io::Result<Option<bool>> {
    let (Some(shoff), Some(size), Some(num), Some(strndx)) = (
        r.addr(h, 32, 40),
        r.half(h, 46, 58),
        r.half(h, 48, 60),
        r.half(h, 50, 62),
    ) else {
        return Ok(None);
    };
    // At most 65535 entries of 64 bytes: a bounded read, and only within the file.
    if size != SHDR_SIZE[r.class()] || strndx >= num {
        return Ok(None);
    }
    let Some(sh) = r.bytes(shoff, size * num)? else {
        return Ok(None);
    };
    let Some(strtab) = sh.chunks_exact(size).nth(strndx) else {
        return Ok(None);
    };
    let (Some(str_off), Some(str_size)) = (r.addr(strtab, 16, 24), r.addr(strtab, 20, 32)) else {
        return Ok(None);
    };
    let Some(names) = r.bytes(str_off, str_size.min(MAX_SHSTRTAB) as usize)? else {
        return Ok(None);
    };
    Ok(Some(sh.chunks_exact(size).any(|e| {
        let name = r
            .uint(e, 0, 4)
            .and_then(|at| names.get(at as usize..))
            .and_then(|s| s.split(|b| *b == 0).next());
        matches!(name, Some(b".go.buildinfo") | Some(b".note.go.buildid"))
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF built field by field: two program headers (one PT_INTERP when `interp`),
    /// and three sections (null, the section-name table, and `.note.go.buildid` or `.text`).
    fn tiny_elf(wide: bool, le: bool, interp: bool, go: bool) -> Vec<u8> {
        let put = |b: &mut Vec<u8>, off: usize, len: usize, v: u64| {
            let bytes = v.to_le_bytes();
            let mut f: Vec<u8> = bytes[..len].to_vec();
            if !le {
                f.reverse();
            }
            b[off..off + len].copy_from_slice(&f);
        };
        let (eh, ph, sh, a) = if wide {
            (64, 56, 64, 8)
        } else {
            (52, 32, 40, 4)
        };
        let names: &[u8] = if go {
            b"\0.shstrtab\0.note.go.buildid\0"
        } else {
            b"\0.shstrtab\0.text\0"
        };
        let (phoff, shoff) = (eh, eh + 2 * ph);
        let stroff = shoff + 3 * sh;
        let mut b = vec![0u8; stroff + names.len()];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = if wide { 2 } else { 1 };
        b[5] = if le { 1 } else { 2 };
        b[6] = 1;
        let at = |o32: usize, o64: usize| if wide { o64 } else { o32 };
        put(&mut b, 16, 2, 2); // ET_EXEC
        put(&mut b, at(28, 32), a, phoff as u64);
        put(&mut b, at(32, 40), a, shoff as u64);
        put(&mut b, at(42, 54), 2, ph as u64);
        put(&mut b, at(44, 56), 2, 2);
        put(&mut b, at(46, 58), 2, sh as u64);
        put(&mut b, at(48, 60), 2, 3);
        put(&mut b, at(50, 62), 2, 1);
        put(&mut b, phoff, 4, 1); // PT_LOAD
        put(&mut b, phoff + ph, 4, if interp { 3 } else { 4 });
        let strtab = shoff + sh;
        put(&mut b, strtab, 4, 1);
        put(&mut b, strtab + at(16, 24), a, stroff as u64);
        put(&mut b, strtab + at(20, 32), a, names.len() as u64);
        put(&mut b, shoff + 2 * sh, 4, 11);
        b[stroff..].copy_from_slice(names);
        b
    }

    fn classify_bytes(file: &Path, bytes: &[u8]) -> ExecKind {
        std::fs::write(file, bytes).unwrap();
        classify(file).expect("a readable file always classifies")
    }

    #[test]
    fn classifies_real_files() {
        // This test binary is a dynamic, non-Go ELF on every Linux CI we run.
        let me = std::env::current_exe().unwrap();
        assert_eq!(
            classify(&me).unwrap(),
            ExecKind::Elf {
                static_linked: false,
                go: false
            }
        );
        let t = tempfile::tempdir().unwrap();
        let script = t.path().join("run");
        std::fs::write(&script, "#!/usr/bin/env -S python3 -u\nprint(1)\n").unwrap();
        assert_eq!(
            classify(&script).unwrap(),
            ExecKind::Script {
                interpreter: "python3".into()
            }
        );
        std::fs::write(&script, "plain text").unwrap();
        assert_eq!(classify(&script).unwrap(), ExecKind::Other);
    }

    #[test]
    fn reads_both_classes_and_byte_orders() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("elf");
        for wide in [false, true] {
            for le in [false, true] {
                for (interp, go) in [(false, true), (true, false)] {
                    let got = classify_bytes(&f, &tiny_elf(wide, le, interp, go));
                    let want = ExecKind::Elf {
                        static_linked: !interp,
                        go,
                    };
                    assert_eq!(got, want, "wide {wide} le {le}");
                }
            }
        }
    }

    #[test]
    fn truncated_elf_files_never_panic() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("elf");
        let whole = tiny_elf(true, true, false, true);
        for cut in 0..whole.len() {
            let got = classify_bytes(&f, &whole[..cut]);
            // Without its program headers the kernel would not run it: not an ELF it can exec.
            if cut < 64 + 2 * 56 {
                assert_eq!(got, ExecKind::Other, "cut at {cut}");
            } else {
                assert!(
                    matches!(got, ExecKind::Elf { go: false, .. }),
                    "cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn hostile_header_fields_are_refused_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("elf");
        let set = |off: usize, bytes: &[u8]| {
            let mut b = tiny_elf(true, true, true, true);
            b[off..off + bytes.len()].copy_from_slice(bytes);
            classify_bytes(&f, &b)
        };
        let other = ExecKind::Other;
        let not_go = ExecKind::Elf {
            static_linked: false,
            go: false,
        };
        assert_eq!(set(4, &[3]), other, "unknown class");
        assert_eq!(set(5, &[0]), other, "unknown byte order");
        assert_eq!(
            set(32, &u64::MAX.to_le_bytes()),
            other,
            "phoff at the end of u64"
        );
        assert_eq!(
            set(32, &(1u64 << 40).to_le_bytes()),
            other,
            "phoff past the file"
        );
        assert_eq!(set(54, &[0, 0]), other, "phentsize 0");
        assert_eq!(set(54, &[1, 0]), other, "phentsize 1");
        assert_eq!(set(54, &[0xff, 0xff]), other, "phentsize 65535");
        assert_eq!(set(56, &[0, 0]), other, "no program headers");
        assert_eq!(set(56, &[0xff, 0xff]), other, "phnum 65535");
        assert_eq!(
            set(40, &u64::MAX.to_le_bytes()),
            not_go,
            "shoff at the end of u64"
        );
        assert_eq!(set(58, &[3, 0]), not_go, "shentsize 3");
        assert_eq!(set(60, &[0xff, 0xff]), not_go, "shnum 65535 past the file");
        assert_eq!(set(62, &[9, 0]), not_go, "shstrndx past shnum");
        let strtab = 64 + 2 * 56 + 64;
        assert_eq!(
            set(strtab + 24, &u64::MAX.to_le_bytes()),
            not_go,
            "names offset"
        );
        assert_eq!(
            set(strtab + 32, &u64::MAX.to_le_bytes()),
            not_go,
            "names size"
        );
        let named = 64 + 2 * 56 + 2 * 64;
        assert_eq!(
            set(named, &u32::MAX.to_le_bytes()),
            not_go,
            "name index past the table"
        );
    }

    #[test]
    fn random_corruption_never_panics() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("elf");
        // xorshift: deterministic, so a failure reproduces.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..2000 {
            let mut b = tiny_elf(round % 2 == 0, round % 3 == 0, round % 5 == 0, true);
            for _ in 0..1 + next() % 8 {
                let at = (next() % b.len() as u64) as usize;
                b[at] = next() as u8;
            }
            // Classifying is all that is asked: any verdict, no panic, no error.
            classify_bytes(&f, &b);
        }
    }
}
