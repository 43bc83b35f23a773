//! A quoted CSV file read row by row with the `csv` crate, its columns
//! found by header name, errors at the row's 1-based line (the LOINC and
//! plain CSV readers share it).

use super::source::{error, skip_bom};
use crate::model::LoadError;
use std::fs::File;
use std::io::BufReader;

pub(crate) struct CsvTable {
    reader: csv::Reader<BufReader<File>>,
    pub(crate) name: String,
    /// Lines of the file before the CSV header (plain CSV metadata lines).
    lines_before: u64,
    headers: Vec<String>,
    row: csv::StringRecord,
    /// The line the current row starts on.
    pub(crate) line: u64,
}

impl CsvTable {
    /// Reads the header row from `input` (positioned after `lines_before`
    /// lines, or at the start where a byte-order mark is skipped).
    pub(crate) fn new(
        mut input: BufReader<File>,
        name: String,
        delimiter: u8,
        lines_before: u64,
    ) -> Result<CsvTable, LoadError> {
        if lines_before == 0 {
            skip_bom(&mut input, &name)?;
        }
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(false)
            .from_reader(input);
        let header_line = lines_before + 1;
        let headers = match reader.headers() {
            Ok(headers) => headers.iter().map(|h| h.trim().to_owned()).collect(),
            Err(e) => return Err(error(&name, header_line, csv_message(&e))),
        };
        Ok(CsvTable {
            reader,
            name,
            lines_before,
            headers,
            row: csv::StringRecord::new(),
            line: header_line,
        })
    }

    pub(crate) fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The index of a column, by name without regard to case.
    pub(crate) fn column(&self, name: &str) -> Option<usize> {
        self.headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
    }

    /// The index of a column the file must have.
    pub(crate) fn required(&self, name: &str) -> Result<usize, LoadError> {
        self.column(name).ok_or_else(|| {
            error(
                &self.name,
                self.lines_before + 1,
                format!("missing column {name}"),
            )
        })
    }

    /// Reads the next row; false at the end of the file.
    pub(crate) fn next_row(&mut self) -> Result<bool, LoadError> {
        match self.reader.read_record(&mut self.row) {
            Ok(more) => {
                if more {
                    self.line = self.lines_before + self.row.position().map_or(0, |p| p.line());
                }
                Ok(more)
            }
            Err(e) => {
                let line = e
                    .position()
                    .map_or(self.line + 1, |p| p.line() + self.lines_before);
                Err(error(&self.name, line, csv_message(&e)))
            }
        }
    }

    /// The trimmed value of a column in the current row ("" if absent).
    pub(crate) fn get(&self, index: usize) -> &str {
        self.row.get(index).map_or("", str::trim)
    }

    /// The trimmed value of an optional column, if present and not empty.
    pub(crate) fn get_optional(&self, index: Option<usize>) -> Option<&str> {
        index.map(|i| self.get(i)).filter(|v| !v.is_empty())
    }

    /// A load error at the current row.
    pub(crate) fn error(&self, message: impl Into<String>) -> LoadError {
        error(&self.name, self.line, message)
    }
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("the row has {len} fields, the header {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".to_owned(),
        csv::ErrorKind::Io(e) => format!("cannot read: {e}"),
        _ => format!("malformed CSV: {e}"),
    }
}
