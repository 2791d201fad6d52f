//! Reading inputs and writing results: the file name goes into every error, `-` and
//! `/dev/stdout` mean standard output.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Upper bound on one input file (policies, allowlists, measurement lists, event logs).
pub const MAX_INPUT_LEN: u64 = 1 << 30;

/// Reads a whole input file, naming it in the error.
pub fn read_input(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if meta.is_dir() {
        anyhow::bail!("the {what} {} is a directory", path.display());
    }
    if meta.len() > MAX_INPUT_LEN {
        anyhow::bail!(
            "the {what} {} is {} bytes, the limit is {MAX_INPUT_LEN}",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display()))
}

/// Reads a text input, refusing bytes that are not UTF-8.
pub fn read_text(path: &Path, what: &str) -> anyhow::Result<String> {
    let bytes = read_input(path, what)?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "the {what} {} is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

fn is_stdout(dest: &str) -> bool {
    dest == "-" || dest == "/dev/stdout"
}

/// Writes `text` to `dest`; on standard output a newline ends it if it has none.
pub fn write_output(dest: &str, text: &str, what: &str) -> anyhow::Result<()> {
    if is_stdout(dest) {
        let mut out = std::io::stdout().lock();
        let newline: &[u8] = if text.ends_with('\n') { b"" } else { b"\n" };
        out.write_all(text.as_bytes())
            .and_then(|()| out.write_all(newline))
            .and_then(|()| out.flush())
            .with_context(|| format!("cannot write the {what} to standard output"))
    } else {
        std::fs::write(dest, text).with_context(|| format!("cannot write the {what} to {dest}"))
    }
}
