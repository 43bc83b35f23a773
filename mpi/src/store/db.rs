//! `Db`: the database access the store needs, implemented for the
//! transactions it runs in. The server's `store::TenantTx` derefs to a
//! deadpool transaction, whose statement cache makes each statement one
//! round trip after its first use on a connection; a plain tokio-postgres
//! transaction prepares every statement anew.

use std::future::Future;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row};

/// Statement parameters.
pub type Params<'a> = [&'a (dyn ToSql + Sync)];

/// A transaction with `baraza.tenant` set (the caller's duty: every store
/// function also names its tenant in every statement).
pub trait Db: Sync {
    fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a Params<'a>,
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send + 'a;

    fn execute<'a>(
        &'a self,
        sql: &'a str,
        params: &'a Params<'a>,
    ) -> impl Future<Output = Result<u64, Error>> + Send + 'a;
}

impl Db for deadpool_postgres::Transaction<'_> {
    async fn query<'a>(&'a self, sql: &'a str, params: &'a Params<'a>) -> Result<Vec<Row>, Error> {
        let statement = self.prepare_cached(sql).await?;
        tokio_postgres::Transaction::query(self, &statement, params).await
    }

    async fn execute<'a>(&'a self, sql: &'a str, params: &'a Params<'a>) -> Result<u64, Error> {
        let statement = self.prepare_cached(sql).await?;
        tokio_postgres::Transaction::execute(self, &statement, params).await
    }
}

impl Db for tokio_postgres::Transaction<'_> {
    fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a Params<'a>,
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send + 'a {
        tokio_postgres::Transaction::query(self, sql, params)
    }

    fn execute<'a>(
        &'a self,
        sql: &'a str,
        params: &'a Params<'a>,
    ) -> impl Future<Output = Result<u64, Error>> + Send + 'a {
        tokio_postgres::Transaction::execute(self, sql, params)
    }
}
