//! FlyteAdmin's list queries: the filter expressions of `ResourceListRequest.filters`
//! (`eq(version,v1)+gte(created_at,2024-01-01T00:00:00Z)`: functions `eq`, `ne`, `gt`,
//! `gte`, `lt`, `lte`, `contains`, `value_in` (values separated by `;`), joined by `+`) and
//! the sort order (`Sort{key, direction}`), read from request bytes. Parsing only: what a
//! field means is the server's business.

use crate::wire;

/// `flyteidl.admin.ResourceListRequest` fields beyond those of [`crate::admin::ResourceListRequest`].
pub mod resource_list_request {
    pub const FILTERS: u32 = 4;
    pub const SORT_BY: u32 = 5;
}

/// `flyteidl.admin.Sort`.
pub mod sort {
    pub const KEY: u32 = 1;
    pub const DIRECTION: u32 = 2;
    /// `Sort.Direction.ASCENDING` (DESCENDING is 0, the default).
    pub const ASCENDING: u64 = 1;
}

/// A comparison of one filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    ValueIn,
}

/// One filter: `op(field,value)`; `value_in` has several values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub op: Op,
    pub field: String,
    pub values: Vec<String>,
}

/// A list's order: a field and whether ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub key: String,
    pub ascending: bool,
}

/// The filters and sort order of a `ResourceListRequest` (wire bytes). Fails with a
/// message for the user on a malformed filter expression.
pub fn resource_list(request: &[u8]) -> Result<(Vec<Filter>, Option<Sort>), String> {
    let filters = wire::string(request, resource_list_request::FILTERS).map_err(|e| e.to_string())?;
    let sort = wire::last_len(request, resource_list_request::SORT_BY).map_err(|e| e.to_string())?;
    let sort = match sort {
        Some(bytes) => Some(Sort {
            key: wire::string(bytes, sort::KEY).map_err(|e| e.to_string())?.unwrap_or_default(),
            ascending: wire::varint(bytes, sort::DIRECTION).map_err(|e| e.to_string())? == Some(sort::ASCENDING),
        }),
        None => None,
    };
    Ok((parse_filters(filters.as_deref().unwrap_or_default())?, sort))
}

/// `flyteidl.admin.ProjectListRequest`: its own field numbers for the same query parts.
pub mod project_list_request {
    pub const LIMIT: u32 = 1;
    pub const TOKEN: u32 = 2;
    pub const FILTERS: u32 = 3;
    pub const SORT_BY: u32 = 4;
}

/// A ListProjects request (wire bytes): limit, token, filters and sort order.
pub fn project_list(request: &[u8]) -> Result<(u32, String, Vec<Filter>, Option<Sort>), String> {
    use project_list_request::*;
    let limit = wire::varint(request, LIMIT).map_err(|e| e.to_string())?.unwrap_or(0);
    let token = wire::string(request, TOKEN).map_err(|e| e.to_string())?.unwrap_or_default();
    let filters = wire::string(request, FILTERS).map_err(|e| e.to_string())?;
    let sort = match wire::last_len(request, SORT_BY).map_err(|e| e.to_string())? {
        Some(bytes) => Some(Sort {
            key: wire::string(bytes, sort::KEY).map_err(|e| e.to_string())?.unwrap_or_default(),
            ascending: wire::varint(bytes, sort::DIRECTION).map_err(|e| e.to_string())? == Some(sort::ASCENDING),
        }),
        None => None,
    };
    let limit = u32::try_from(limit).map_err(|_| format!("invalid limit {limit}"))?;
    Ok((limit, token, parse_filters(filters.as_deref().unwrap_or_default())?, sort))
}

/// Parses `f(a,b)+g(c,d)`; the empty string is no filter.
pub fn parse_filters(text: &str) -> Result<Vec<Filter>, String> {
    let mut out = Vec::new();
    for part in text.split('+').map(str::trim).filter(|p| !p.is_empty()) {
        let invalid = || format!("invalid filter expression: {part}");
        let (name, rest) = part.split_once('(').ok_or_else(invalid)?;
        let args = rest.strip_suffix(')').ok_or_else(invalid)?;
        let (field, value) = args.split_once(',').ok_or_else(invalid)?;
        let op = match name.trim() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "contains" => Op::Contains,
            "value_in" => Op::ValueIn,
            other => return Err(format!("unrecognized filter function: {other}")),
        };
        let values = match op {
            Op::ValueIn => value.split(';').map(|v| v.trim().to_string()).collect(),
            _ => vec![value.trim().to_string()],
        };
        out.push(Filter { op, field: field.trim().to_string(), values });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_sort_are_read_from_request_bytes() {
        let mut request = wire::len_field(resource_list_request::FILTERS, b"eq(version,v1)+value_in(name,a;b)");
        let mut sort_by = wire::len_field(sort::KEY, b"created_at");
        sort_by.extend(wire::varint_field(sort::DIRECTION, sort::ASCENDING));
        request.extend(wire::len_field(resource_list_request::SORT_BY, &sort_by));
        let (filters, sort) = resource_list(&request).unwrap();
        assert_eq!(
            filters,
            [
                Filter { op: Op::Eq, field: "version".into(), values: vec!["v1".into()] },
                Filter { op: Op::ValueIn, field: "name".into(), values: vec!["a".into(), "b".into()] },
            ]
        );
        assert_eq!(sort, Some(Sort { key: "created_at".into(), ascending: true }));
        assert_eq!(resource_list(&[]).unwrap(), (vec![], None));
    }

    #[test]
    fn malformed_filters_are_refused() {
        assert!(parse_filters("eq(version)").is_err());
        assert!(parse_filters("like(name,x)").unwrap_err().contains("like"));
        assert!(parse_filters("eq(name,x").is_err());
    }
}
