//! The structured result every tool returns.
//!
//! rmcp's own `Json` wrapper writes the text copy of the result (what clients without structured
//! content read) through `Value`'s `Display`, token by token through a formatter: for a listing
//! of a few panes that costs more instructions than the rest of the call. This one serializes
//! the value to bytes once. rmcp's `#[tool]` macro takes the output schema from any return type
//! named `Json<T>`, so tools keep their schemas.

use rmcp::ErrorData;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
use serde::Serialize;
use serde_json::Value;

/// A tool's result as structured content, with the same JSON as text content.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoCallToolResult for Json<T> {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        let failed = |e: serde_json::Error| {
            ErrorData::internal_error(format!("cannot serialize the result: {e}"), None)
        };
        let value = serde_json::to_value(self.0).map_err(failed)?;
        Ok(structured(value).map_err(failed)?.into())
    }
}

/// A successful result carrying `value`, as rmcp's `CallToolResult::structured` builds it, with
/// the text copy written by [`serde_json::to_string`].
pub fn structured(value: Value) -> Result<CallToolResult, serde_json::Error> {
    let text = serde_json::to_string(&value)?;
    let mut r = CallToolResult::structured(Value::Null);
    r.content = vec![ContentBlock::text(text)];
    r.structured_content = Some(value);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_result_is_what_rmcp_builds_with_the_same_text() {
        let v = json!({"count": 2, "names": ["a \"b\"", "ü\n"], "nested": {"x": null}});
        let ours = structured(v.clone()).expect("serializes");
        let theirs = CallToolResult::structured(v);
        assert_eq!(
            serde_json::to_value(&ours).expect("ours"),
            serde_json::to_value(&theirs).expect("theirs")
        );
    }
}
