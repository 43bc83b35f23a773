//! `_sort` on one date or number parameter of one type, with no other
//! criteria (`Condition?_sort=-onset-date`): the page is read in the order
//! of the parameter's index instead of computing every resource's key and
//! sorting them all, so a page costs about its size whatever the type's
//! population.
//!
//! A resource may have several values of the parameter; its key is the
//! smallest ascending and the largest descending (search.html#sort), so an
//! index row counts only if no other row of the same resource comes before
//! it (a test skipped for a parameter of at most one value per resource).
//! Resources without a value follow, by id, as in the general path.

use super::{Query, Sql, latest_version};
use crate::search::registry::ParamKind;
use crate::search::sort::{Cursor, SortBy};

impl Sql {
    /// The statement for `query` read off the sort parameter's index, or
    /// `None` when the query is not of that shape. Its columns are those of
    /// the general sorted path: type, id, version, last updated, content,
    /// key as text.
    pub(super) fn sorted_by_index(
        &mut self,
        query: Query<'_>,
        limit: &str,
        after: Option<&Cursor>,
    ) -> Option<String> {
        let ([res_type], [key]) = (query.types, query.sort) else {
            return None;
        };
        let SortBy::Param {
            param,
            kind,
            union_of: None,
            single,
        } = &key.by
        else {
            return None;
        };
        if !query.criteria.is_empty() || !matches!(kind, ParamKind::Date | ParamKind::Number) {
            return None;
        }
        let (table, column) = match (kind, key.descending) {
            (ParamKind::Date, true) => ("search_date", "hi"),
            (ParamKind::Date, false) => ("search_date", "lo"),
            _ => ("search_number", "value"),
        };
        let (direction, before) = if key.descending {
            ("DESC", ">")
        } else {
            ("ASC", "<")
        };
        let sql_type = key.sql_type();
        let t = self.bind(res_type.clone());
        let p = self.bind(param.clone());
        // Where the cursor points: after a valued resource (the rest of the
        // valued ones, then all the unvalued), or among the unvalued ones.
        let (valued_after, unvalued_after) = match after {
            None => (String::new(), String::new()),
            Some(after) => {
                let id = self.bind(after.id.clone());
                match after.keys.first().cloned().flatten() {
                    Some(value) => {
                        let v = self.bind(value);
                        let beyond = if key.descending { "<" } else { ">" };
                        // The first comparison is implied by the second;
                        // it bounds the index scan, which would otherwise
                        // start at the first value and filter every row
                        // before the cursor (950 of them for page 20 of
                        // the benchmark's Q9).
                        (
                            format!(
                                " AND k.{column} {beyond}= {v}::text::{sql_type} \
                                 AND (k.{column} {beyond} {v}::text::{sql_type} \
                                 OR (k.{column} = {v}::text::{sql_type} AND k.res_id > {id}))"
                            ),
                            String::new(),
                        )
                    }
                    None => (" AND false".to_owned(), format!(" AND r.id > {id}")),
                }
            }
        };
        // A resource's other rows, which would come before this one; none
        // when the parameter has at most one value per resource
        // (`Condition.onset`): each row is then its resource's only one,
        // and the probe per row is spared.
        let first_of_resource = if *single {
            String::new()
        } else {
            format!(
                " AND NOT EXISTS (SELECT 1 FROM {table} o WHERE o.tenant = $1 AND o.res_type = k.res_type \
                 AND o.res_id = k.res_id AND o.param = k.param \
                 AND (o.{column} {before} k.{column} OR (o.{column} = k.{column} AND o.ctid < k.ctid)))"
            )
        };
        // The valued resources' latest versions are read straight from
        // history (see `index_first`): index rows exist only for current
        // resources, and a deletion is a version without content.
        let latest = latest_version("k.res_type", "k.res_id");
        Some(format!(
            "SELECT q.res_type, q.id, q.version_id, q.last_updated, q.content::text, q.k0::text \
             FROM ((SELECT k.res_type, k.res_id AS id, h.version_id, h.last_updated, h.content, \
               k.{column} AS k0 FROM {table} k \
              JOIN {latest} ON h.content IS NOT NULL \
              WHERE k.tenant = $1 AND k.res_type = {t} AND k.param = {p}{valued_after}{first_of_resource} \
              ORDER BY k.{column} {direction}, k.res_id LIMIT {limit}) \
             UNION ALL \
             (SELECT r.res_type, r.id, r.version_id, r.last_updated, \
               (SELECT h.content FROM resource_history h WHERE h.tenant = $1 \
                AND h.res_type = r.res_type AND h.id = r.id AND h.version_id = r.version_id), \
               NULL::{sql_type} AS k0 \
              FROM resources r WHERE r.tenant = $1 AND r.res_type = {t} AND NOT r.deleted{unvalued_after} \
              AND NOT EXISTS (SELECT 1 FROM {table} o WHERE o.tenant = $1 AND o.res_type = r.res_type \
               AND o.res_id = r.id AND o.param = {p}) \
              ORDER BY r.id LIMIT {limit}) \
             LIMIT {limit}) q ORDER BY (q.k0 IS NULL), q.k0 {direction}, q.id"
        ))
    }
}
