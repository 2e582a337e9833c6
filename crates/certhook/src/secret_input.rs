//! Secrets given on the command line by file rather than by value: `--secret S` is
//! visible to every user of the machine in the process list (`ps`, `/proc/*/cmdline`),
//! `--secret-file PATH` is not, and `--secret-file -` reads standard input.

use std::io::Read;
use std::path::Path;

use crate::exit::BadInput;

/// The bytes of the file at `path`, or of standard input when it is `-` (what `--file -`
/// and `--secret-file -` mean).
pub fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(path)
    }
}

/// The secret from `value` or from `file` (clap lets at most one through); `None` if neither.
pub fn resolve(value: Option<&str>, file: Option<&Path>, flag: &str) -> Result<Option<String>, BadInput> {
    let Some(path) = file else {
        return Ok(value.map(str::to_string));
    };
    let where_ = if path == Path::new("-") { "standard input".to_string() } else { path.display().to_string() };
    let bytes = read_input(path).map_err(|e| BadInput(format!("{flag}: cannot read {where_}: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| BadInput(format!("{flag}: {where_} is not UTF-8 text")))?;
    // The newline an editor or `echo` leaves is not part of the secret.
    let secret = text.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(&text);
    if secret.is_empty() {
        return Err(BadInput(format!("{flag}: {} is empty", path.display())));
    }
    Ok(Some(secret.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_gives_its_contents_without_the_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "s3cret-with-trailing-space \r\n").unwrap();
        assert_eq!(
            resolve(None, Some(&path), "--secret-file").unwrap().as_deref(),
            Some("s3cret-with-trailing-space ")
        );
        assert_eq!(resolve(Some("v"), None, "--secret-file").unwrap().as_deref(), Some("v"));
        assert_eq!(resolve(None, None, "--secret-file").unwrap(), None);
    }

    #[test]
    fn a_missing_or_empty_file_is_an_error_naming_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let e = resolve(None, Some(&dir.path().join("absent")), "--routing-key-file").unwrap_err();
        assert!(e.0.starts_with("--routing-key-file: cannot read"), "{}", e.0);
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        let e = resolve(None, Some(&dir.path().join("empty")), "--secret-file").unwrap_err();
        assert!(e.0.contains("is empty"), "{}", e.0);
    }
}
