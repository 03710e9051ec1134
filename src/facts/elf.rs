//! What kind of executable a file is: ELF (static or dynamic, Go or not) or a `#!` script.
//! Only headers are read (with positioned reads), so a large binary costs a few small reads.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
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

struct Reader {
    file: File,
    le: bool,
    wide: bool,
}

impl Reader {
    fn bytes(&self, off: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut b = vec![0u8; len];
        self.file.read_exact_at(&mut b, off)?;
        Ok(b)
    }
    fn uint(&self, b: &[u8]) -> u64 {
        let mut v = 0u64;
        for (i, byte) in b.iter().enumerate() {
            let shift = if self.le { i } else { b.len() - 1 - i } * 8;
            v |= u64::from(*byte) << shift;
        }
        v
    }
    /// A word (u32) or address-sized (u32/u64) field at `off` in `b`.
    fn field(&self, b: &[u8], off32: usize, off64: usize, addr: bool) -> u64 {
        let (off, len) = match (self.wide, addr) {
            (true, true) => (off64, 8),
            (true, false) => (off64, 4),
            (false, _) => (off32, 4),
        };
        self.uint(&b[off..off + len])
    }
    fn half(&self, b: &[u8], off32: usize, off64: usize) -> u64 {
        let off = if self.wide { off64 } else { off32 };
        self.uint(&b[off..off + 2])
    }
}

pub fn classify(path: &Path) -> io::Result<ExecKind> {
    let file = File::open(path)?;
    let mut head = [0u8; 256];
    let n = file.read_at(&mut head, 0)?;
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
    if n < 52 || &head[..4] != b"\x7fELF" {
        return Ok(ExecKind::Other);
    }
    let r = Reader {
        file,
        le: head[5] == 1,
        wide: head[4] == 2,
    };
    let h = r.bytes(0, if r.wide { 64 } else { 52 })?;
    let phoff = r.field(&h, 28, 32, true);
    let shoff = r.field(&h, 32, 40, true);
    let phentsize = r.half(&h, 42, 54) as usize;
    let phnum = r.half(&h, 44, 56) as usize;
    let shentsize = r.half(&h, 46, 58) as usize;
    let shnum = r.half(&h, 48, 60) as usize;
    let shstrndx = r.half(&h, 50, 62) as usize;

    let mut static_linked = true;
    if phentsize > 0 && phnum < 4096 {
        let ph = r.bytes(phoff, phentsize * phnum)?;
        static_linked = !ph
            .chunks(phentsize)
            .any(|e| r.uint(&e[0..4]) as u32 == PT_INTERP);
    }
    let go = shentsize > 0 && shnum < 65536 && shstrndx < shnum && {
        let sh = r.bytes(shoff, shentsize * shnum)?;
        let strtab = &sh[shstrndx * shentsize..(shstrndx + 1) * shentsize];
        let (str_off, str_size) = (r.field(strtab, 16, 24, true), r.field(strtab, 20, 32, true));
        let names = r.bytes(str_off, str_size.min(1 << 20) as usize)?;
        sh.chunks(shentsize).any(|e| {
            let at = r.uint(&e[0..4]) as usize;
            let name = names.get(at..).and_then(|s| s.split(|b| *b == 0).next());
            matches!(name, Some(b".go.buildinfo") | Some(b".note.go.buildid"))
        })
    };
    Ok(ExecKind::Elf { static_linked, go })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
