//! One RF2 file: tab-separated UTF-8 with a header row, read a row at a
//! time into one reused line buffer. Columns are found by header name, so
//! columns a reader does not know are ignored; values are checked as they
//! are read (identifiers, `active`, `effectiveTime`).

use crate::formats::source::LineReader;
use crate::model::LoadError;
use std::path::Path;

pub(crate) struct Rf2Table {
    lines: LineReader,
    headers: Vec<String>,
    /// Byte ranges of the current row's fields in the line buffer.
    spans: Vec<(usize, usize)>,
}

impl Rf2Table {
    /// Opens a file and reads its header row.
    pub(crate) fn open(path: &Path, name: String) -> Result<Rf2Table, LoadError> {
        let mut lines = LineReader::open(path, name)?;
        if !lines.next_line()? {
            return Err(lines.error("empty file: no header row"));
        }
        let headers = lines
            .line
            .split('\t')
            .map(|h| h.trim().to_owned())
            .collect();
        Ok(Rf2Table {
            lines,
            headers,
            spans: Vec::new(),
        })
    }

    /// The index of a column the file must have.
    pub(crate) fn column(&self, name: &str) -> Result<usize, LoadError> {
        self.headers.iter().position(|h| h == name).ok_or_else(|| {
            crate::formats::source::error(&self.lines.name, 1, format!("missing column {name}"))
        })
    }

    /// Reads the next row (blank lines are skipped); false at the end.
    pub(crate) fn next_row(&mut self) -> Result<bool, LoadError> {
        loop {
            if !self.lines.next_line()? {
                return Ok(false);
            }
            if !self.lines.line.is_empty() {
                break;
            }
        }
        self.spans.clear();
        let mut start = 0;
        for (i, byte) in self.lines.line.bytes().enumerate() {
            if byte == b'\t' {
                self.spans.push((start, i));
                start = i + 1;
            }
        }
        self.spans.push((start, self.lines.line.len()));
        if self.spans.len() != self.headers.len() {
            return Err(self.error(format!(
                "the row has {} fields, the header {}",
                self.spans.len(),
                self.headers.len()
            )));
        }
        Ok(true)
    }

    /// The text of field `index` of the current row.
    pub(crate) fn field(&self, index: usize) -> &str {
        self.spans
            .get(index)
            .map_or("", |(start, end)| &self.lines.line[*start..*end])
    }

    /// An SCTID (or any RF2 identifier) in column `index`.
    pub(crate) fn id(&self, index: usize) -> Result<u64, LoadError> {
        let text = self.field(index);
        match text.parse::<u64>() {
            Ok(id) if text.bytes().all(|b| b.is_ascii_digit()) => Ok(id),
            _ => Err(self.error(format!(
                "bad identifier '{text}' in column {}",
                self.headers[index]
            ))),
        }
    }

    /// The `active` flag (1 or 0).
    pub(crate) fn active(&self, index: usize) -> Result<bool, LoadError> {
        match self.field(index) {
            "1" => Ok(true),
            "0" => Ok(false),
            other => Err(self.error(format!("bad active '{other}' (1 or 0)"))),
        }
    }

    /// The `effectiveTime` (YYYYMMDD) as a FHIR date, `YYYY-MM-DD`.
    pub(crate) fn effective_time(&self, index: usize) -> Result<String, LoadError> {
        let text = self.field(index);
        parse_effective_time(text)
            .ok_or_else(|| self.error(format!("bad effectiveTime '{text}' (YYYYMMDD)")))
    }

    /// A load error at the current row.
    pub(crate) fn error(&self, message: impl Into<String>) -> LoadError {
        self.lines.error(message)
    }
}

/// `YYYYMMDD` → `YYYY-MM-DD`, if it is a plausible date.
pub(crate) fn parse_effective_time(text: &str) -> Option<String> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let month: u32 = text[4..6].parse().ok()?;
    let day: u32 = text[6..8].parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(format!("{}-{}-{}", &text[..4], &text[4..6], &text[6..]))
}

#[cfg(test)]
mod tests {
    use super::parse_effective_time;

    #[test]
    fn effective_times() {
        for (text, expected) in [
            ("20250101", Some("2025-01-01")),
            ("20251231", Some("2025-12-31")),
            ("20251301", None),
            ("20250100", None),
            ("2025-01-01", None),
            ("2025010", None),
            ("", None),
        ] {
            assert_eq!(parse_effective_time(text).as_deref(), expected, "{text}");
        }
    }
}
