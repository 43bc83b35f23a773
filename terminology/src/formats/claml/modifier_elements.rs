//! The ClaML elements of modifiers, read into what `modifiers` needs:
//! `ModifierClass` (one value of a modifier and its label) and a class's
//! `ModifiedBy` (with `ValidModifierClass`); and the records of the codes
//! the modifiers make.

use super::modifiers::{self, ModifiedBy};
use super::{ClamlReader, Label};
use crate::formats::source::error;
use crate::formats::xml::{XmlEvent, attribute};
use crate::model::{LoadError, PropertyValue, Record};
use std::collections::VecDeque;

impl ClamlReader {
    /// Reads a `ModifiedBy` (its start tag just read) with its
    /// `ValidModifierClass` elements.
    pub(super) fn read_modified_by(
        &mut self,
        attributes: &[(String, String)],
    ) -> Result<ModifiedBy, LoadError> {
        let line = self.xml.line;
        let Some(modifier) = attribute(attributes, "code").map(str::to_owned) else {
            return Err(self.xml.error("<ModifiedBy> without a code attribute"));
        };
        let all = match attribute(attributes, "all") {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(self.xml.error(format!(
                    "<ModifiedBy code=\"{modifier}\"> has all=\"{other}\" (true or false)"
                )));
            }
        };
        let position = match attribute(attributes, "position") {
            None => None,
            Some(p) => Some(p.trim().parse::<u32>().map_err(|_| {
                self.xml.error(format!(
                    "<ModifiedBy code=\"{modifier}\"> has position=\"{p}\" (a number)"
                ))
            })?),
        };
        let mut valid = Vec::new();
        let depth = self.xml.depth();
        loop {
            match self.xml.next_event()? {
                XmlEvent::Start { name, attributes } => {
                    if name == "ValidModifierClass" {
                        let Some(code) = attribute(&attributes, "code") else {
                            return Err(self
                                .xml
                                .error("<ValidModifierClass> without a code attribute"));
                        };
                        valid.push(code.to_owned());
                    }
                    self.xml.skip_element()?;
                }
                XmlEvent::End { .. } if self.xml.depth() < depth => break,
                XmlEvent::Eof => return Err(self.xml.error("unexpected end of file")),
                _ => {}
            }
        }
        Ok(ModifiedBy {
            modifier,
            valid: (!all).then_some(valid),
            position,
            line,
        })
    }

    /// Reads a `ModifierClass` (its start tag just read): one value of a
    /// modifier, with its preferred label.
    pub(super) fn read_modifier_class(
        &mut self,
        attributes: &[(String, String)],
    ) -> Result<(), LoadError> {
        let line = self.xml.line;
        let (Some(modifier), Some(code)) = (
            attribute(attributes, "modifier").map(str::to_owned),
            attribute(attributes, "code").map(str::to_owned),
        ) else {
            return Err(self
                .xml
                .error("<ModifierClass> needs the attributes modifier and code"));
        };
        let mut labels = Vec::new();
        let depth = self.xml.depth();
        loop {
            match self.xml.next_event()? {
                XmlEvent::Start { name, attributes } if name == "Rubric" => {
                    let Some(kind) = attribute(&attributes, "kind").map(str::to_owned) else {
                        return Err(self.xml.error("<Rubric> without a kind attribute"));
                    };
                    self.read_rubric(kind, &mut labels)?;
                }
                XmlEvent::Start { .. } => self.xml.skip_element()?,
                XmlEvent::End { .. } if self.xml.depth() < depth => break,
                XmlEvent::Eof => return Err(self.xml.error("unexpected end of file")),
                _ => {}
            }
        }
        let preferred: Vec<&Label> = labels.iter().filter(|l| l.kind == "preferred").collect();
        let Some(label) = preferred
            .iter()
            .find(|l| l.language == self.language)
            .or(preferred.first())
        else {
            return Err(error(
                &self.xml.name,
                line,
                format!("modifier class {code} of {modifier} has no preferred rubric"),
            ));
        };
        self.modifiers
            .entry(modifier)
            .or_default()
            .push((code, label.text.clone()));
        Ok(())
    }

    /// Queues the codes the modifiers make, once every class is read.
    pub(super) fn queue_modified(&mut self, out: &mut VecDeque<Record>) -> Result<(), LoadError> {
        let made = modifiers::generate(&self.classes, &self.modifiers)
            .map_err(|(line, message)| error(&self.xml.name, line, message))?;
        for g in made {
            out.push_back(Record::Concept {
                code: g.code.clone(),
                display: Some(g.display),
                definition: None,
                active: true,
            });
            out.push_back(Record::IsA {
                child: g.code.clone(),
                parent: g.parent,
            });
            if let Some(kind) = g.kind {
                out.push_back(Record::Property {
                    code: g.code.clone(),
                    property: "kind".to_owned(),
                    value: PropertyValue::Code(kind),
                });
            }
            out.push_back(Record::Property {
                code: g.code,
                property: "modifier".to_owned(),
                value: PropertyValue::Code(g.modifier),
            });
        }
        Ok(())
    }
}
