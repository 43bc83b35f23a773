//! Streaming XML for the ClaML and ICD-10-CM readers: quick-xml events as
//! owned, simple values (element name, attributes, text with entities
//! resolved), each with the 1-based line it starts on, and the open
//! elements kept so that a document that ends early is reported.

use super::source::{error, open_file};
use crate::model::LoadError;
use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Counts the line ends that quick-xml consumes, which gives the line of
/// the next event: quick-xml consumes exactly the bytes of each event.
pub(crate) struct LineCounter<R> {
    inner: R,
    /// Line ends consumed so far.
    newlines: u64,
}

impl<R: std::io::Read> std::io::Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.newlines += count_newlines(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineCounter<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // The buffer is already filled: this returns it without reading.
        if let Ok(buffered) = self.inner.fill_buf() {
            self.newlines += count_newlines(&buffered[..amt.min(buffered.len())]);
        }
        self.inner.consume(amt);
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

/// One XML event, owned.
#[derive(Debug)]
pub(crate) enum XmlEvent {
    /// A start tag (an empty element gives a start then an end).
    Start {
        name: String,
        attributes: Vec<(String, String)>,
    },
    End {
        name: String,
    },
    /// Character data with entities resolved (CDATA included).
    Text(String),
    Eof,
}

/// An XML file read event by event.
pub(crate) struct XmlReader {
    reader: Reader<LineCounter<BufReader<File>>>,
    buf: Vec<u8>,
    pub(crate) name: String,
    /// The line the last event started on.
    pub(crate) line: u64,
    /// Open elements with the line of their start tag.
    open: Vec<(String, u64)>,
}

impl XmlReader {
    pub(crate) fn open(path: &Path, name: String) -> Result<XmlReader, LoadError> {
        let input = open_file(path, &name)?;
        let mut reader = Reader::from_reader(LineCounter {
            inner: input,
            newlines: 0,
        });
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        Ok(XmlReader {
            reader,
            buf: Vec::new(),
            name,
            line: 1,
            open: Vec::new(),
        })
    }

    /// A load error at the line of the last event.
    pub(crate) fn error(&self, message: impl Into<String>) -> LoadError {
        error(&self.name, self.line, message)
    }

    /// How many elements are open (the document element counts).
    pub(crate) fn depth(&self) -> usize {
        self.open.len()
    }

    /// The next event; comments, processing instructions and the like are
    /// skipped.
    pub(crate) fn next_event(&mut self) -> Result<XmlEvent, LoadError> {
        loop {
            self.buf.clear();
            self.line = self.reader.get_ref().newlines + 1;
            let event = self.reader.read_event_into(&mut self.buf);
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    let line = self.reader.get_ref().newlines + 1;
                    return Err(error(&self.name, line, format!("malformed XML: {e}")));
                }
            };
            let decoded = match event {
                // With `expand_empty_elements` an empty element arrives as
                // a start and an end, never as `Empty`.
                Event::Start(start) | Event::Empty(start) => {
                    let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                    let mut attributes = Vec::new();
                    for attribute in start.attributes() {
                        let attribute = attribute.map_err(|e| {
                            error(&self.name, self.line, format!("malformed XML: {e}"))
                        })?;
                        let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
                        let value = attribute
                            .normalized_value(XmlVersion::Implicit1_0)
                            .map_err(|e| {
                                error(
                                    &self.name,
                                    self.line,
                                    format!("malformed XML attribute {key}: {e}"),
                                )
                            })?
                            .into_owned();
                        attributes.push((key, value));
                    }
                    self.open.push((name.clone(), self.line));
                    XmlEvent::Start { name, attributes }
                }
                Event::End(end) => {
                    self.open.pop();
                    XmlEvent::End {
                        name: String::from_utf8_lossy(end.name().as_ref()).into_owned(),
                    }
                }
                Event::Text(text) => XmlEvent::Text(
                    text.xml10_content()
                        .map_err(|e| error(&self.name, self.line, format!("malformed text: {e}")))?
                        .into_owned(),
                ),
                Event::CData(data) => XmlEvent::Text(
                    data.decode()
                        .map_err(|e| error(&self.name, self.line, format!("malformed CDATA: {e}")))?
                        .into_owned(),
                ),
                Event::GeneralRef(reference) => {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => Some(c.to_string()),
                        Ok(None) => reference.decode().ok().and_then(|name| {
                            quick_xml::escape::resolve_predefined_entity(&name).map(str::to_owned)
                        }),
                        Err(_) => None,
                    };
                    let Some(text) = resolved else {
                        let raw = String::from_utf8_lossy(&reference).into_owned();
                        return Err(self.error(format!("unknown entity &{raw};")));
                    };
                    XmlEvent::Text(text)
                }
                Event::Eof => {
                    if let Some((name, line)) = self.open.last() {
                        return Err(error(
                            &self.name,
                            *line,
                            format!("unclosed element <{name}>: the file ends before its end tag"),
                        ));
                    }
                    XmlEvent::Eof
                }
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => continue,
            };
            return Ok(decoded);
        }
    }

    /// Reads the text content of the element just started, up to its end
    /// tag, concatenating the text of nested elements (mixed content).
    pub(crate) fn element_text(&mut self) -> Result<String, LoadError> {
        let depth = self.depth();
        let mut text = String::new();
        loop {
            match self.next_event()? {
                XmlEvent::Text(t) => text.push_str(&t),
                // Block-level children (ClaML `Fragment`, `Para`, list items)
                // are separate phrases; references and terms run inline.
                XmlEvent::Start { name, .. } if !matches!(name.as_str(), "Reference" | "Term") => {
                    text.push(' ')
                }
                XmlEvent::Start { .. } => {}
                XmlEvent::End { .. } if self.depth() < depth => return Ok(text),
                XmlEvent::End { .. } => {}
                XmlEvent::Eof => return Err(self.error("unexpected end of file")),
            }
        }
    }

    /// Skips the element just started, with everything in it.
    pub(crate) fn skip_element(&mut self) -> Result<(), LoadError> {
        let depth = self.depth();
        loop {
            match self.next_event()? {
                XmlEvent::End { .. } if self.depth() < depth => return Ok(()),
                XmlEvent::Eof => return Err(self.error("unexpected end of file")),
                _ => {}
            }
        }
    }
}

/// The value of attribute `key`.
pub(crate) fn attribute<'a>(attributes: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The name of the document element of an XML file, if it is readable.
pub(crate) fn root_element(path: &Path) -> Option<String> {
    let mut reader = XmlReader::open(path, path.display().to_string()).ok()?;
    loop {
        match reader.next_event().ok()? {
            XmlEvent::Start { name, .. } => return Some(name),
            XmlEvent::Eof => return None,
            _ => {}
        }
    }
}
