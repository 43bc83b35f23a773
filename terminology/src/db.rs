//! [`Tx`]: the database transaction every function of this crate runs on,
//! with each statement prepared once and reused. PostgreSQL parses and
//! analyses a statement when it is prepared; tokio-postgres's plain
//! `query(&str, …)` prepares the text anew each time, which costs a round
//! trip and a parse per statement. A request's transaction on a pooled
//! connection uses the connection's statement cache (deadpool's, shared
//! with the server's own SQL), so after the first use of a statement on a
//! connection it is one round trip. A transaction on a connection outside
//! the pool (`baraza terminology load`, the R4 load at start-up) keeps its
//! statements for its own lifetime.
//!
//! The pooled cache lives as long as the connection and is not bounded,
//! so only statements of a bounded set of texts may go through it: fixed
//! SQL, or SQL assembled from a bounded set of pieces. Statements built
//! from unbounded input use [`Tx::query_unshared`].

use std::collections::HashMap;
use std::sync::Mutex;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row, Statement};

/// Statement parameters.
pub type Params<'p> = [&'p (dyn ToSql + Sync)];

/// A transaction the server (or a loader) opened with `baraza.tenant` set.
pub struct Tx<'a> {
    pg: &'a tokio_postgres::Transaction<'a>,
    statements: Statements<'a>,
    /// The change stamp read in this transaction (`cache::stamp`), while
    /// the transaction has written nothing: lookups may then use caches
    /// valid for that stamp (`store::find_system`).
    stamp: Mutex<Option<crate::cache::Stamp>>,
}

enum Statements<'a> {
    /// The pooled connection's cache.
    Connection(&'a deadpool_postgres::StatementCache),
    /// This transaction's own cache (a connection outside the pool).
    Transaction(Mutex<HashMap<String, Statement>>),
}

impl std::fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.statements {
            Statements::Connection(_) => "Tx(pooled)",
            Statements::Transaction(_) => "Tx(unpooled)",
        })
    }
}

impl<'a> Tx<'a> {
    /// A transaction on a pooled connection: statements are cached per
    /// connection.
    pub fn pooled(tx: &'a deadpool_postgres::Transaction<'_>) -> Tx<'a> {
        Tx {
            pg: tx,
            statements: Statements::Connection(&tx.statement_cache),
            stamp: Mutex::new(None),
        }
    }

    /// A transaction on a connection of its own: statements are cached
    /// while this value lives.
    pub fn unpooled(tx: &'a tokio_postgres::Transaction<'_>) -> Tx<'a> {
        Tx {
            pg: tx,
            statements: Statements::Transaction(Mutex::new(HashMap::new())),
            stamp: Mutex::new(None),
        }
    }

    /// The transaction itself (for `batch_execute` and the like). What is
    /// done through it directly may write: the remembered stamp is
    /// forgotten.
    pub fn pg(&self) -> &tokio_postgres::Transaction<'a> {
        self.forget_stamp();
        self.pg
    }

    /// Remembers the change stamp read in this transaction.
    pub fn remember_stamp(&self, stamp: crate::cache::Stamp) {
        if let Ok(mut s) = self.stamp.lock() {
            *s = Some(stamp);
        }
    }

    /// The stamp read in this transaction, if it has written nothing since.
    pub fn known_stamp(&self) -> Option<crate::cache::Stamp> {
        self.stamp.lock().ok().and_then(|s| s.clone())
    }

    fn forget_stamp(&self) {
        if let Ok(mut s) = self.stamp.lock() {
            *s = None;
        }
    }

    /// Statements other than plain reads end the use of the stamp.
    fn note(&self, sql: &str) {
        let read = sql
            .trim_start()
            .get(..6)
            .is_some_and(|head| head.eq_ignore_ascii_case("select"));
        if !read {
            self.forget_stamp();
        }
    }

    /// The prepared statement of `sql`, from the cache or prepared now.
    async fn statement(&self, sql: &str) -> Result<Statement, Error> {
        self.note(sql);
        match &self.statements {
            Statements::Connection(cache) => cache.prepare(self.pg.client(), sql).await,
            Statements::Transaction(cache) => {
                let cached = cache.lock().ok().and_then(|c| c.get(sql).cloned());
                if let Some(statement) = cached {
                    return Ok(statement);
                }
                let statement = self.pg.prepare(sql).await?;
                if let Ok(mut c) = cache.lock() {
                    c.insert(sql.to_owned(), statement.clone());
                }
                Ok(statement)
            }
        }
    }

    pub async fn query(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, Error> {
        let statement = self.statement(sql).await?;
        self.pg.query(&statement, params).await
    }

    pub async fn query_one(&self, sql: &str, params: &Params<'_>) -> Result<Row, Error> {
        let statement = self.statement(sql).await?;
        self.pg.query_one(&statement, params).await
    }

    pub async fn query_opt(&self, sql: &str, params: &Params<'_>) -> Result<Option<Row>, Error> {
        let statement = self.statement(sql).await?;
        self.pg.query_opt(&statement, params).await
    }

    pub async fn execute(&self, sql: &str, params: &Params<'_>) -> Result<u64, Error> {
        let statement = self.statement(sql).await?;
        self.pg.execute(&statement, params).await
    }

    /// Runs `sql` without keeping its prepared statement in the
    /// connection's cache: for statement texts built from unbounded input.
    pub async fn query_unshared(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, Error> {
        self.note(sql);
        match &self.statements {
            Statements::Connection(_) => self.pg.query(sql, params).await,
            Statements::Transaction(_) => self.query(sql, params).await,
        }
    }

    pub async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        self.forget_stamp();
        self.pg.batch_execute(sql).await
    }
}
