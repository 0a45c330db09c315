//! `veille copy-db --to URL` (SPEC §10): a single machine's SQLite
//! database copied whole into an empty PostgreSQL database, so that the
//! processes started on it alert nothing again and send what was pending.
//!
//! The tables and their columns are PostgreSQL's (the schemas are kept
//! alike, `tests/it/schema.rs`), taken in the order their foreign keys need;
//! a table SQLite has and PostgreSQL lacks stops the copy rather than being
//! left behind. The source is read in one snapshot with writes refused
//! (`query_only`); the target is written in one transaction, with COPY, and
//! its identity counters are moved past the copied ids. The tables of the
//! running daemons (`RUNNING`) are not history and stay empty.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, bail};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};

use super::location::{Location, PgUrl};
use super::postgres::Postgres;
use super::sql::{Cell, Value};
use super::sqlite::Sqlite;

/// Tables of the running daemons, not of the history: which processes
/// live and which of them leads. The copy leaves them empty.
const RUNNING: [&str; 2] = ["processes", "leader"];

/// What was copied: rows per table, in the order copied.
pub struct Copied {
    pub tables: Vec<(String, u64)>,
}

/// A table of the target, its columns in order and their types.
struct Table {
    name: String,
    columns: Vec<String>,
}

/// Copies the SQLite database at `from` into the empty PostgreSQL
/// database at `to` (given veille's schema first).
pub fn copy_database(from: &Location, to: &Location) -> Result<Copied> {
    let Location::File(from) = from else {
        bail!("the config's database is {from}, not an SQLite file: there is nothing to copy from");
    };
    let Location::Postgres(to) = to else {
        bail!("copy-db copies into PostgreSQL: give a postgresql:// URL");
    };
    copy(from, to)
}

fn copy(from: &Path, to: &PgUrl) -> Result<Copied> {
    let source = Sqlite::open_existing(from)?;
    source
        .connection()
        .pragma_update(None, "query_only", "ON")?;
    let target = Postgres::open(to)?;
    Ok(target.with_client(move |client| {
        let source = source.connection();
        let tables = tables(client)?;
        refuse_missing(source, &tables, from)?;
        let mut tx = client.transaction()?;
        if let Some(table) = first_with_rows(&mut tx, &tables)? {
            bail!(
                "the database {to} is not empty (table {table} has rows); copy-db only fills an empty database"
            );
        }
        // One snapshot of the source for every table.
        let snapshot = source.unchecked_transaction()?;
        let mut copied = Vec::with_capacity(tables.len());
        for table in &tables {
            let rows = copy_table(&snapshot, &mut tx, table)
                .with_context(|| format!("cannot copy the table {}", table.name))?;
            copied.push((table.name.clone(), rows));
        }
        snapshot.finish()?;
        move_identities(&mut tx)?;
        tx.commit()?;
        Ok(Copied { tables: copied })
    })?)
}

/// The target's tables, each after those its foreign keys name, and their
/// columns; without veille's schema version, which the target has its own.
fn tables(client: &mut postgres::Client) -> Result<Vec<Table>> {
    let mut columns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in client.query(
        "SELECT c.table_name::text, c.column_name::text
         FROM information_schema.columns c
         JOIN information_schema.tables t
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
           AND c.table_name <> 'veille_schema'
         ORDER BY c.table_name, c.ordinal_position",
        &[],
    )? {
        let table: String = row.get(0);
        if !RUNNING.contains(&table.as_str()) {
            columns.entry(table).or_default().push(row.get(1));
        }
    }
    let mut needs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in client.query(
        "SELECT t.relname::text, f.relname::text
         FROM pg_constraint k
         JOIN pg_class t ON t.oid = k.conrelid
         JOIN pg_class f ON f.oid = k.confrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE k.contype = 'f' AND n.nspname = current_schema() AND k.conrelid <> k.confrelid",
        &[],
    )? {
        needs.entry(row.get(0)).or_default().insert(row.get(1));
    }
    // Tables whose needs are all placed, until none is left.
    let mut ordered = Vec::with_capacity(columns.len());
    let mut placed = BTreeSet::new();
    while placed.len() < columns.len() {
        let ready: Vec<&String> = columns
            .keys()
            .filter(|t| !placed.contains(*t))
            .filter(|t| needs.get(*t).is_none_or(|n| n.is_subset(&placed)))
            .collect();
        if ready.is_empty() {
            bail!("the schema's foreign keys go round in a circle");
        }
        for name in ready {
            ordered.push(Table {
                name: name.clone(),
                columns: columns[name].clone(),
            });
        }
        placed.extend(ordered.iter().map(|t| t.name.clone()));
    }
    Ok(ordered)
}

/// Stops the copy when the source has a table the target lacks: the copy
/// would not be whole.
fn refuse_missing(source: &rusqlite::Connection, tables: &[Table], from: &Path) -> Result<()> {
    let mut stmt = source.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in names {
        if !tables.iter().any(|t| t.name == name) && !RUNNING.contains(&name.as_str()) {
            bail!(
                "the table {name} of {} has no place in the PostgreSQL schema of this veille; nothing was copied",
                from.display()
            );
        }
    }
    Ok(())
}

/// The first table holding rows, if any.
fn first_with_rows(tx: &mut postgres::Transaction, tables: &[Table]) -> Result<Option<String>> {
    for table in tables {
        let any: bool = tx
            .query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM {})", quoted(&table.name)),
                &[],
            )?
            .get(0);
        if any {
            return Ok(Some(table.name.clone()));
        }
    }
    Ok(None)
}

/// Copies one table's rows with COPY (binary); their number, checked on
/// the target.
fn copy_table(
    source: &rusqlite::Connection,
    tx: &mut postgres::Transaction,
    table: &Table,
) -> Result<u64> {
    let list = table
        .columns
        .iter()
        .map(|c| quoted(c))
        .collect::<Vec<_>>()
        .join(", ");
    let name = quoted(&table.name);
    let types: Vec<Type> = tx
        .prepare(&format!("SELECT {list} FROM {name}"))?
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    let mut read = source.prepare(&format!("SELECT {list} FROM {name}"))?;
    let mut rows = read.query([])?;
    let sink = tx.copy_in(&format!("COPY {name} ({list}) FROM STDIN (FORMAT binary)"))?;
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    let mut count = 0u64;
    let mut cells: Vec<Cell> = Vec::with_capacity(types.len());
    while let Some(row) = rows.next()? {
        cells.clear();
        for i in 0..types.len() {
            cells.push(Cell::of_sqlite(row.get_ref(i)?));
        }
        let values: Vec<Value> = cells.iter().map(Cell::value).collect();
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        writer.write(&params)?;
        count += 1;
    }
    writer.finish()?;
    let stored: i64 = tx
        .query_one(&format!("SELECT COUNT(*) FROM {name}"), &[])?
        .get(0);
    if stored as u64 != count {
        bail!("{count} rows read but {stored} stored");
    }
    Ok(count)
}

/// Moves every identity counter past the largest id copied, so that the
/// next row made on PostgreSQL takes a new id.
fn move_identities(tx: &mut postgres::Transaction) -> Result<()> {
    let identities = tx.query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND is_identity = 'YES'",
        &[],
    )?;
    for row in identities {
        let (table, column): (String, String) = (row.get(0), row.get(1));
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX({c}), 0) + 1, false) FROM {t}",
                c = quoted(&column),
                t = quoted(&table)
            ),
            &[&table, &column],
        )?;
    }
    Ok(())
}

/// A name as an SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
