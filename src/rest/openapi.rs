//! `GET /rest/v1/`: an OpenAPI 2.0 (Swagger) description of every exposed
//! table, view and function of the schema, as PostgREST serves it.

use serde_json::{json, Map, Value};
use warp::reply::Response;

use super::schema_cache::SchemaCache;

/// The OpenAPI document for `schema`.
pub fn document(cache: &SchemaCache, schema: &str) -> Value {
    let mut paths = Map::new();
    let mut definitions = Map::new();
    paths.insert("/".into(), json!({"get": {"summary": "OpenAPI description (this document)", "responses": {"200": {"description": "OK"}}}}));
    let mut tables: Vec<_> = cache.tables.values().filter(|t| t.schema == schema).collect();
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    for t in tables {
        let mut props = Map::new();
        for c in &t.columns {
            let mut p = json!({"format": c.data_type, "type": json_type(&c.typname)});
            if t.pk.contains(&c.name) {
                p["description"] = json!("Note:\nThis is a Primary Key.<pk/>");
            }
            if let Some(d) = &c.default {
                p["default"] = json!(d);
            }
            props.insert(c.name.clone(), p);
        }
        let required: Vec<&str> =
            t.columns.iter().filter(|c| !c.nullable && c.default.is_none()).map(|c| c.name.as_str()).collect();
        definitions.insert(t.name.clone(), json!({"type": "object", "properties": props, "required": required}));
        let reference = json!({"$ref": format!("#/definitions/{}", t.name)});
        let ok = json!({"200": {"description": "OK", "schema": {"type": "array", "items": reference}}});
        let mut ops = json!({"get": {"tags": [t.name], "responses": ok}});
        if matches!(t.kind, 'r' | 'p' | 'f' | 'v') {
            ops["post"] = json!({"tags": [t.name], "responses": {"201": {"description": "Created"}}});
            ops["patch"] = json!({"tags": [t.name], "responses": {"204": {"description": "No Content"}}});
            ops["delete"] = json!({"tags": [t.name], "responses": {"204": {"description": "No Content"}}});
        }
        paths.insert(format!("/{}", t.name), ops);
    }
    let mut funcs: Vec<_> = cache.functions.iter().filter(|((s, _), _)| s == schema).collect();
    funcs.sort_by(|a, b| a.0.cmp(b.0));
    for ((_, name), overloads) in funcs {
        let Some(f) = overloads.first() else { continue };
        let props: Map<String, Value> =
            f.args.iter().map(|a| (a.name.clone(), json!({"format": a.data_type, "type": "string"}))).collect();
        let required: Vec<&str> = f.args.iter().filter(|a| !a.has_default).map(|a| a.name.as_str()).collect();
        let body = json!({"in": "body", "name": "args", "required": true,
            "schema": {"type": "object", "properties": props, "required": required}});
        let mut ops = json!({"post": {"tags": ["(rpc) ".to_owned() + name], "parameters": [body], "responses": {"200": {"description": "OK"}}}});
        if f.volatility != 'v' {
            ops["get"] = json!({"tags": ["(rpc) ".to_owned() + name], "responses": {"200": {"description": "OK"}}});
        }
        paths.insert(format!("/rpc/{name}"), ops);
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Fluxbase REST API", "description": "PostgREST-compatible API", "version": crate::VERSION},
        "basePath": "/rest/v1",
        "schemes": ["http", "https"],
        "consumes": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "produces": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "paths": paths,
        "definitions": definitions,
    })
}

fn json_type(typname: &str) -> &'static str {
    match typname {
        "int2" | "int4" | "int8" => "integer",
        "float4" | "float8" | "numeric" => "number",
        "bool" => "boolean",
        "json" | "jsonb" => "object",
        t if t.starts_with('_') => "array",
        _ => "string",
    }
}

/// The response for `GET|HEAD /rest/v1/`.
pub fn response(cache: &SchemaCache, schema: &str, head: bool) -> Response {
    let body = if head { String::new() } else { document(cache, schema).to_string() };
    let mut res = Response::new(body.into());
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/openapi+json; charset=utf-8"),
    );
    res
}
