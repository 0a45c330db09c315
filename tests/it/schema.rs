//! The two backends keep one schema: the tables, columns, keys, indexes
//! and checks that `migrations/sqlite/` makes on SQLite and
//! `migrations/postgres/` makes on a real PostgreSQL, read back from each
//! database's catalogue and compared. A migration added to one folder
//! without its twin in the other fails here.

use std::collections::BTreeSet;

use crate::pg_server;

/// One fact of a schema, in words both databases can be read into.
type Facts = BTreeSet<String>;

#[test]
fn sqlite_and_postgresql_migrations_make_the_same_schema() {
    let sqlite = sqlite_facts();
    let postgres = postgres_facts();
    let only_sqlite: Vec<_> = sqlite.difference(&postgres).collect();
    let only_postgres: Vec<_> = postgres.difference(&sqlite).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "the schemas drifted apart\n  only on SQLite: {only_sqlite:#?}\n  only on PostgreSQL: {only_postgres:#?}"
    );
    // The comparison reads something: every table, with its columns.
    for table in [
        "feeds",
        "items",
        "stories",
        "alerts",
        "digests",
        "wire_prints",
    ] {
        assert!(
            sqlite
                .iter()
                .any(|f| f.starts_with(&format!("column {table}."))),
            "{table} was not read"
        );
    }
    assert!(sqlite.len() > 120, "{} facts", sqlite.len());
}

fn migrations(folder: &str) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(folder);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// A column type as a kind both databases share.
fn kind(declared: &str) -> &'static str {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" => "integer",
        "text" => "text",
        "blob" | "bytea" => "bytes",
        "real" | "double precision" => "real",
        other => panic!("a column type this test does not know: {other}"),
    }
}

/// A default value without quotes or casts: `'pending'::text` and
/// `'pending'` are both `pending`.
fn default(value: Option<String>) -> String {
    let Some(v) = value else {
        return "none".into();
    };
    if v.starts_with("nextval(") {
        return "none".into();
    }
    v.split("::").next().unwrap().trim_matches('\'').to_string()
}

/// The quoted values a CHECK allows, sorted.
fn allowed(check: &str) -> String {
    let mut values: Vec<&str> = check.split('\'').skip(1).step_by(2).collect();
    values.sort();
    values.join(",")
}

fn sqlite_facts() -> Facts {
    let db = rusqlite::Connection::open_in_memory().unwrap();
    for sql in migrations("sqlite") {
        db.execute_batch(&sql).unwrap();
    }
    let mut facts = Facts::new();
    let tables: Vec<(String, String)> = db
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (table, sql) in &tables {
        facts.insert(format!("table {table}"));
        let columns: Vec<(String, String, bool, Option<String>, i64)> = db
            .prepare(&format!(
                "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{table}')"
            ))
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut primary: Vec<(i64, String)> = Vec::new();
        for (name, ty, not_null, dflt, pk) in columns {
            // SQLite's INTEGER PRIMARY KEY is never NULL, declared or not.
            let not_null = not_null || pk > 0;
            facts.insert(format!(
                "column {table}.{name} {} {} default={}",
                kind(&ty),
                if not_null { "not-null" } else { "null" },
                default(dflt)
            ));
            if pk > 0 {
                primary.push((pk, name));
            }
        }
        primary.sort();
        let primary: Vec<String> = primary.into_iter().map(|(_, n)| n).collect();
        facts.insert(format!("unique {table}({}) primary", primary.join(",")));
        let fks: Vec<(String, String, String)> = db
            .prepare(&format!(
                "SELECT \"from\", \"table\", \"to\" FROM pragma_foreign_key_list('{table}')"
            ))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (from, to_table, to) in fks {
            facts.insert(format!("reference {table}.{from} -> {to_table}.{to}"));
        }
        // CHECKs live only in the table's text: `col ... CHECK (col IN (...))`.
        for part in sql.split("CHECK (").skip(1) {
            let column = part.split_whitespace().next().unwrap().trim_matches('(');
            let body = part.split(")").next().unwrap();
            facts.insert(format!("check {table}.{column} in {}", allowed(body)));
        }
        let indexes: Vec<(String, bool, String)> = db
            .prepare(&format!(
                "SELECT name, \"unique\", origin FROM pragma_index_list('{table}')"
            ))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (index, unique, origin) in indexes {
            let columns: Vec<String> = db
                .prepare(&format!(
                    "SELECT name FROM pragma_index_info('{index}') ORDER BY seqno"
                ))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            match (unique, origin.as_str()) {
                (true, "pk") => {
                    facts.insert(format!("unique {table}({}) primary", columns.join(",")));
                }
                (true, _) => {
                    facts.insert(format!("unique {table}({})", columns.join(",")));
                }
                (false, _) => {
                    facts.insert(format!("index {index} on {table}({})", columns.join(",")));
                }
            }
        }
    }
    facts
}

fn postgres_facts() -> Facts {
    let url = pg_server::database();
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    for sql in migrations("postgres") {
        db.batch_execute(&sql).unwrap();
    }
    let mut facts = Facts::new();
    let rows = db
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            &[],
        )
        .unwrap();
    for row in rows {
        let table: String = row.get(0);
        facts.insert(format!("table {table}"));
    }
    for row in db
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text, column_default::text
             FROM information_schema.columns WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
    {
        let (table, name, ty, nullable, dflt): (String, String, String, String, Option<String>) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        facts.insert(format!(
            "column {table}.{name} {} {} default={}",
            kind(&ty),
            if nullable == "NO" { "not-null" } else { "null" },
            default(dflt)
        ));
    }
    // Keys, references and checks, from the constraints.
    for row in db
        .query(
            "SELECT c.conrelid::regclass::text, c.contype::text,
                    ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o),
                    c.confrelid::regclass::text,
                    ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                          JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o),
                    pg_get_constraintdef(c.oid)
             FROM pg_constraint c JOIN pg_namespace s ON s.oid = c.connamespace
             WHERE s.nspname = 'public'",
            &[],
        )
        .unwrap()
    {
        let table: String = row.get(0);
        let kind: String = row.get(1);
        let columns: Vec<String> = row.get(2);
        match kind.as_str() {
            "p" => {
                facts.insert(format!("unique {table}({}) primary", columns.join(",")));
            }
            "u" => {
                facts.insert(format!("unique {table}({})", columns.join(",")));
            }
            "f" => {
                let to: String = row.get(3);
                let to_columns: Vec<String> = row.get(4);
                facts.insert(format!(
                    "reference {table}.{} -> {to}.{}",
                    columns[0], to_columns[0]
                ));
            }
            "c" => {
                let def: String = row.get(5);
                facts.insert(format!("check {table}.{} in {}", columns[0], allowed(&def)));
            }
            other => panic!("a constraint kind this test does not know: {other}"),
        }
    }
    // Indexes that are not a constraint's.
    for row in db
        .query(
            "SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text, i.indisunique,
                    ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o)
             FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
             JOIN pg_namespace s ON s.oid = t.relnamespace
             WHERE s.nspname = 'public'
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            &[],
        )
        .unwrap()
    {
        let (index, table, unique, columns): (String, String, bool, Vec<String>) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if unique {
            facts.insert(format!("unique {table}({})", columns.join(",")));
        } else {
            facts.insert(format!("index {index} on {table}({})", columns.join(",")));
        }
    }
    facts
}
