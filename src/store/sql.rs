//! One way to run SQL on either backend, so that the store's logic is
//! written once: `Db` runs a statement with `Value` arguments and reads
//! rows through `Row`, on an SQLite connection or a PostgreSQL transaction.
//!
//! Statements are written once, in the SQL both databases speak, with
//! numbered parameters `?1`, `?2`… (PostgreSQL receives them as `$1`, `$2`…).
//! What differs is asked of the dialect (`Db::in_list`). Values adapt to the
//! type PostgreSQL infers for a parameter (an integer where it expects a
//! boolean is sent as one), so that the same statement and arguments work
//! on both; booleans are stored as 0 or 1 everywhere.

use std::cell::RefCell;
use std::collections::HashMap;

use anyhow::{Result, anyhow, bail};
use bytes::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type};

use crate::domain::ids::{FeedId, ItemId, StoryId};

/// An argument of a statement.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Bytes(&'a [u8]),
}

/// What can be passed as an argument.
pub trait ToValue {
    fn value(&self) -> Value<'_>;
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn value(&self) -> Value<'_> {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_value!(i64, i32, u32, u16, u8, usize, u64);

impl ToValue for bool {
    fn value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for f64 {
    fn value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}

impl ToValue for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for [u8] {
    fn value(&self) -> Value<'_> {
        Value::Bytes(self)
    }
}

impl ToValue for Vec<u8> {
    fn value(&self) -> Value<'_> {
        Value::Bytes(self)
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn value(&self) -> Value<'_> {
        self.as_ref().map_or(Value::Null, ToValue::value)
    }
}

macro_rules! id_value {
    ($($t:ident),*) => {$(
        impl ToValue for $t {
            fn value(&self) -> Value<'_> {
                Value::Int(self.0)
            }
        }

        impl FromCell for $t {
            fn from_cell(cell: Cell) -> Result<Self> {
                i64::from_cell(cell).map($t)
            }
        }
    )*};
}
id_value!(FeedId, ItemId, StoryId);

/// The arguments of a statement: `args![a, b]` borrows each.
macro_rules! args {
    ($($e:expr),* $(,)?) => {
        &[$($crate::store::sql::ToValue::value(&$e)),*][..]
    };
}
pub(crate) use args;

/// The VALUES of a statement inserting `rows` rows of `columns` each, the
/// arguments numbered row after row: `(?1, ?2), (?3, ?4)`.
pub fn values(rows: usize, columns: usize) -> String {
    value_rows(rows, columns, |n, _| format!("?{n}"))
}

/// Like `values`, each argument cast to its column's type (`types`), for
/// VALUES that are not inserted into a table: PostgreSQL has nothing else
/// to infer their types from.
pub fn cast_values(rows: usize, types: &[&str]) -> String {
    value_rows(rows, types.len(), |n, c| {
        format!("CAST(?{n} AS {})", types[c])
    })
}

/// `rows` rows of `columns` cells, the cell of argument `n` (numbered row
/// after row from 1) in column `c` written by `cell(n, c)`.
fn value_rows(rows: usize, columns: usize, cell: impl Fn(usize, usize) -> String) -> String {
    let mut out = String::with_capacity(rows * columns * 8);
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..columns {
            if c > 0 {
                out.push_str(", ");
            }
            out.push_str(&cell(r * columns + c + 1, c));
        }
        out.push(')');
    }
    out
}

/// `rows` cut into the statements that insert them: 256, 64, 16, 4 or 1
/// rows each, largest first. Few statements, and few distinct texts for
/// PostgreSQL to prepare and keep (one per size and table, not one per
/// number of rows).
pub fn batches<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        let size = [256, 64, 16, 4, 1].into_iter().find(|&n| n <= rest.len())?;
        let (batch, after) = rest.split_at(size);
        rest = after;
        Some(batch)
    })
}

/// Inserts `rows` many a statement (`batches`): each statement is `head`,
/// the rows' VALUES, then `tail`; `row` gives a row's `columns` values.
/// What the statements return (a `tail` with `RETURNING`) is read by
/// `read`, in order.
pub fn insert_rows<'r, T, R>(
    db: &impl Db,
    (head, tail): (&str, &str),
    columns: usize,
    rows: &'r [T],
    row: impl Fn(&'r T, &mut Vec<Value<'r>>),
    read: impl FnMut(&Row) -> Result<R>,
) -> Result<Vec<R>> {
    let statement = |n| format!("{head} VALUES {} {tail}", values(n, columns));
    many_rows(db, statement, columns, rows, row, read)
}

/// Runs `statement(n)` on `rows`, n at a time (`batches`), each row's
/// `columns` values given by `row`, and reads what they return with
/// `read`, in order.
pub fn many_rows<'r, T, R>(
    db: &impl Db,
    statement: impl Fn(usize) -> String,
    columns: usize,
    rows: &'r [T],
    row: impl Fn(&'r T, &mut Vec<Value<'r>>),
    mut read: impl FnMut(&Row) -> Result<R>,
) -> Result<Vec<R>> {
    let mut out = Vec::new();
    for batch in batches(rows) {
        let mut args = Vec::with_capacity(columns * batch.len());
        for r in batch {
            row(r, &mut args);
        }
        out.extend(db.rows(&statement(batch.len()), &args, &mut read)?);
    }
    Ok(out)
}

/// A column's value as read.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Cell {
    /// A value SQLite read.
    pub fn of_sqlite(value: rusqlite::types::ValueRef) -> Cell {
        use rusqlite::types::ValueRef;
        match value {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(n) => Cell::Int(n),
            ValueRef::Real(x) => Cell::Real(x),
            ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
        }
    }

    /// The cell as an argument.
    pub fn value(&self) -> Value<'_> {
        match self {
            Cell::Null => Value::Null,
            Cell::Int(n) => Value::Int(*n),
            Cell::Real(x) => Value::Real(*x),
            Cell::Text(t) => Value::Text(t),
            Cell::Bytes(b) => Value::Bytes(b),
        }
    }
}

/// What a column can be read as.
pub trait FromCell: Sized {
    fn from_cell(cell: Cell) -> Result<Self>;
}

impl FromCell for i64 {
    fn from_cell(cell: Cell) -> Result<Self> {
        match cell {
            Cell::Int(n) => Ok(n),
            other => bail!("expected an integer, found {other:?}"),
        }
    }
}

macro_rules! narrow_int {
    ($($t:ty),*) => {$(
        impl FromCell for $t {
            fn from_cell(cell: Cell) -> Result<Self> {
                let n = i64::from_cell(cell)?;
                <$t>::try_from(n).map_err(|_| anyhow!("{n} is out of range"))
            }
        }
    )*};
}
narrow_int!(i32, u32, u16, u64, usize);

impl FromCell for bool {
    fn from_cell(cell: Cell) -> Result<Self> {
        Ok(i64::from_cell(cell)? != 0)
    }
}

impl FromCell for f64 {
    fn from_cell(cell: Cell) -> Result<Self> {
        match cell {
            Cell::Real(x) => Ok(x),
            Cell::Int(n) => Ok(n as f64),
            other => bail!("expected a number, found {other:?}"),
        }
    }
}

impl FromCell for String {
    fn from_cell(cell: Cell) -> Result<Self> {
        match cell {
            Cell::Text(s) => Ok(s),
            other => bail!("expected text, found {other:?}"),
        }
    }
}

impl FromCell for Vec<u8> {
    fn from_cell(cell: Cell) -> Result<Self> {
        match cell {
            Cell::Bytes(b) => Ok(b),
            other => bail!("expected bytes, found {other:?}"),
        }
    }
}

impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(cell: Cell) -> Result<Self> {
        match cell {
            Cell::Null => Ok(None),
            other => T::from_cell(other).map(Some),
        }
    }
}

/// A row as read, on either backend.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    /// Column `i`, as `T`.
    pub fn get<T: FromCell>(&self, i: usize) -> Result<T> {
        let cell = match self {
            Row::Sqlite(r) => Cell::of_sqlite(r.get_ref(i)?),
            Row::Postgres(r) => r.try_get::<_, PgCell>(i)?.0,
        };
        T::from_cell(cell).map_err(|e| anyhow!("column {i}: {e}"))
    }

    /// Column `i`, bytes, handed to `read` without a copy.
    pub fn bytes<T>(&self, i: usize, read: impl FnOnce(&[u8]) -> T) -> Result<T> {
        Ok(match self {
            Row::Sqlite(r) => read(r.get_ref(i)?.as_blob()?),
            Row::Postgres(r) => read(r.try_get::<_, &[u8]>(i)?),
        })
    }
}

/// A connection or transaction that runs statements.
pub trait Db {
    /// Runs a statement; the rows it changed.
    fn exec(&self, sql: &str, args: &[Value]) -> Result<usize>;

    /// Every row of a query, each read by `read`.
    fn rows<T>(
        &self,
        sql: &str,
        args: &[Value],
        read: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>>;

    /// The first row of a query, if any.
    fn row<T>(
        &self,
        sql: &str,
        args: &[Value],
        read: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<Option<T>>;

    /// `column` is one of the texts of the JSON array in parameter `n`
    /// (SQLite: `IN json_each`; PostgreSQL: `= ANY` of the array, which the
    /// planner answers through the column's index whatever it believes of
    /// the table's size).
    fn in_list(&self, column: &str, n: usize) -> String;

    /// `column` is one of the integers of the JSON array in parameter `n`.
    fn in_int_list(&self, column: &str, n: usize) -> String;

    /// What ends a claim's subquery so that rows another process is
    /// claiming at that moment are skipped (PostgreSQL: `FOR UPDATE SKIP
    /// LOCKED`); SQLite claims under its one write lock and needs nothing.
    fn skip_locked(&self) -> &'static str;

    /// `n` ids for new stories and `n` for new items, given before the
    /// rows are inserted so that many go in one statement (PostgreSQL:
    /// from the tables' sequences; SQLite, which writes under one lock:
    /// counting on from the largest, as it does itself).
    fn reserve_ids(&self, n: usize) -> Result<(Vec<i64>, Vec<i64>)>;

    /// The row of a query that must return one.
    fn one<T>(&self, sql: &str, args: &[Value], read: impl FnOnce(&Row) -> Result<T>) -> Result<T> {
        self.row(sql, args, read)?
            .ok_or_else(|| anyhow!("no row where one was expected"))
    }
}

// ---- SQLite ----

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(n) => ValueRef::Integer(n),
            Value::Real(x) => ValueRef::Real(x),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Bytes(b) => ValueRef::Blob(b),
        }))
    }
}

impl Db for rusqlite::Connection {
    fn exec(&self, sql: &str, args: &[Value]) -> Result<usize> {
        Ok(self
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(args))?)
    }

    fn rows<T>(
        &self,
        sql: &str,
        args: &[Value],
        mut read: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.prepare_cached(sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(read(&Row::Sqlite(r))?);
        }
        Ok(out)
    }

    fn row<T>(
        &self,
        sql: &str,
        args: &[Value],
        read: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut stmt = self.prepare_cached(sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        match rows.next()? {
            Some(r) => read(&Row::Sqlite(r)).map(Some),
            None => Ok(None),
        }
    }

    fn in_list(&self, column: &str, n: usize) -> String {
        format!("{column} IN (SELECT value FROM json_each(?{n}))")
    }

    fn in_int_list(&self, column: &str, n: usize) -> String {
        self.in_list(column, n)
    }

    fn skip_locked(&self) -> &'static str {
        ""
    }

    fn reserve_ids(&self, n: usize) -> Result<(Vec<i64>, Vec<i64>)> {
        let (stories, items): (i64, i64) = self.one(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM stories), (SELECT COALESCE(MAX(id), 0) FROM items)",
            &[],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let after = |largest: i64| (largest + 1..).take(n).collect();
        Ok((after(stories), after(items)))
    }
}

// ---- PostgreSQL ----

/// A PostgreSQL transaction (or connection) with this connection's
/// prepared statements.
pub struct Pg<'a, C: postgres::GenericClient> {
    client: RefCell<&'a mut C>,
    statements: &'a std::sync::Mutex<HashMap<String, postgres::Statement>>,
}

impl<'a, C: postgres::GenericClient> Pg<'a, C> {
    pub fn new(
        client: &'a mut C,
        statements: &'a std::sync::Mutex<HashMap<String, postgres::Statement>>,
    ) -> Pg<'a, C> {
        Pg {
            client: RefCell::new(client),
            statements,
        }
    }

    /// The statement for `sql`, prepared once per connection; but a
    /// statement with a list (`in_list`) is planned at each use (sent
    /// typed, `typed`, or else prepared again), so that
    /// PostgreSQL plans it for the list it gets and the tables as they are
    /// now. Kept, its plan would be the one made for the first lists, often
    /// while the tables were empty: a scan of the whole table, which grows
    /// with every item (25 ms a lookup at 20,000 stories).
    fn prepared(&self, sql: &str) -> Result<postgres::Statement> {
        let mut statements = self.statements.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = statements.get(sql) {
            return Ok(s.clone());
        }
        let statement = self
            .client
            .borrow_mut()
            .prepare(&dollars(sql))
            .map_err(|e| failed_in(e, sql))?;
        if !sql.contains(LIST) {
            statements.insert(sql.to_owned(), statement.clone());
        }
        Ok(statement)
    }

    fn query(&self, sql: &str, args: &[Value]) -> Result<Vec<postgres::Row>> {
        if let Some(params) = typed(sql, args) {
            return self
                .client
                .borrow_mut()
                .query_typed(&dollars(sql), &params)
                .map_err(|e| failed_in(e, sql));
        }
        let statement = self.prepared(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        Ok(self.client.borrow_mut().query(&statement, &params)?)
    }
}

/// A statement's error, saying which statement; the error itself stays in
/// the chain, for its message (a `postgres::Error` alone says only "db
/// error") and for `store::Error` to tell its kind.
fn failed_in(e: postgres::Error, sql: &str) -> anyhow::Error {
    anyhow::Error::from(e).context(format!("running {}", one_line(sql)))
}

/// The arguments of a statement with a list (`in_list`) with the types
/// they are sent as, so that it is parsed, planned and run in one round
/// trip (`query_typed`) rather than prepared first; `None` when one is
/// NULL, whose type only the statement tells.
fn typed<'v>(sql: &str, args: &'v [Value<'v>]) -> Option<Vec<(&'v (dyn ToSql + Sync), Type)>> {
    if !sql.contains(LIST) {
        return None;
    }
    args.iter()
        .map(|a| {
            let ty = match a {
                Value::Null => return None,
                Value::Int(_) => Type::INT8,
                Value::Real(_) => Type::FLOAT8,
                Value::Text(_) => Type::TEXT,
                Value::Bytes(_) => Type::BYTEA,
            };
            Some((a as &(dyn ToSql + Sync), ty))
        })
        .collect()
}

impl<C: postgres::GenericClient> Db for Pg<'_, C> {
    fn exec(&self, sql: &str, args: &[Value]) -> Result<usize> {
        if let Some(params) = typed(sql, args) {
            return Ok(self
                .client
                .borrow_mut()
                .execute_typed(&dollars(sql), &params)
                .map_err(|e| failed_in(e, sql))? as usize);
        }
        let statement = self.prepared(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        Ok(self.client.borrow_mut().execute(&statement, &params)? as usize)
    }

    fn rows<T>(
        &self,
        sql: &str,
        args: &[Value],
        mut read: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.query(sql, args)?
            .iter()
            .map(|r| read(&Row::Postgres(r)))
            .collect()
    }

    fn row<T>(
        &self,
        sql: &str,
        args: &[Value],
        read: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.query(sql, args)?.first() {
            Some(r) => read(&Row::Postgres(r)).map(Some),
            None => Ok(None),
        }
    }

    fn in_list(&self, column: &str, n: usize) -> String {
        format!("{column} = ANY (ARRAY(SELECT {LIST}(CAST(?{n} AS json))))")
    }

    fn in_int_list(&self, column: &str, n: usize) -> String {
        format!("{column} = ANY (ARRAY(SELECT CAST({LIST}(CAST(?{n} AS json)) AS BIGINT)))")
    }

    fn skip_locked(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }

    fn reserve_ids(&self, n: usize) -> Result<(Vec<i64>, Vec<i64>)> {
        // Each sequence moved past `n` ids at once (`nextval` once an id
        // cost 2 µs each on the server, 80 ms for a cold `run --once` of
        // 1,000 feeds). Only writes of polls take these ids, and they hold
        // the poll lock (`store::postgres`), so no `nextval` falls between
        // the two calls. Were something else to take ids there (a hand-made
        // insert), `setval` could move the sequence back below them: the
        // writes after would clash on the primary key and fail (their rows
        // are inserted `ON CONFLICT DO NOTHING` and counted), never
        // overwrite a row, until the ids pass. `setval` asks for UPDATE on
        // the sequences, which the role that made the tables has.
        if n == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let (stories, items): (i64, i64) = self.one(
            "SELECT setval(pg_get_serial_sequence('stories', 'id'),
                           nextval(pg_get_serial_sequence('stories', 'id')) + CAST(?1 AS BIGINT) - 1),
                    setval(pg_get_serial_sequence('items', 'id'),
                           nextval(pg_get_serial_sequence('items', 'id')) + CAST(?1 AS BIGINT) - 1)",
            args![n],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let up_to = |last: i64| (last - n as i64 + 1..=last).collect();
        Ok((up_to(stories), up_to(items)))
    }
}

/// What a list (`in_list`) is read with on PostgreSQL.
const LIST: &str = "json_array_elements_text";

/// A statement on one line, for an error.
fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `?1` as PostgreSQL writes it, `$1`; the statements hold no `?` in
/// their strings.
fn dollars(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

impl ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(n) => match *ty {
                Type::BOOL => (n != 0).to_sql(ty, out),
                Type::INT2 => i16::try_from(n)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(n)?.to_sql(ty, out),
                Type::FLOAT8 => (n as f64).to_sql(ty, out),
                _ => n.to_sql(ty, out),
            },
            Value::Real(x) => x.to_sql(ty, out),
            Value::Text(t) => t.to_sql(ty, out),
            Value::Bytes(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [
            Type::BOOL,
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::FLOAT8,
            Type::TEXT,
            Type::VARCHAR,
            Type::JSON,
            Type::BYTEA,
            Type::UNKNOWN,
        ]
        .contains(ty)
    }

    postgres::types::to_sql_checked!();
}

/// A PostgreSQL column read into a `Cell`, whatever its type among those
/// the schema and its expressions give.
struct PgCell(Cell);

impl<'a> FromSql<'a> for PgCell {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgCell(match *ty {
            Type::BOOL => Cell::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::INT2 => Cell::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => Cell::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => Cell::Int(i64::from_sql(ty, raw)?),
            Type::FLOAT4 => Cell::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => Cell::Real(f64::from_sql(ty, raw)?),
            Type::BYTEA => Cell::Bytes(Vec::<u8>::from_sql(ty, raw)?),
            _ => Cell::Text(String::from_sql(ty, raw)?),
        }))
    }

    fn from_sql_null(
        _: &Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgCell(Cell::Null))
    }

    fn accepts(ty: &Type) -> bool {
        [
            Type::BOOL,
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::FLOAT4,
            Type::FLOAT8,
            Type::BYTEA,
            Type::TEXT,
            Type::VARCHAR,
            Type::NAME,
            Type::BPCHAR,
            Type::JSON,
        ]
        .contains(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_parameters_become_dollars_and_nothing_else_moves() {
        assert_eq!(
            dollars("UPDATE t SET a = ?2 WHERE id = ?1 AND b = '?' AND c = ?10"),
            "UPDATE t SET a = $2 WHERE id = $1 AND b = '?' AND c = $10"
        );
    }

    #[test]
    fn sqlite_reads_back_what_it_was_given() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.exec("CREATE TABLE t (a INTEGER, b TEXT, c REAL, d BLOB)", &[])
            .unwrap();
        let none: Option<String> = None;
        db.exec(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4), (?5, ?6, ?7, ?8)",
            args![7u32, "sept", 0.5, vec![1u8, 2], true, none, 1.0, vec![0u8]],
        )
        .unwrap();
        let rows = db
            .rows("SELECT a, b, c, d FROM t ORDER BY a", &[], |r| {
                Ok((
                    r.get::<i64>(0)?,
                    r.get::<Option<String>>(1)?,
                    r.get::<f64>(2)?,
                    r.get::<Vec<u8>>(3)?,
                ))
            })
            .unwrap();
        assert_eq!(
            rows,
            [
                (1, None, 1.0, vec![0]),
                (7, Some("sept".into()), 0.5, vec![1, 2])
            ]
        );
        let listed = db
            .rows(
                &format!("SELECT a FROM t WHERE {}", db.in_list("b", 1)),
                args!["[\"sept\",\"huit\"]"],
                |r| r.get::<u32>(0),
            )
            .unwrap();
        assert_eq!(listed, [7]);
        assert!(
            db.row("SELECT a FROM t WHERE a = 3", &[], |r| r.get::<i64>(0))
                .unwrap()
                .is_none()
        );
    }
}
