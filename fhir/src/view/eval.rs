//! Evaluation of a parsed view against one resource: `where` filters, then
//! the select tree, where each select's rows are the cross product of its
//! columns' row, its nested selects' rows and its unionAll branches' rows,
//! for every node its iteration (`forEach`, `forEachOrNull`, `repeat`)
//! chooses. `%rowIndex` is the node's 0-based position in that iteration.

use super::parse::{ColumnPath, Iteration, Located, Select};
use super::{Row, ViewDefinition, ViewError};
use crate::fhirpath::{Collection, Env, Expression, FhirType, Item, evaluate_items};
use serde_json::{Number, Value as Json};

pub(super) fn evaluate(view: &ViewDefinition, resource: &Json) -> Result<Vec<Row>, ViewError> {
    let resource_type = resource.get("resourceType").and_then(Json::as_str);
    if resource_type != Some(view.resource.as_str()) {
        return Ok(Vec::new());
    }
    let mut env = Env::new();
    for c in &view.constants {
        let item = Item::fhir(Some(&c.value), None, FhirType::Primitive(c.primitive));
        env.set_variable(&c.name, vec![item]);
    }
    let mut run = Run { env, resource };
    let root = Item::resource(resource);
    for filter in &view.filters {
        if !run.filter(filter, &root)? {
            return Ok(Vec::new());
        }
    }
    run.content(&view.root, Some(&root), 0, false)
}

/// One resource's evaluation: the FHIRPath environment (the view's
/// constants and the current `%rowIndex`) and the resource.
struct Run<'v, 'a> {
    env: Env<'v>,
    resource: &'a Json,
}

impl<'v: 'a, 'a> Run<'v, 'a> {
    /// Evaluates `expr` with `focus` as `$this` (nothing for `None`).
    fn eval(
        &mut self,
        expr: &'a Expression,
        focus: Option<&Item<'a>>,
        row_index: usize,
        at: &str,
    ) -> Result<Collection<'a>, ViewError> {
        let index = i64::try_from(row_index).unwrap_or(i64::MAX);
        self.env
            .set_variable("rowIndex", vec![Item::Integer(index)]);
        let context = focus.into_iter().cloned().collect();
        evaluate_items(expr, self.resource, context, &self.env)
            .map_err(|e| ViewError::new(at, e.to_string()))
    }

    /// A `where` clause: an empty result excludes the resource; anything
    /// but a single boolean is an error.
    fn filter(&mut self, filter: &'a Located, root: &Item<'a>) -> Result<bool, ViewError> {
        let out = self.eval(&filter.expr, Some(root), 0, &filter.at)?;
        match out.as_slice() {
            [] => Ok(false),
            [x] => x.as_bool().ok_or_else(|| {
                ViewError::new(
                    &filter.at,
                    format!("where path must give a boolean, not {}", x.type_name()),
                )
            }),
            _ => Err(ViewError::new(
                &filter.at,
                format!("where path must give one boolean, got {} items", out.len()),
            )),
        }
    }

    /// The rows of `select` evaluated below `focus` (whose own position is
    /// `row_index`; `None` inside a `forEachOrNull` null row). `pad` asks
    /// for at least one row (see [`Run::content`]).
    fn rows(
        &mut self,
        select: &'a Select,
        focus: Option<&Item<'a>>,
        row_index: usize,
        pad: bool,
    ) -> Result<Vec<Row>, ViewError> {
        let (nodes, or_null) = match &select.iteration {
            Iteration::Parent => return self.content(select, focus, row_index, pad),
            Iteration::ForEach(l) => (self.eval(&l.expr, focus, row_index, &l.at)?, false),
            Iteration::ForEachOrNull(l) => (self.eval(&l.expr, focus, row_index, &l.at)?, true),
            Iteration::Repeat(paths) => {
                let mut nodes = Vec::new();
                if let Some(focus) = focus {
                    let mut ancestors = Vec::new();
                    self.descend(paths, focus, row_index, &mut ancestors, &mut nodes)?;
                }
                (nodes, false)
            }
        };
        if nodes.is_empty() && or_null {
            // The null row: the content evaluated on no node at position 0,
            // so `%rowIndex` is 0 and constants keep their values.
            return self.content(select, None, 0, true);
        }
        let mut rows = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            rows.extend(self.content(select, Some(node), i, false)?);
        }
        Ok(rows)
    }

    /// `repeat`: every node the paths reach from `node`, recursively, in
    /// depth-first pre-order. A path that leads back to an ancestor (or
    /// computes values instead of selecting elements) would never end, and
    /// is an error.
    fn descend(
        &mut self,
        paths: &'a [Located],
        node: &Item<'a>,
        row_index: usize,
        ancestors: &mut Vec<&'a Json>,
        out: &mut Collection<'a>,
    ) -> Result<(), ViewError> {
        if let Some(json) = node.json() {
            ancestors.push(json);
        }
        for path in paths {
            for child in self.eval(&path.expr, Some(node), row_index, &path.at)? {
                let Some(json) = child.json() else {
                    return Err(ViewError::new(
                        &path.at,
                        "repeat paths must select elements",
                    ));
                };
                if ancestors.iter().any(|a| std::ptr::eq(*a, json)) {
                    return Err(ViewError::new(&path.at, "repeat path does not descend"));
                }
                out.push(child.clone());
                self.descend(paths, &child, row_index, ancestors, out)?;
            }
        }
        if node.json().is_some() {
            ancestors.pop();
        }
        Ok(())
    }

    /// The rows of a select's content on one node: its columns' single
    /// row × its nested selects' rows × its unionAll branches' rows. With
    /// `pad` (a `forEachOrNull` null row) a part without rows counts as one
    /// row of nulls, so that the select still gives a row.
    fn content(
        &mut self,
        select: &'a Select,
        node: Option<&Item<'a>>,
        row_index: usize,
        pad: bool,
    ) -> Result<Vec<Row>, ViewError> {
        let mut first = Vec::with_capacity(select.width);
        for column in &select.columns {
            first.push(self.column(column, node, row_index)?);
        }
        let mut rows = vec![first];
        for nested in &select.selects {
            let nested_pad = pad && matches!(nested.iteration, Iteration::Parent);
            let part = self.rows(nested, node, row_index, nested_pad)?;
            rows = product(rows, padded(part, pad, nested.width));
        }
        if let Some(first_branch) = select.union_all.first() {
            let mut part = Vec::new();
            for branch in &select.union_all {
                part.extend(self.rows(branch, node, row_index, false)?);
            }
            rows = product(rows, padded(part, pad, first_branch.width));
        }
        Ok(rows)
    }

    fn column(
        &mut self,
        column: &'a ColumnPath,
        node: Option<&Item<'a>>,
        row_index: usize,
    ) -> Result<Json, ViewError> {
        let items = self.eval(&column.expr, node, row_index, &column.at)?;
        let mut values = Vec::with_capacity(items.len());
        for item in &items {
            if let Some(v) = to_json(item).map_err(|m| ViewError::new(&column.at, m))? {
                values.push(v);
            }
        }
        if column.collection {
            return Ok(Json::Array(values));
        }
        match values.len() {
            0 => Ok(Json::Null),
            1 => Ok(values.swap_remove(0)),
            n => Err(ViewError::new(
                &column.at,
                format!("gives {n} values; a column that is not a collection needs at most one"),
            )),
        }
    }
}

/// `rows`, or with `pad` one row of `width` nulls instead of none.
fn padded(rows: Vec<Row>, pad: bool, width: usize) -> Vec<Row> {
    if pad && rows.is_empty() {
        vec![vec![Json::Null; width]]
    } else {
        rows
    }
}

/// Every left row followed by every right row.
fn product(left: Vec<Row>, right: Vec<Row>) -> Vec<Row> {
    if let [only] = right.as_slice() {
        return left
            .into_iter()
            .map(|mut l| {
                l.extend(only.iter().cloned());
                l
            })
            .collect();
    }
    let mut out = Vec::with_capacity(left.len() * right.len());
    for l in &left {
        for r in &right {
            let mut row = Vec::with_capacity(l.len() + r.len());
            row.extend(l.iter().cloned());
            row.extend(r.iter().cloned());
            out.push(row);
        }
    }
    out
}

/// A column value as JSON: FHIR primitives as written in the resource
/// (decimals keep their digits), computed values as their JSON kind, dates
/// and times as ISO 8601 text, complex elements as their JSON. `None` for a
/// primitive with only extensions.
fn to_json(item: &Item<'_>) -> Result<Option<Json>, String> {
    Ok(Some(match item {
        Item::Fhir(node) => match node.value {
            None | Some(Json::Null) => return Ok(None),
            Some(v) => v.clone(),
        },
        Item::Boolean(b) => Json::Bool(*b),
        Item::Integer(i) => Json::Number(Number::from(*i)),
        Item::Decimal(d) => {
            let text = d.to_string();
            match text.parse::<Number>() {
                Ok(n) => Json::Number(n),
                Err(_) => Json::String(text),
            }
        }
        Item::String(s) => Json::String(s.to_string()),
        Item::Date(d) | Item::DateTime(d) => Json::String(d.format_date_time()),
        Item::Time(t) => Json::String(t.format_time()),
        Item::Quantity(q) => Json::String(q.format()),
        Item::Type(t) => return Err(format!("gives a type ({}), not a value", t.name)),
    }))
}
