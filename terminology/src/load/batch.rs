//! The batched inserts of a load: designations, properties, reference set
//! members and words, each a multi-row `unnest` insert of up to
//! [`BATCH`] rows.

use super::rows::insert_pairs;
use super::{BATCH, LoadFailure, Loader};

impl Loader<'_, '_> {
    pub(super) async fn flush(&mut self) -> Result<(), LoadFailure> {
        let (tenant, sid) = (self.tenant.as_str(), self.system_id);
        for rows in std::mem::take(&mut self.designations).chunks(BATCH) {
            let ids: Vec<i32> = rows.iter().map(|r| r.0).collect();
            let languages: Vec<Option<&str>> = rows.iter().map(|r| r.1.as_deref()).collect();
            let use_systems: Vec<Option<&str>> = rows.iter().map(|r| r.2.as_deref()).collect();
            let use_codes: Vec<Option<&str>> = rows.iter().map(|r| r.3.as_deref()).collect();
            let values: Vec<&str> = rows.iter().map(|r| r.4.as_str()).collect();
            let preferred: Vec<bool> = rows.iter().map(|r| r.5).collect();
            self.tx
                .execute(
                    "INSERT INTO term_designations (tenant, system_id, concept_id, language, use_system, \
                     use_code, value, preferred) SELECT $1, $2, a, b, c, d, e, f FROM unnest($3::int4[], \
                     $4::text[], $5::text[], $6::text[], $7::text[], $8::bool[]) AS x(a, b, c, d, e, f)",
                    &[&tenant, &sid, &ids, &languages, &use_systems, &use_codes, &values, &preferred],
                )
                .await?;
        }
        for rows in std::mem::take(&mut self.properties).chunks(BATCH) {
            let ids: Vec<i32> = rows.iter().map(|r| r.0).collect();
            let names: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
            let kinds: Vec<&str> = rows.iter().map(|r| r.2).collect();
            let values: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
            let systems: Vec<Option<&str>> = rows.iter().map(|r| r.4.as_deref()).collect();
            self.tx
                .execute(
                    "INSERT INTO term_properties (tenant, system_id, concept_id, property, kind, value, \
                     value_system) SELECT $1, $2, a, b, c, d, e FROM unnest($3::int4[], $4::text[], \
                     $5::text[], $6::text[], $7::text[]) AS x(a, b, c, d, e)",
                    &[&tenant, &sid, &ids, &names, &kinds, &values, &systems],
                )
                .await?;
        }
        let mut members = std::mem::take(&mut self.members);
        members.sort_unstable();
        members.dedup();
        // A release may list a membership twice (in two files, or two
        // batches): the table keeps one row.
        insert_pairs(
            self.tx,
            "term_refset_members (tenant, system_id, refset_id, concept_id)",
            tenant,
            sid,
            &members,
            " ON CONFLICT DO NOTHING",
        )
        .await?;
        let mut words = std::mem::take(&mut self.words);
        // Designations of one concept share most words (and arrive
        // together in a release): one row per word and concept suffices.
        words.sort_unstable();
        words.dedup();
        for rows in words.chunks(BATCH) {
            let words: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
            let ids: Vec<i32> = rows.iter().map(|r| r.1).collect();
            self.tx
                .execute(
                    "INSERT INTO term_words (tenant, system_id, word, concept_id) \
                     SELECT $1, $2, a, b FROM unnest($3::text[], $4::int4[]) AS x(a, b)",
                    &[&tenant, &sid, &words, &ids],
                )
                .await?;
        }
        Ok(())
    }
}
