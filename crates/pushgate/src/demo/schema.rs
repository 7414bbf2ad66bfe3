//! The demo's two tables, described once: their DDL, which columns a client may write and with
//! which JSON type, and the SQL the REST API runs. Pure (no database, no HTTP), so the
//! validation is unit-tested on its own.

use serde_json::{Map, Value};

/// The JSON type a column takes and gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Integer,
    Real,
    /// Stored as 0/1, given as `false`/`true`.
    Bool,
}

/// One column of a demo table.
#[derive(Debug)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    /// Whether a client may set it (the id and timestamps are the database's).
    pub(crate) writable: bool,
    /// Whether `POST` must name it.
    pub(crate) required: bool,
    /// Whether it takes `null`.
    pub(crate) nullable: bool,
}

/// One demo table.
#[derive(Debug)]
pub(crate) struct Table {
    /// The table, and the last segment of its route (`/demo/users`).
    pub(crate) name: &'static str,
    /// What one row is called, for error messages.
    pub(crate) row: &'static str,
    /// `CREATE TABLE IF NOT EXISTS …`.
    pub(crate) create: &'static str,
    /// Every column, in table order.
    pub(crate) columns: &'static [Column],
    /// A column set to the current time by every update.
    pub(crate) touched: Option<&'static str>,
}

/// The current time as the demo stores it: ISO-8601 UTC with milliseconds.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ','now')";

const fn column(name: &'static str, kind: Kind, writable: bool, required: bool, nullable: bool) -> Column {
    Column { name, kind, writable, required, nullable }
}

/// `users` and `orders`.
pub(crate) const TABLES: [Table; 2] = [
    Table {
        name: "users",
        row: "user",
        create: "CREATE TABLE IF NOT EXISTS users (\n  \
                 id INTEGER PRIMARY KEY AUTOINCREMENT,\n  \
                 name TEXT NOT NULL,\n  \
                 email TEXT,\n  \
                 active BOOLEAN NOT NULL DEFAULT 1,\n  \
                 created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))\n)",
        columns: &[
            column("id", Kind::Integer, false, false, false),
            column("name", Kind::Text, true, true, false),
            column("email", Kind::Text, true, false, true),
            column("active", Kind::Bool, true, false, false),
            column("created_at", Kind::Text, false, false, false),
        ],
        touched: None,
    },
    Table {
        name: "orders",
        row: "order",
        create: "CREATE TABLE IF NOT EXISTS orders (\n  \
                 id INTEGER PRIMARY KEY AUTOINCREMENT,\n  \
                 user_id INTEGER,\n  \
                 item TEXT NOT NULL,\n  \
                 amount REAL NOT NULL DEFAULT 0,\n  \
                 status TEXT NOT NULL DEFAULT 'new',\n  \
                 urgent BOOLEAN NOT NULL DEFAULT 0,\n  \
                 updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))\n)",
        columns: &[
            column("id", Kind::Integer, false, false, false),
            column("user_id", Kind::Integer, true, false, true),
            column("item", Kind::Text, true, true, false),
            column("amount", Kind::Real, true, false, false),
            column("status", Kind::Text, true, false, false),
            column("urgent", Kind::Bool, true, false, false),
            column("updated_at", Kind::Text, false, false, false),
        ],
        touched: Some("updated_at"),
    },
];

/// The demo table called `name`.
pub(crate) fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|table| table.name == name)
}

/// A value a client wrote, checked against its column's type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SqlValue {
    Null,
    Text(String),
    Integer(i64),
    Real(f64),
    Bool(bool),
}

/// Why a request body does not fit a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Invalid(pub(crate) String);

/// Whether a body creates a row (required columns must be there) or changes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    Insert,
    Update,
}

impl Table {
    /// The columns a client may write, as `a, b, c`.
    fn writable_names(&self) -> String {
        let names: Vec<&str> = self.columns.iter().filter(|c| c.writable).map(|c| c.name).collect();
        names.join(", ")
    }

    /// The columns a JSON body sets, in table order, each checked against its type. Unknown
    /// and read-only members are refused rather than ignored, so a typo is not a silent no-op.
    pub(crate) fn parse_body(&self, body: &[u8], write: Write) -> Result<Vec<(&Column, SqlValue)>, Invalid> {
        let value: Value =
            serde_json::from_slice(body).map_err(|err| Invalid(format!("the body is not JSON: {err}")))?;
        let Value::Object(mut members) = value else {
            return Err(Invalid(format!("the body must be a JSON object with {}", self.writable_names())));
        };
        let mut set = Vec::new();
        for column in self.columns {
            let Some(value) = members.remove(column.name) else {
                if write == Write::Insert && column.required {
                    return Err(Invalid(format!("a new {} needs `{}`", self.row, column.name)));
                }
                continue;
            };
            if !column.writable {
                return Err(Invalid(format!("`{}` is set by the database", column.name)));
            }
            set.push((column, column.check(value)?));
        }
        if let Some(unknown) = members.keys().next() {
            return Err(Invalid(format!(
                "unknown member {unknown:?}; {} have {}",
                self.name,
                self.writable_names()
            )));
        }
        Ok(set)
    }

    /// `json_object('id', "id", …)`: a row as JSON, rendered by SQLite exactly as the
    /// triggers render it (numbers included), booleans still 0/1 (see [`Table::fix_row`]).
    fn row_json(&self) -> String {
        let pairs: Vec<String> = self.columns.iter().map(|c| format!("'{0}', \"{0}\"", c.name)).collect();
        format!("json_object({})", pairs.join(", "))
    }

    /// Every row, in id order.
    pub(crate) fn select_all(&self) -> String {
        format!("SELECT {} FROM \"{}\" ORDER BY id", self.row_json(), self.name)
    }

    /// The row with id `?1`.
    pub(crate) fn select_one(&self) -> String {
        format!("SELECT {} FROM \"{}\" WHERE id = ?1", self.row_json(), self.name)
    }

    /// Inserts `set` (bound in order) and returns the new row.
    pub(crate) fn insert(&self, set: &[(&Column, SqlValue)]) -> String {
        let names: Vec<String> = set.iter().map(|(c, _)| format!("\"{}\"", c.name)).collect();
        let params: Vec<&str> = set.iter().map(|_| "?").collect();
        format!(
            "INSERT INTO \"{}\" ({}) VALUES ({}) RETURNING {}",
            self.name,
            names.join(", "),
            params.join(", "),
            self.row_json()
        )
    }

    /// Updates `set` (bound in order, then the id) and returns the row; `None` when `set` is
    /// empty (nothing to write).
    pub(crate) fn update(&self, set: &[(&Column, SqlValue)]) -> Option<String> {
        if set.is_empty() {
            return None;
        }
        let mut assignments: Vec<String> = set.iter().map(|(c, _)| format!("\"{}\" = ?", c.name)).collect();
        if let Some(touched) = self.touched {
            assignments.push(format!("\"{touched}\" = {NOW}"));
        }
        Some(format!(
            "UPDATE \"{}\" SET {} WHERE id = ? RETURNING {}",
            self.name,
            assignments.join(", "),
            self.row_json()
        ))
    }

    /// Deletes the row with id `?1`.
    pub(crate) fn delete(&self) -> String {
        format!("DELETE FROM \"{}\" WHERE id = ?1", self.name)
    }

    /// A row as [`row_json`](Self::row_json) gave it, with booleans as `true`/`false` (the
    /// same fix the source applies to the triggers' JSON, so a snapshot row and an event's
    /// row are equal).
    pub(crate) fn fix_row(&self, text: &str) -> Result<Value, Invalid> {
        let mut row: Map<String, Value> =
            serde_json::from_str(text).map_err(|err| Invalid(format!("a row is not JSON: {err}")))?;
        for column in self.columns.iter().filter(|c| c.kind == Kind::Bool) {
            if let Some(value) = row.get_mut(column.name)
                && let Value::Number(n) = &*value
            {
                *value = Value::Bool(n.as_f64().is_some_and(|n| n != 0.0));
            }
        }
        Ok(Value::Object(row))
    }
}

impl Column {
    /// `value` as this column's type, or why not.
    fn check(&self, value: Value) -> Result<SqlValue, Invalid> {
        let wrong = |expected: &str, value: &Value| {
            let null = if self.nullable { " or null" } else { "" };
            Invalid(format!("`{}` must be {expected}{null}, got {value}", self.name))
        };
        Ok(match (self.kind, value) {
            (_, Value::Null) if self.nullable => SqlValue::Null,
            (Kind::Text, Value::String(text)) if self.required && text.trim().is_empty() => {
                return Err(Invalid(format!("`{}` must not be empty", self.name)));
            }
            (Kind::Text, Value::String(text)) => SqlValue::Text(text),
            (Kind::Integer, Value::Number(n)) if n.as_i64().is_some() => {
                SqlValue::Integer(n.as_i64().unwrap_or_default())
            }
            (Kind::Real, Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => {
                SqlValue::Real(n.as_f64().unwrap_or_default())
            }
            (Kind::Bool, Value::Bool(b)) => SqlValue::Bool(b),
            (Kind::Text, value) => return Err(wrong("a string", &value)),
            (Kind::Integer, value) => return Err(wrong("an integer", &value)),
            (Kind::Real, value) => return Err(wrong("a number", &value)),
            (Kind::Bool, value) => return Err(wrong("true or false", &value)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> &'static Table {
        table("users").expect("users")
    }

    fn orders() -> &'static Table {
        table("orders").expect("orders")
    }

    #[test]
    fn bodies_are_checked_against_the_columns() {
        let set = users().parse_body(br#"{"email":null,"name":"Ada","active":false}"#, Write::Insert);
        let set: Vec<_> = set.expect("valid").into_iter().map(|(c, v)| (c.name, v)).collect();
        assert_eq!(
            set,
            [
                ("name", SqlValue::Text("Ada".into())),
                ("email", SqlValue::Null),
                ("active", SqlValue::Bool(false))
            ]
        );
        let set = orders().parse_body(br#"{"amount":12,"user_id":3}"#, Write::Update).expect("valid");
        let set: Vec<_> = set.into_iter().map(|(c, v)| (c.name, v)).collect();
        assert_eq!(set, [("user_id", SqlValue::Integer(3)), ("amount", SqlValue::Real(12.0))]);
        assert!(orders().parse_body(b"{}", Write::Update).expect("nothing to change").is_empty());

        let refused: [(&Table, &[u8], Write, &str); 11] = [
            (users(), b"nope", Write::Insert, "not JSON"),
            (users(), b"[1]", Write::Insert, "JSON object"),
            (users(), br#"{"email":"a@b"}"#, Write::Insert, "needs `name`"),
            (users(), br#"{"name":"  "}"#, Write::Insert, "must not be empty"),
            (users(), br#"{"name":null}"#, Write::Update, "`name` must be a string, got null"),
            (users(), br#"{"name":"A","active":1}"#, Write::Insert, "true or false"),
            (users(), br#"{"id":4}"#, Write::Update, "set by the database"),
            (users(), br#"{"nmae":"A"}"#, Write::Update, "unknown member \"nmae\""),
            (orders(), br#"{"item":"x","user_id":1.5}"#, Write::Insert, "an integer or null"),
            (orders(), br#"{"item":"x","amount":"3"}"#, Write::Insert, "a number"),
            (orders(), br#"{"updated_at":"now"}"#, Write::Update, "set by the database"),
        ];
        for (table, body, write, needle) in refused {
            let err = table.parse_body(body, write).expect_err("invalid");
            assert!(err.0.contains(needle), "{}: {err}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn sql_names_only_known_columns() {
        let set = orders().parse_body(br#"{"status":"paid","urgent":true}"#, Write::Update).expect("valid");
        let update = orders().update(&set).expect("something to write");
        assert!(
            update.starts_with(r#"UPDATE "orders" SET "status" = ?, "urgent" = ?, "updated_at" = strftime("#)
        );
        assert!(update.contains("WHERE id = ? RETURNING json_object('id', \"id\", 'user_id', \"user_id\""));
        assert_eq!(users().update(&[]), None);
        let set = users().parse_body(br#"{"name":"Ada"}"#, Write::Insert).expect("valid");
        assert!(users().insert(&set).starts_with(r#"INSERT INTO "users" ("name") VALUES (?) RETURNING"#));
    }

    #[test]
    fn booleans_become_true_and_false() {
        let row = users().fix_row(r#"{"id":1,"name":"Ada","active":1,"email":null}"#).expect("valid");
        assert_eq!(row, serde_json::json!({"id":1,"name":"Ada","active":true,"email":null}));
        let row = orders().fix_row(r#"{"id":2,"urgent":0,"amount":12.5}"#).expect("valid");
        assert_eq!(row, serde_json::json!({"id":2,"urgent":false,"amount":12.5}));
    }
}
