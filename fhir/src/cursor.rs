//! A small cursor over ASCII text, shared by the date and time parsers of
//! FHIRPath and of search values.

/// A byte cursor over ASCII text.
pub(crate) struct Cursor<'s> {
    pub(crate) s: &'s [u8],
    pub(crate) i: usize,
}

impl Cursor<'_> {
    pub(crate) fn digits(&mut self, n: usize) -> Option<u32> {
        let chunk = self.s.get(self.i..self.i + n)?;
        if !chunk.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(
            chunk
                .iter()
                .fold(0, |acc, b| acc * 10 + u32::from(b - b'0')),
        )
    }
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    pub(crate) fn peek_digit_after(&self, c: u8) -> bool {
        self.s.get(self.i) == Some(&c) && self.s.get(self.i + 1).is_some_and(u8::is_ascii_digit)
    }
    pub(crate) fn done(&self) -> bool {
        self.i == self.s.len()
    }
}
