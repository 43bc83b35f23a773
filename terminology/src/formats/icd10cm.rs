//! ICD-10-CM in the tabular XML file of CMS/NCHS (`icd10cm_tabular_YYYY.xml`,
//! root `ICD10CM.tabular`): chapters, sections and nested `diag` elements
//! become concepts, each under its enclosing element; notes become
//! properties (inclusion terms designations); a `sevenChrDef` on a diag
//! generates the seventh-character codes of the leaves below it.
//!
//! Only the open path of elements is held (a frame per open chapter,
//! section or diag), so memory is bounded by the nesting depth.

use super::source::collapse_whitespace;
use super::xml::{XmlEvent, XmlReader, attribute};
use super::{DESIGNATION_USE, Records, Step, Stream};
use crate::model::{
    CodeSystemHeader, Designation, LoadError, PropertyDefinition, PropertyKind, PropertyValue,
    Record,
};
use std::collections::VecDeque;
use std::path::Path;

/// `CodeSystem.url` of ICD-10-CM (terminologies.html#icd10cm).
pub const URL: &str = "http://hl7.org/fhir/sid/icd-10-cm";

/// Note elements that become string properties of the same name.
const NOTE_PROPERTIES: [&str; 8] = [
    "includes",
    "excludes1",
    "excludes2",
    "codeFirst",
    "useAdditionalCode",
    "codeAlso",
    "notes",
    "sevenChrNote",
];

/// Opens a tabular file and reads its header (up to the first chapter).
pub fn open(path: &Path) -> Result<(CodeSystemHeader, Records), LoadError> {
    let mut reader = TabularReader {
        xml: XmlReader::open(path, path.display().to_string())?,
        frames: Vec::new(),
    };
    let mut properties = vec![
        property(
            "kind",
            PropertyKind::Code,
            "chapter, section, category or extension",
        ),
        property(
            "billable",
            PropertyKind::Boolean,
            "a leaf code (valid for claims)",
        ),
        property(
            "notSelectable",
            PropertyKind::Boolean,
            "a chapter or section",
        ),
    ];
    for note in NOTE_PROPERTIES {
        properties.push(property(note, PropertyKind::String, "tabular list note"));
    }
    let mut header = CodeSystemHeader {
        url: URL.to_owned(),
        name: Some("ICD-10-CM".to_owned()),
        title: Some("ICD-10-CM Tabular List of Diseases and Injuries".to_owned()),
        hierarchy_meaning: Some("is-a".to_owned()),
        properties,
        ..CodeSystemHeader::default()
    };
    let mut queue = VecDeque::new();
    loop {
        match reader.xml.next_event()? {
            XmlEvent::Start { name, attributes } => {
                if reader.xml.depth() == 1 {
                    if name != "ICD10CM.tabular" {
                        return Err(reader.xml.error(format!(
                            "not an ICD-10-CM tabular file: the document element is <{name}>"
                        )));
                    }
                } else if name == "version" {
                    let version = collapse_whitespace(&reader.xml.element_text()?);
                    header.version = (!version.is_empty()).then_some(version);
                } else {
                    // The first chapter (or anything else) goes to the reader.
                    reader.start(name, &attributes, &mut queue)?;
                    break;
                }
            }
            XmlEvent::End { .. } if reader.xml.depth() == 0 => break,
            XmlEvent::Eof => return Err(reader.xml.error("empty file: no <ICD10CM.tabular>")),
            XmlEvent::End { .. } | XmlEvent::Text(_) => {}
        }
    }
    Ok((header, Box::new(Stream::with_queue(reader, queue))))
}

fn property(code: &str, kind: PropertyKind, description: &str) -> PropertyDefinition {
    PropertyDefinition {
        code: code.to_owned(),
        uri: None,
        description: Some(description.to_owned()),
        kind,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chapter,
    Section,
    Diag,
}

/// An open chapter, section or diag.
struct Frame {
    kind: Kind,
    /// The chapter's `name`, the section's `id`, the diag's `name`.
    code: Option<String>,
    display: Option<String>,
    line: u64,
    /// The concept has been queued (at its first child or its end).
    queued: bool,
    has_child_diag: bool,
    /// `sevenChrDef` of this diag: (character, meaning).
    seventh: Option<Vec<(char, String)>>,
}

struct TabularReader {
    xml: XmlReader,
    frames: Vec<Frame>,
}

impl TabularReader {
    /// Handles a start tag; nothing else is read except a leaf element.
    fn start(
        &mut self,
        name: String,
        attributes: &[(String, String)],
        out: &mut VecDeque<Record>,
    ) -> Result<(), LoadError> {
        match name.as_str() {
            "chapter" => return self.open_frame(Kind::Chapter, attributes, out),
            "section" => return self.open_frame(Kind::Section, attributes, out),
            "diag" => return self.open_frame(Kind::Diag, attributes, out),
            _ => {}
        }
        let Some(frame) = self.frames.last_mut() else {
            // Introduction and other front matter.
            return self.xml.skip_element();
        };
        match name.as_str() {
            "name" if frame.kind != Kind::Section => {
                frame.code = Some(collapse_whitespace(&self.xml.element_text()?));
            }
            "desc" => frame.display = Some(collapse_whitespace(&self.xml.element_text()?)),
            "sevenChrDef" => {
                let seventh = self.read_seventh_character_definition()?;
                if let Some(frame) = self.frames.last_mut() {
                    frame.seventh = Some(seventh);
                }
            }
            "inclusionTerm" => {
                let code = self.current_code()?;
                for note in self.read_notes()? {
                    out.push_back(Record::Designation {
                        code: code.clone(),
                        designation: Designation {
                            language: Some("en".to_owned()),
                            use_: Some((DESIGNATION_USE.to_owned(), "inclusionTerm".to_owned())),
                            value: note,
                            preferred: false,
                        },
                    });
                }
            }
            note if NOTE_PROPERTIES.contains(&note) => {
                let code = self.current_code()?;
                let property = note.to_owned();
                for note in self.read_notes()? {
                    out.push_back(Record::Property {
                        code: code.clone(),
                        property: property.clone(),
                        value: PropertyValue::String(note),
                    });
                }
            }
            _ => self.xml.skip_element()?,
        }
        Ok(())
    }

    /// Opens a chapter, section or diag, first queuing the enclosing
    /// element's concept (its name and description come before children).
    fn open_frame(
        &mut self,
        kind: Kind,
        attributes: &[(String, String)],
        out: &mut VecDeque<Record>,
    ) -> Result<(), LoadError> {
        if let Some(parent) = self.frames.last_mut() {
            parent.has_child_diag |= kind == Kind::Diag;
        }
        self.queue_open_parent(out)?;
        let code = match kind {
            Kind::Section => match attribute(attributes, "id") {
                Some(id) => Some(id.to_owned()),
                None => return Err(self.xml.error("<section> without an id attribute")),
            },
            _ => None,
        };
        self.frames.push(Frame {
            kind,
            code,
            display: None,
            line: self.xml.line,
            queued: false,
            has_child_diag: false,
            seventh: None,
        });
        Ok(())
    }

    /// The code of the innermost open element, which notes attach to.
    fn current_code(&self) -> Result<String, LoadError> {
        match self.frames.last().and_then(|f| f.code.clone()) {
            Some(code) => Ok(code),
            None => Err(self
                .xml
                .error("a note before the <name> of its chapter or diag")),
        }
    }

    /// The `note` texts of a notes element.
    fn read_notes(&mut self) -> Result<Vec<String>, LoadError> {
        let depth = self.xml.depth();
        let mut notes = Vec::new();
        loop {
            match self.xml.next_event()? {
                XmlEvent::Start { name, .. } if name == "note" => {
                    notes.push(collapse_whitespace(&self.xml.element_text()?));
                }
                XmlEvent::Start { .. } => self.xml.skip_element()?,
                XmlEvent::End { .. } if self.xml.depth() < depth => return Ok(notes),
                XmlEvent::Eof => return Err(self.xml.error("unexpected end of file")),
                _ => {}
            }
        }
    }

    /// The `extension char="A"` entries of a `sevenChrDef`.
    fn read_seventh_character_definition(&mut self) -> Result<Vec<(char, String)>, LoadError> {
        let depth = self.xml.depth();
        let mut extensions = Vec::new();
        loop {
            match self.xml.next_event()? {
                XmlEvent::Start { name, attributes } if name == "extension" => {
                    let character = attribute(&attributes, "char").unwrap_or_default();
                    let mut chars = character.chars();
                    let (Some(c), None) = (chars.next(), chars.next()) else {
                        return Err(self.xml.error(format!(
                            "<extension> needs a char attribute of one character, found {character:?}"
                        )));
                    };
                    extensions.push((c, collapse_whitespace(&self.xml.element_text()?)));
                }
                XmlEvent::Start { .. } => self.xml.skip_element()?,
                XmlEvent::End { .. } if self.xml.depth() < depth => return Ok(extensions),
                XmlEvent::Eof => return Err(self.xml.error("unexpected end of file")),
                _ => {}
            }
        }
    }

    /// Queues the concept of the innermost open frame, once: its name and
    /// description come before its children.
    fn queue_open_parent(&mut self, out: &mut VecDeque<Record>) -> Result<(), LoadError> {
        let Some(index) = self.frames.len().checked_sub(1) else {
            return Ok(());
        };
        if self.frames[index].queued {
            return Ok(());
        }
        let frame = &self.frames[index];
        let Some(code) = frame.code.clone() else {
            let element = match frame.kind {
                Kind::Chapter => "<chapter>",
                Kind::Section => "<section>",
                Kind::Diag => "<diag>",
            };
            return Err(super::source::error(
                &self.xml.name,
                frame.line,
                format!("{element} without a <name>"),
            ));
        };
        let parent = index
            .checked_sub(1)
            .and_then(|i| self.frames[i].code.clone());
        let kind = match frame.kind {
            Kind::Chapter => "chapter",
            Kind::Section => "section",
            Kind::Diag if parent_is_diag(&self.frames, index) => "code",
            Kind::Diag => "category",
        };
        out.push_back(Record::Concept {
            code: code.clone(),
            display: frame.display.clone(),
            definition: None,
            active: true,
        });
        if let Some(parent) = parent {
            out.push_back(Record::IsA {
                child: code.clone(),
                parent,
            });
        }
        push_property(out, &code, "kind", PropertyValue::Code(kind.to_owned()));
        if frame.kind != Kind::Diag {
            push_property(out, &code, "notSelectable", PropertyValue::Boolean(true));
        }
        self.frames[index].queued = true;
        Ok(())
    }

    /// Handles an end tag of a chapter, section or diag.
    fn end(&mut self, out: &mut VecDeque<Record>) -> Result<(), LoadError> {
        self.queue_open_parent(out)?;
        let Some(frame) = self.frames.pop() else {
            return Ok(());
        };
        if frame.kind != Kind::Diag || frame.has_child_diag {
            return Ok(());
        }
        let Some(code) = frame.code else {
            return Ok(());
        };
        // The nearest sevenChrDef on this diag or an enclosing one applies
        // to every leaf below it (ICD-10-CM guidelines I.A.5 and I.B.3).
        let seventh = frame
            .seventh
            .as_ref()
            .or_else(|| self.frames.iter().rev().find_map(|f| f.seventh.as_ref()));
        let Some(seventh) = seventh else {
            push_property(out, &code, "billable", PropertyValue::Boolean(true));
            return Ok(());
        };
        push_property(out, &code, "billable", PropertyValue::Boolean(false));
        let display = frame.display.unwrap_or_default();
        for (character, meaning) in seventh {
            let extended = seventh_character_code(&code, *character);
            out.push_back(Record::Concept {
                code: extended.clone(),
                display: Some(format!("{display}, {meaning}")),
                definition: None,
                active: true,
            });
            out.push_back(Record::IsA {
                child: extended.clone(),
                parent: code.clone(),
            });
            push_property(
                out,
                &extended,
                "kind",
                PropertyValue::Code("extension".to_owned()),
            );
            push_property(out, &extended, "billable", PropertyValue::Boolean(true));
        }
        Ok(())
    }
}

fn parent_is_diag(frames: &[Frame], index: usize) -> bool {
    index
        .checked_sub(1)
        .is_some_and(|i| frames[i].kind == Kind::Diag)
}

fn push_property(out: &mut VecDeque<Record>, code: &str, property: &str, value: PropertyValue) {
    out.push_back(Record::Property {
        code: code.to_owned(),
        property: property.to_owned(),
        value,
    });
}

/// The code with a seventh character: the characters after the category
/// are padded with the placeholder X to six, then the character follows
/// (`S00.01` + `A` → `S00.01XA`, `T07` + `A` → `T07.XXXA`).
pub fn seventh_character_code(code: &str, character: char) -> String {
    let mut plain: String = code.chars().filter(|c| *c != '.').collect();
    while plain.chars().count() < 6 {
        plain.push('X');
    }
    plain.push(character);
    let split = plain.char_indices().nth(3).map_or(plain.len(), |(i, _)| i);
    format!("{}.{}", &plain[..split], &plain[split..])
}

impl Step for TabularReader {
    fn step(&mut self, out: &mut VecDeque<Record>) -> Result<bool, LoadError> {
        loop {
            match self.xml.next_event()? {
                XmlEvent::Start { name, attributes } => self.start(name, &attributes, out)?,
                XmlEvent::End { name } => {
                    if matches!(name.as_str(), "chapter" | "section" | "diag") {
                        self.end(out)?;
                    }
                }
                XmlEvent::Text(_) => {}
                XmlEvent::Eof => return Ok(false),
            }
            if !out.is_empty() {
                return Ok(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::seventh_character_code;

    #[test]
    fn seventh_character_pads_with_placeholder_x() {
        for (code, character, expected) in [
            ("S00.01", 'A', "S00.01XA"),
            ("T07", 'S', "T07.XXXS"),
            ("S72.001", 'D', "S72.001D"),
            ("S02.1", 'B', "S02.1XXB"),
        ] {
            assert_eq!(seventh_character_code(code, character), expected, "{code}");
        }
    }
}
