//! From an outbox row to a hub event: parse the trigger's JSON, fix the column types the
//! trigger could not render, and wrap it as `{"table", "op", "id", "new", "old"}`.

use std::collections::HashMap;

use base64::Engine as _;
use pushgate_hub::NewEvent;
use serde_json::{Map, Value, json};

use crate::error::SourceError;
use crate::model::{ColumnKind, OutboxRow};

/// The operations a trigger records; each is also the event type.
const OPS: [&str; 3] = ["insert", "update", "delete"];

/// The event for `row`, of type `row.op`, with `fixes` applied to both row images.
pub(crate) fn change_event(
    row: &OutboxRow,
    fixes: &HashMap<String, ColumnKind>,
) -> Result<NewEvent, SourceError> {
    if !OPS.contains(&row.op.as_str()) {
        return Err(malformed(row.id, format!("unknown op {:?}", row.op)));
    }
    let new = row_image(row.id, row.new_row.as_deref(), fixes)?;
    let old = row_image(row.id, row.old_row.as_deref(), fixes)?;
    let data = json!({"table": row.table, "op": row.op, "id": row.id, "new": new, "old": old});
    Ok(NewEvent::new(data).event_type(row.op.as_str()))
}

/// One row image: `null` when absent, else a JSON object with its columns fixed.
fn row_image(id: i64, text: Option<&str>, fixes: &HashMap<String, ColumnKind>) -> Result<Value, SourceError> {
    let Some(text) = text else {
        return Ok(Value::Null);
    };
    let mut columns: Map<String, Value> = match serde_json::from_str(text) {
        Ok(Value::Object(columns)) => columns,
        Ok(other) => return Err(malformed(id, format!("row image is not a JSON object but {other}"))),
        Err(err) => return Err(malformed(id, format!("row image is not JSON: {err}"))),
    };
    for (column, kind) in fixes {
        if let Some(value) = columns.get_mut(column) {
            fix(value, *kind).map_err(|reason| malformed(id, format!("column {column:?}: {reason}")))?;
        }
    }
    Ok(Value::Object(columns))
}

/// Turns a value as the trigger rendered it into the JSON type the column has.
fn fix(value: &mut Value, kind: ColumnKind) -> Result<(), String> {
    match (kind, &*value) {
        (_, Value::Null) => {}
        (ColumnKind::Bool, Value::Number(n)) => *value = Value::Bool(n.as_f64().is_some_and(|n| n != 0.0)),
        (ColumnKind::Bool, Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "1" | "true" | "t" => *value = Value::Bool(true),
            "0" | "false" | "f" => *value = Value::Bool(false),
            _ => {}
        },
        (ColumnKind::HexBlob, Value::String(hex)) => {
            let bytes = decode_hex(hex).ok_or_else(|| "blob is not hex".to_owned())?;
            *value = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        (ColumnKind::SpacedDateTime, Value::String(s)) if is_spaced_datetime(s) => {
            *value = Value::String(format!("{}T{}", &s[..10], &s[11..]));
        }
        _ => {}
    }
    Ok(())
}

/// `YYYY-MM-DD HH…`: a date, a space, and something that starts like a time.
fn is_spaced_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    b.len() >= 13
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b' '
        && digits(11..13)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes.chunks_exact(2).map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?)).collect()
}

fn malformed(id: i64, reason: String) -> SourceError {
    SourceError::MalformedRow { id, reason }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(op: &str, new: Option<&str>, old: Option<&str>) -> OutboxRow {
        OutboxRow {
            id: 7,
            table: "items".into(),
            op: op.into(),
            new_row: new.map(Into::into),
            old_row: old.map(Into::into),
        }
    }

    fn data(event: &NewEvent) -> Value {
        event.data().to_value().unwrap()
    }

    #[test]
    fn wraps_row_images() {
        let event =
            change_event(&row("insert", Some(r#"{"id":1,"name":"a"}"#), None), &HashMap::new()).unwrap();
        assert_eq!(event.type_name(), "insert");
        assert_eq!(
            data(&event),
            json!({"table": "items", "op": "insert", "id": 7, "new": {"id": 1, "name": "a"}, "old": null})
        );
        let event = change_event(&row("delete", None, Some(r#"{"id":1}"#)), &HashMap::new()).unwrap();
        assert_eq!(data(&event)["old"], json!({"id": 1}));
        assert_eq!(data(&event)["new"], Value::Null);
    }

    #[test]
    fn fixes_columns() {
        let fixes = HashMap::from([
            ("flag".to_owned(), ColumnKind::Bool),
            ("off".to_owned(), ColumnKind::Bool),
            ("bin".to_owned(), ColumnKind::HexBlob),
            ("empty".to_owned(), ColumnKind::HexBlob),
            ("at".to_owned(), ColumnKind::SpacedDateTime),
            ("day".to_owned(), ColumnKind::SpacedDateTime),
            ("gone".to_owned(), ColumnKind::Bool),
        ]);
        let new = r#"{"flag":1,"off":0,"bin":"0001FFfe","empty":"","at":"2024-05-06 07:08:09.5","day":"2024-05-06","n":null,"gone":null}"#;
        let event = change_event(&row("update", Some(new), Some(new)), &fixes).unwrap();
        let want = json!({"flag": true, "off": false, "bin": "AAH//g==", "empty": "", "at": "2024-05-06T07:08:09.5",
            "day": "2024-05-06", "n": null, "gone": null});
        assert_eq!(data(&event)["new"], want);
        assert_eq!(data(&event)["old"], want);
    }

    #[test]
    fn rejects_malformed_rows() {
        let none = HashMap::new();
        for bad in
            [row("upsert", None, None), row("insert", Some("{"), None), row("insert", Some("[1]"), None)]
        {
            assert!(matches!(change_event(&bad, &none), Err(SourceError::MalformedRow { id: 7, .. })));
        }
        let fixes = HashMap::from([("b".to_owned(), ColumnKind::HexBlob)]);
        let bad = row("insert", Some(r#"{"b":"xyz"}"#), None);
        assert!(matches!(change_event(&bad, &fixes), Err(SourceError::MalformedRow { .. })));
    }
}
