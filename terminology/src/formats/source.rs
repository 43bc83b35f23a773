//! What every format reader shares: load errors at a file and line, finding
//! a distribution's files by name below a directory, and a line reader that
//! reuses one buffer and tolerates a byte-order mark.

use crate::model::{LoadError, Position};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// The UTF-8 byte-order mark some tools write at the start of a file.
pub(crate) const BOM: &str = "\u{feff}";

/// A load error at `file:line` (line 0 when it concerns the whole file).
pub(crate) fn error(file: &str, line: u64, message: impl Into<String>) -> LoadError {
    LoadError {
        position: Position {
            file: file.to_owned(),
            line,
        },
        message: message.into(),
    }
}

/// The name a file is reported under: its path relative to the input
/// directory, or the path as given when the input is the file itself.
pub(crate) fn display_name(input: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(input).unwrap_or(file);
    if relative.as_os_str().is_empty() {
        file.display().to_string()
    } else {
        relative.display().to_string()
    }
}

/// Opens a file for buffered reading.
pub(crate) fn open_file(path: &Path, name: &str) -> Result<BufReader<File>, LoadError> {
    let file = File::open(path).map_err(|e| error(name, 0, format!("cannot open: {e}")))?;
    Ok(BufReader::with_capacity(256 * 1024, file))
}

/// Every file below `dir` (recursively) whose lower-cased name satisfies
/// `matches`, in path order so that loads are reproducible.
pub(crate) fn find_files(
    dir: &Path,
    matches: &dyn Fn(&str) -> bool,
) -> Result<Vec<PathBuf>, LoadError> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| {
            error(
                &current.display().to_string(),
                0,
                format!("cannot list: {e}"),
            )
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                error(
                    &current.display().to_string(),
                    0,
                    format!("cannot list: {e}"),
                )
            })?;
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if matches(&entry.file_name().to_string_lossy().to_lowercase()) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Reads a text file line by line into one reused buffer, without the line
/// end and without a byte-order mark at the start of the file.
pub(crate) struct LineReader {
    input: BufReader<File>,
    pub(crate) name: String,
    /// 1-based number of the line in `line` (0 before the first).
    pub(crate) number: u64,
    pub(crate) line: String,
}

impl LineReader {
    pub(crate) fn open(path: &Path, name: String) -> Result<LineReader, LoadError> {
        Ok(LineReader {
            input: open_file(path, &name)?,
            name,
            number: 0,
            line: String::new(),
        })
    }

    /// Reads the next line; false at the end of the file.
    pub(crate) fn next_line(&mut self) -> Result<bool, LoadError> {
        self.line.clear();
        let n = self.input.read_line(&mut self.line).map_err(|e| {
            error(
                &self.name,
                self.number + 1,
                format!("cannot read (is it UTF-8?): {e}"),
            )
        })?;
        if n == 0 {
            return Ok(false);
        }
        self.number += 1;
        if self.line.ends_with('\n') {
            self.line.pop();
            if self.line.ends_with('\r') {
                self.line.pop();
            }
        }
        if self.number == 1 && self.line.starts_with(BOM) {
            self.line.drain(..BOM.len());
        }
        Ok(true)
    }

    /// A load error at the current line.
    pub(crate) fn error(&self, message: impl Into<String>) -> LoadError {
        error(&self.name, self.number, message)
    }
}

/// Skips a byte-order mark at the start of a buffered input.
pub(crate) fn skip_bom(input: &mut impl BufRead, name: &str) -> Result<(), LoadError> {
    let start = input
        .fill_buf()
        .map_err(|e| error(name, 1, format!("cannot read: {e}")))?;
    if start.starts_with(BOM.as_bytes()) {
        input.consume(BOM.len());
    }
    Ok(())
}

/// Collapses runs of whitespace into single spaces and trims the ends
/// (XML labels are indented across lines).
pub(crate) fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
