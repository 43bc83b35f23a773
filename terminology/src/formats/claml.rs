//! WHO ICD-10 in ClaML 2.0 (the Classification Markup Language of
//! EN 14463): every `Class` (chapter, block, category) becomes a concept,
//! read one class at a time. `Title` gives the name and version, `Meta
//! name="lang"` the language of labels without `xml:lang`, `RubricKinds`
//! the string properties. The codes that modifiers make (`ModifierClass`,
//! `ModifiedBy`, `ExcludeModifier`) follow the classes when the file ends
//! (see `modifiers`).

mod modifier_elements;
mod modifiers;

use super::source::{collapse_whitespace, error};
use super::xml::{XmlEvent, XmlReader, attribute};
use super::{DESIGNATION_USE, Records, Step, Stream};
use crate::model::{
    CodeSystemHeader, Designation, LoadError, PropertyDefinition, PropertyKind, PropertyValue,
    Record,
};
use modifiers::{ClassInfo, Modifiers};
use std::collections::VecDeque;
use std::path::Path;

/// `CodeSystem.url` of WHO ICD-10 (terminologies.html#icd10).
pub const URL: &str = "http://hl7.org/fhir/sid/icd-10";

/// Rubric kinds that become designations (with [`DESIGNATION_USE`]).
const DESIGNATION_KINDS: [&str; 2] = ["inclusion", "preferredLong"];

/// Opens a ClaML file and reads its header (everything before the first
/// `Class`).
pub fn open(path: &Path) -> Result<(CodeSystemHeader, Records), LoadError> {
    let mut reader = ClamlReader {
        xml: XmlReader::open(path, path.display().to_string())?,
        language: None,
        modifiers: Modifiers::new(),
        classes: Vec::new(),
        finished: false,
    };
    let mut header = CodeSystemHeader {
        url: URL.to_owned(),
        name: Some("ICD-10".to_owned()),
        hierarchy_meaning: Some("is-a".to_owned()),
        properties: vec![
            property(
                "kind",
                PropertyKind::Code,
                "ClaML class kind: chapter, block or category",
            ),
            property("usage", PropertyKind::Code, "ClaML usage: dagger or aster"),
            property(
                "modifier",
                PropertyKind::Code,
                "The ClaML modifier whose class made the code's last character(s)",
            ),
        ],
        ..CodeSystemHeader::default()
    };
    let mut queue = VecDeque::new();
    reader.read_preamble(&mut header, &mut queue)?;
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

struct ClamlReader {
    xml: XmlReader,
    /// The language of labels without `xml:lang` (`Meta name="lang"`).
    language: Option<String>,
    /// Every `ModifierClass`, by modifier.
    modifiers: Modifiers,
    /// What the modifiers need of every class read.
    classes: Vec<ClassInfo>,
    /// The modified codes are made (the file ended).
    finished: bool,
}

/// One rubric label of a class.
struct Label {
    kind: String,
    language: Option<String>,
    text: String,
}

impl ClamlReader {
    /// Reads up to and including the first class.
    fn read_preamble(
        &mut self,
        header: &mut CodeSystemHeader,
        out: &mut VecDeque<Record>,
    ) -> Result<(), LoadError> {
        loop {
            match self.xml.next_event()? {
                XmlEvent::Start { name, attributes } => {
                    if self.xml.depth() == 1 {
                        if name != "ClaML" {
                            return Err(self.xml.error(format!(
                                "not a ClaML file: the document element is <{name}>, not <ClaML>"
                            )));
                        }
                        continue;
                    }
                    match name.as_str() {
                        "Title" => {
                            header.name = attribute(&attributes, "name").map(str::to_owned);
                            header.version = attribute(&attributes, "version").map(str::to_owned);
                            let title = collapse_whitespace(&self.xml.element_text()?);
                            header.title = (!title.is_empty()).then_some(title);
                        }
                        "Meta" => {
                            if attribute(&attributes, "name") == Some("lang") {
                                self.language = attribute(&attributes, "value").map(str::to_owned);
                            }
                            self.xml.skip_element()?;
                        }
                        "RubricKinds" => self.read_rubric_kinds(header)?,
                        "ModifierClass" => self.read_modifier_class(&attributes)?,
                        "Class" => {
                            self.read_class(&attributes, out)?;
                            return Ok(());
                        }
                        _ => self.xml.skip_element()?,
                    }
                }
                XmlEvent::Eof => return Err(self.xml.error("empty file: no <ClaML> element")),
                XmlEvent::End { .. } if self.xml.depth() == 0 => return Ok(()),
                XmlEvent::End { .. } | XmlEvent::Text(_) => {}
            }
        }
    }

    /// Declares a string property for each rubric kind that is neither the
    /// display, the definition nor a designation.
    fn read_rubric_kinds(&mut self, header: &mut CodeSystemHeader) -> Result<(), LoadError> {
        let depth = self.xml.depth();
        loop {
            match self.xml.next_event()? {
                XmlEvent::Start { name, attributes } => {
                    if name == "RubricKind" {
                        if let Some(kind) = attribute(&attributes, "name") {
                            if !matches!(kind, "preferred" | "definition")
                                && !DESIGNATION_KINDS.contains(&kind)
                            {
                                header.properties.push(property(
                                    kind,
                                    PropertyKind::String,
                                    "ClaML rubric",
                                ));
                            }
                        }
                    }
                    self.xml.skip_element()?;
                }
                XmlEvent::End { .. } if self.xml.depth() < depth => return Ok(()),
                XmlEvent::Eof => return Err(self.xml.error("unexpected end of file")),
                _ => {}
            }
        }
    }

    /// Reads one `Class` element (its start tag just read) and queues its
    /// concept, is-a edges, designations and properties.
    fn read_class(
        &mut self,
        attributes: &[(String, String)],
        out: &mut VecDeque<Record>,
    ) -> Result<(), LoadError> {
        let line = self.xml.line;
        let Some(code) = attribute(attributes, "code").map(str::to_owned) else {
            return Err(self.xml.error("<Class> without a code attribute"));
        };
        let mut properties = Vec::new();
        for key in ["kind", "usage"] {
            if let Some(value) = attribute(attributes, key) {
                properties.push((key.to_owned(), PropertyValue::Code(value.to_owned())));
            }
        }
        let mut info = ClassInfo {
            code: code.clone(),
            kind: attribute(attributes, "kind").map(str::to_owned),
            ..ClassInfo::default()
        };
        let mut parents = Vec::new();
        let mut labels = Vec::new();
        let depth = self.xml.depth();
        loop {
            match self.xml.next_event()? {
                XmlEvent::Start { name, attributes } => match name.as_str() {
                    "SubClass" => {
                        info.has_subclasses = true;
                        self.xml.skip_element()?;
                    }
                    "ModifiedBy" => {
                        let modified_by = self.read_modified_by(&attributes)?;
                        info.modified_by.push(modified_by);
                    }
                    "ExcludeModifier" => {
                        let Some(modifier) = attribute(&attributes, "code") else {
                            return Err(self
                                .xml
                                .error("<ExcludeModifier> without a code attribute"));
                        };
                        info.excluded.push(modifier.to_owned());
                        self.xml.skip_element()?;
                    }
                    "SuperClass" => {
                        let Some(parent) = attribute(&attributes, "code") else {
                            return Err(self.xml.error("<SuperClass> without a code attribute"));
                        };
                        parents.push(parent.to_owned());
                        self.xml.skip_element()?;
                    }
                    "Meta" => {
                        if let (Some(key), Some(value)) = (
                            attribute(&attributes, "name"),
                            attribute(&attributes, "value"),
                        ) {
                            properties
                                .push((key.to_owned(), PropertyValue::String(value.to_owned())));
                        }
                        self.xml.skip_element()?;
                    }
                    "Rubric" => {
                        let Some(kind) = attribute(&attributes, "kind").map(str::to_owned) else {
                            return Err(self.xml.error("<Rubric> without a kind attribute"));
                        };
                        self.read_rubric(kind, &mut labels)?;
                    }
                    _ => self.xml.skip_element()?,
                },
                XmlEvent::End { .. } if self.xml.depth() < depth => break,
                XmlEvent::Eof => return Err(self.xml.error("unexpected end of file")),
                _ => {}
            }
        }
        info.parents.clone_from(&parents);
        info.display = self.queue_class(code, line, parents, properties, labels, out)?;
        self.classes.push(info);
        Ok(())
    }

    fn read_rubric(&mut self, kind: String, labels: &mut Vec<Label>) -> Result<(), LoadError> {
        let depth = self.xml.depth();
        loop {
            match self.xml.next_event()? {
                XmlEvent::Start { name, attributes } if name == "Label" => {
                    let language = attribute(&attributes, "xml:lang")
                        .map(str::to_owned)
                        .or_else(|| self.language.clone());
                    let text = collapse_whitespace(&self.xml.element_text()?);
                    labels.push(Label {
                        kind: kind.clone(),
                        language,
                        text,
                    });
                }
                XmlEvent::Start { .. } => self.xml.skip_element()?,
                XmlEvent::End { .. } if self.xml.depth() < depth => return Ok(()),
                XmlEvent::Eof => return Err(self.xml.error("unexpected end of file")),
                _ => {}
            }
        }
    }

    fn queue_class(
        &self,
        code: String,
        line: u64,
        parents: Vec<String>,
        properties: Vec<(String, PropertyValue)>,
        labels: Vec<Label>,
        out: &mut VecDeque<Record>,
    ) -> Result<String, LoadError> {
        // The display is the preferred label in the file's language (or the
        // first preferred label); preferred labels in other languages become
        // preferred designations.
        let preferred: Vec<&Label> = labels.iter().filter(|l| l.kind == "preferred").collect();
        let display_label = preferred
            .iter()
            .find(|l| l.language == self.language)
            .or(preferred.first())
            .copied();
        let Some(display_label) = display_label else {
            return Err(error(
                &self.xml.name,
                line,
                format!("class {code} has no preferred rubric"),
            ));
        };
        let definition = labels
            .iter()
            .find(|l| l.kind == "definition")
            .map(|l| l.text.clone());
        out.push_back(Record::Concept {
            code: code.clone(),
            display: Some(display_label.text.clone()),
            definition,
            active: true,
        });
        for parent in parents {
            out.push_back(Record::IsA {
                child: code.clone(),
                parent,
            });
        }
        for (property, value) in properties {
            out.push_back(Record::Property {
                code: code.clone(),
                property,
                value,
            });
        }
        for label in &labels {
            let kind = label.kind.as_str();
            let designation =
                |use_: Option<(String, String)>, preferred: bool| Record::Designation {
                    code: code.clone(),
                    designation: Designation {
                        language: label.language.clone(),
                        use_,
                        value: label.text.clone(),
                        preferred,
                    },
                };
            if kind == "preferred" {
                if !std::ptr::eq(label, display_label) {
                    out.push_back(designation(None, true));
                }
            } else if DESIGNATION_KINDS.contains(&kind) {
                out.push_back(designation(
                    Some((DESIGNATION_USE.to_owned(), kind.to_owned())),
                    false,
                ));
            } else if kind != "definition" {
                out.push_back(Record::Property {
                    code: code.clone(),
                    property: kind.to_owned(),
                    value: PropertyValue::String(label.text.clone()),
                });
            }
        }
        Ok(display_label.text.clone())
    }
}

impl Step for ClamlReader {
    fn step(&mut self, out: &mut VecDeque<Record>) -> Result<bool, LoadError> {
        loop {
            match self.xml.next_event()? {
                XmlEvent::Start { name, attributes } => {
                    if name == "Class" && self.xml.depth() == 2 {
                        self.read_class(&attributes, out)?;
                        return Ok(true);
                    }
                    if name == "ModifierClass" && self.xml.depth() == 2 {
                        self.read_modifier_class(&attributes)?;
                        continue;
                    }
                    self.xml.skip_element()?;
                }
                XmlEvent::Eof if self.finished => return Ok(false),
                XmlEvent::Eof => {
                    self.finished = true;
                    self.queue_modified(out)?;
                    return Ok(true);
                }
                XmlEvent::End { .. } | XmlEvent::Text(_) => {}
            }
        }
    }
}
