//! The demo's REST API, for each table `T` of `users` and `orders`:
//!
//! - `GET /demo/T` → `{"rows":[…],"cursor":"<hub cursor>"}`: every row, and the cursor to
//!   subscribe from so that no change is missed (the snapshot pattern: the rows are read while
//!   the source is quiesced, see [`Source::quiesce`](pushgate_sources::Source::quiesce));
//! - `GET /demo/T/{id}` → the row, or `404`;
//! - `POST /demo/T` with the writable columns → `201` with the new row;
//! - `PUT /demo/T/{id}` with some writable columns → `200` with the changed row, or `404`;
//! - `DELETE /demo/T/{id}` → `204`, or `404`.
//!
//! Rows are JSON objects with the table's columns, typed as in the change events (booleans as
//! `true`/`false`). A body that does not fit the table is `400 invalid_json`, a malformed id
//! `400 invalid_parameter`; errors use the shared `{"error":{"code","message"}}` body.
//!
//! With auth on, the API is what its changes are: reading a table (`GET`) needs the right to
//! subscribe to its topic (`db.users`), writing one the right to publish on it, with the token
//! of the request (`?token=` or `Authorization: Bearer`; the admin key writes).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use pushgate_http::{Action, ApiError, Authorize, ErrorCode, Query, token_from};
use pushgate_hub::{Hub, TopicName};
use pushgate_sources::SourceError;
use serde_json::{Value, json};
use sqlx::Sqlite;
use sqlx::query::QueryScalar;
use sqlx::sqlite::SqliteArguments;

use super::Demo;
use super::schema::{self, Column, Invalid, SqlValue, Table, Write};
use crate::api::{BodyLimits, json_response, read_request_body};

/// SQLite's "database is locked" result code: the busy timeout passed.
const SQLITE_BUSY: &str = "5";

#[derive(Clone)]
struct DemoState {
    hub: Hub,
    demo: Arc<Demo>,
    bodies: BodyLimits,
}

/// The `/demo/` routes over `demo`, whose changes reach `hub` through its source; bodies
/// limited by `bodies`; each request checked with `authorize`.
pub(crate) fn router(hub: Hub, demo: Arc<Demo>, bodies: BodyLimits, authorize: Arc<dyn Authorize>) -> Router {
    let state = DemoState { hub, demo, bodies };
    Router::new()
        .route("/demo/{table}", get(list).post(create))
        .route("/demo/{table}/{id}", get(read).put(update).delete(remove))
        .route_layer(middleware::from_fn_with_state(authorize, check_access))
        .with_state(state)
}

/// Reading a table is subscribing to its topic, writing one is publishing on it.
async fn check_access(
    State(authorize): State<Arc<dyn Authorize>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let table = request.uri().path().trim_start_matches("/demo/").split('/').next().unwrap_or_default();
    // An unknown table is the handler's 404; it has no topic to check.
    if let Some(table) = schema::table(table)
        && let Ok(topic) = TopicName::new(&format!("db.{}", table.name))
    {
        let action = if request.method() == Method::GET { Action::Subscribe } else { Action::Publish };
        let query = Query::parse(request.uri().query());
        authorize.check(token_from(&query, request.headers()), action, &[topic])?;
    }
    Ok(next.run(request).await)
}

/// `GET /demo/T`: the snapshot and the cursor after it.
async fn list(
    State(state): State<DemoState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let table = table_of(path)?;
    // Everything committed so far is in the hub before the cursor, and nothing is published
    // while the rows are read: a change is in the rows, after the cursor, or both; never
    // neither.
    let guard = state.demo.source.quiesce(&state.hub).await.map_err(source_error)?;
    let texts: Vec<String> =
        sqlx::query_scalar(&table.select_all()).fetch_all(&state.demo.pool).await.map_err(database_error)?;
    let cursor = guard.cursor();
    drop(guard);
    let rows = texts.iter().map(|text| table.fix_row(text)).collect::<Result<Vec<_>, _>>().map_err(broken)?;
    Ok(answer(StatusCode::OK, &json!({ "rows": rows, "cursor": cursor.to_string() })))
}

/// `GET /demo/T/{id}`.
async fn read(
    State(state): State<DemoState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (table, id) = table_and_id(path)?;
    let text: Option<String> = sqlx::query_scalar(&table.select_one())
        .bind(id)
        .fetch_optional(&state.demo.pool)
        .await
        .map_err(database_error)?;
    row_answer(table, id, text)
}

/// `POST /demo/T`.
async fn create(
    State(state): State<DemoState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_request_body(&headers, body, state.bodies).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let created = async {
        let table = table_of(path)?;
        let set = table.parse_body(&body, Write::Insert).map_err(invalid)?;
        let sql = table.insert(&set);
        let text = bind_all(sqlx::query_scalar(&sql), &set)
            .fetch_one(&state.demo.pool)
            .await
            .map_err(database_error)?;
        let row = table.fix_row(&text).map_err(broken)?;
        let mut response = answer(StatusCode::CREATED, &row);
        if let Ok(location) = HeaderValue::from_str(&format!("/demo/{}/{}", table.name, row["id"])) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok::<_, ApiError>(response)
    };
    created.await.into_response()
}

/// `PUT /demo/T/{id}`: changes the columns the body names; an empty object changes nothing.
async fn update(
    State(state): State<DemoState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_request_body(&headers, body, state.bodies).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let updated = async {
        let (table, id) = table_and_id(path)?;
        let set = table.parse_body(&body, Write::Update).map_err(invalid)?;
        let text: Option<String> = match table.update(&set) {
            Some(sql) => {
                bind_all(sqlx::query_scalar(&sql), &set).bind(id).fetch_optional(&state.demo.pool).await
            }
            None => sqlx::query_scalar(&table.select_one()).bind(id).fetch_optional(&state.demo.pool).await,
        }
        .map_err(database_error)?;
        row_answer(table, id, text)
    };
    updated.await.into_response()
}

/// `DELETE /demo/T/{id}`.
async fn remove(
    State(state): State<DemoState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (table, id) = table_and_id(path)?;
    let deleted = sqlx::query(&table.delete())
        .bind(id)
        .execute(&state.demo.pool)
        .await
        .map_err(database_error)?
        .rows_affected();
    if deleted == 0 {
        return Err(no_such_row(table, id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Binds the values of `set`, in order.
fn bind_all<'q>(
    mut query: QueryScalar<'q, Sqlite, String, SqliteArguments<'q>>,
    set: &[(&Column, SqlValue)],
) -> QueryScalar<'q, Sqlite, String, SqliteArguments<'q>> {
    for (_, value) in set {
        query = match value {
            SqlValue::Null => query.bind(None::<String>),
            SqlValue::Text(text) => query.bind(text.clone()),
            SqlValue::Integer(n) => query.bind(*n),
            SqlValue::Real(x) => query.bind(*x),
            SqlValue::Bool(b) => query.bind(*b),
        };
    }
    query
}

fn table_of(path: Result<Path<String>, PathRejection>) -> Result<&'static Table, ApiError> {
    let Path(name) = path.map_err(|err| ApiError::new(ErrorCode::InvalidParameter, err.body_text()))?;
    known_table(&name)
}

fn table_and_id(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(&'static Table, i64), ApiError> {
    let Path((name, id)) = path.map_err(|err| ApiError::new(ErrorCode::InvalidParameter, err.body_text()))?;
    let table = known_table(&name)?;
    let id = id.parse().map_err(|_| {
        ApiError::new(ErrorCode::InvalidParameter, format!("{id:?} is not a {} id (an integer)", table.row))
    })?;
    Ok((table, id))
}

fn known_table(name: &str) -> Result<&'static Table, ApiError> {
    schema::table(name).ok_or_else(|| {
        let names: Vec<&str> = schema::TABLES.iter().map(|table| table.name).collect();
        ApiError::new(
            ErrorCode::NotFound,
            format!("no demo table {name:?}; there are {}", names.join(" and ")),
        )
    })
}

fn row_answer(table: &Table, id: i64, text: Option<String>) -> Result<Response, ApiError> {
    let text = text.ok_or_else(|| no_such_row(table, id))?;
    Ok(answer(StatusCode::OK, &table.fix_row(&text).map_err(broken)?))
}

fn no_such_row(table: &Table, id: i64) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no {} with id {id}", table.row))
}

/// A JSON answer that no cache keeps: the rows change under it.
fn answer(status: StatusCode, value: &Value) -> Response {
    let mut response = json_response(status, value.to_string());
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn invalid(err: Invalid) -> ApiError {
    ApiError::new(ErrorCode::InvalidJson, err.0)
}

/// A row SQLite rendered is not the JSON expected: a bug, or a table changed by hand.
fn broken(err: Invalid) -> ApiError {
    tracing::error!(error = %err, "demo: unexpected row");
    ApiError::new(ErrorCode::Internal, err.0)
}

fn database_error(err: sqlx::Error) -> ApiError {
    let busy = err.as_database_error().and_then(|db| db.code()).is_some_and(|code| code == SQLITE_BUSY);
    if busy {
        return ApiError::new(ErrorCode::Overloaded, "the demo database is busy; retry");
    }
    tracing::warn!(error = %err, "demo: database error");
    ApiError::new(ErrorCode::Internal, format!("the demo database failed: {err}"))
}

fn source_error(err: SourceError) -> ApiError {
    match err {
        SourceError::Hub(err) => ApiError::from(err),
        SourceError::Database(err) => database_error(err),
        err => {
            tracing::warn!(error = %err, "demo: cannot take a snapshot");
            ApiError::new(ErrorCode::Internal, format!("cannot take a snapshot: {err}"))
        }
    }
}
