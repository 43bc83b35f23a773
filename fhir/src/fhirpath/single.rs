//! Whether an expression yields at most one item on any resource of a
//! type, known from the expression and the R4 model alone: a search
//! parameter such as Condition's `onset-date`
//! (`Condition.onset.as(dateTime) | Condition.onset.as(Period)`) then has
//! at most one value per resource, which lets the search engine skip
//! looking for a resource's other values.
//!
//! Only the shapes search parameters are written in are recognised, and
//! anything else is "maybe several": a union of terms, each a path of
//! elements from the resource type's name (`Condition.onset`), possibly
//! narrowed to one type (`as T`, `.as(T)`, `.ofType(T)`). The terms must
//! all name the same path, so that the union holds the one element's
//! value under its different types, and no element on the path may
//! repeat. Terms rooted at another type (`Person.birthDate` in
//! `Patient.birthDate | Person.birthDate`) select nothing and are skipped.

use super::functions::Func;
use super::parser::{BinOp, Expr};
use crate::definitions::{NodeKind, structure_model};

/// See the module comment.
pub(super) fn at_most_one(root: &Expr, resource_type: &str) -> bool {
    let mut terms = Vec::new();
    union_terms(root, &mut terms);
    let mut path: Option<Vec<&str>> = None;
    for term in terms {
        let Some((root_name, steps)) = element_path(narrowed(term)) else {
            return false;
        };
        if root_name != resource_type {
            // Another resource type's name selects nothing here; any other
            // first name (`extension.value`) navigates from the resource
            // itself, and is not understood.
            if structure_model().resource(root_name).is_some() {
                continue;
            }
            return false;
        }
        match &path {
            None => path = Some(steps),
            Some(seen) if *seen == steps => {}
            Some(_) => return false,
        }
    }
    path.is_some_and(|steps| !steps.is_empty() && single_path(resource_type, &steps))
}

/// See `Expression::top_element`.
pub(super) fn top_element<'e>(root: &'e Expr, resource_type: &str) -> Option<&'e str> {
    match element_path(root)? {
        (name, steps) if name == resource_type && steps.len() == 1 => steps.first().copied(),
        _ => None,
    }
}

fn union_terms<'e>(expr: &'e Expr, terms: &mut Vec<&'e Expr>) {
    match expr {
        Expr::Binary(BinOp::Union, left, right) => {
            union_terms(left, terms);
            union_terms(right, terms);
        }
        other => terms.push(other),
    }
}

/// The expression without a type narrowing at its end.
fn narrowed(expr: &Expr) -> &Expr {
    match expr {
        Expr::As(base, _) => base,
        Expr::Call {
            base: Some(base),
            func: Func::As | Func::OfType,
            ..
        } => base,
        other => other,
    }
}

/// `Type.a.b` as (`Type`, [`a`, `b`]); `None` for anything else.
fn element_path(expr: &Expr) -> Option<(&str, Vec<&str>)> {
    match expr {
        Expr::Member {
            base: None, name, ..
        } => Some((name.as_str(), Vec::new())),
        Expr::Member {
            base: Some(base),
            name,
            ..
        } => {
            let (root, mut steps) = element_path(base)?;
            steps.push(name.as_str());
            Some((root, steps))
        }
        _ => None,
    }
}

/// Whether no element along `steps` from `resource_type` repeats. A step
/// into a choice element or an element of several types ends the walk:
/// it must be the last.
fn single_path(resource_type: &str, steps: &[&str]) -> bool {
    let model = structure_model();
    let Some(mut node) = model.resource(resource_type) else {
        return false;
    };
    for (at, step) in steps.iter().enumerate() {
        let Some(element) = node.element(step) else {
            return false;
        };
        if element.is_array() {
            return false;
        }
        if at + 1 == steps.len() {
            return true;
        }
        let [only] = element.types.as_slice() else {
            return false;
        };
        let next = match &*only.code {
            "BackboneElement" | "Element" => model.node_named(&element.path),
            code => model.node_named(code),
        };
        match next {
            Some(n) if n.kind != NodeKind::Resource => node = n,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::fhirpath::Expression;

    fn single(expression: &str, resource_type: &str) -> bool {
        Expression::parse(expression)
            .unwrap()
            .at_most_one(resource_type)
    }

    #[test]
    fn one_element_that_does_not_repeat() {
        assert!(single(
            "Condition.onset.as(dateTime) | Condition.onset.as(Period)",
            "Condition"
        ));
        assert!(single(
            "(Observation.value as Quantity) | (Observation.value as SampledData)",
            "Observation"
        ));
        assert!(single(
            "Observation.effective.ofType(dateTime)",
            "Observation"
        ));
        assert!(single(
            "Patient.birthDate | Person.birthDate | RelatedPerson.birthDate",
            "Patient"
        ));
        assert!(single("Person.birthDate | Patient.birthDate", "Person"));
        assert!(single("Encounter.period", "Encounter"));
        assert!(single("Encounter.period.start", "Encounter"));
        assert!(single("Observation.code.text", "Observation"));
    }

    #[test]
    fn repeating_or_other_shapes_may_give_several() {
        // `name` repeats; `contact` repeats before its `name`.
        assert!(!single("Patient.name.family", "Patient"));
        assert!(!single("Patient.contact.name", "Patient"));
        assert!(!single(
            "MedicationRequest.dosageInstruction.timing.event",
            "MedicationRequest"
        ));
        // Two different elements.
        assert!(!single("Encounter.period | Encounter.length", "Encounter"));
        assert!(!single(
            "Observation.value.as(Quantity) | Observation.component.value.as(Quantity)",
            "Observation"
        ));
        // Functions other than a type narrowing, and resolve().
        assert!(!single(
            "Observation.subject.where(resolve() is Patient)",
            "Observation"
        ));
        assert!(!single("Patient.name.first()", "Patient"));
        // A path from the resource itself, without its type's name.
        assert!(!single("Patient.birthDate | birthDate", "Patient"));
        assert!(!single("birthDate", "Patient"));
        // Nothing of this type, or no such element.
        assert!(!single("Person.birthDate", "Patient"));
        assert!(!single("Patient.nonsense", "Patient"));
        assert!(!single("Patient", "Patient"));
        // A step through a choice must be the last.
        assert!(!single("Observation.value.code", "Observation"));
    }

    #[test]
    fn top_elements() {
        let top = |e: &str, t: &str| {
            Expression::parse(e)
                .unwrap()
                .top_element(t)
                .map(str::to_owned)
        };
        assert_eq!(
            top("Observation.performer", "Observation").as_deref(),
            Some("performer")
        );
        assert_eq!(top("Observation.performer", "Encounter"), None);
        assert_eq!(
            top(
                "Observation.subject.where(resolve() is Patient)",
                "Observation"
            ),
            None
        );
        assert_eq!(top("Observation.subject.reference", "Observation"), None);
        assert_eq!(top("Observation.value as Quantity", "Observation"), None);
        assert_eq!(
            top(
                "Patient.link.other | Patient.generalPractitioner",
                "Patient"
            ),
            None
        );
        assert_eq!(top("performer", "Observation"), None);
        assert_eq!(top("Observation", "Observation"), None);
    }
}
