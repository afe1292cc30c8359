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
        // The text straight from the result (its fields in their order, faster than walking the
        // `Value`'s maps), then the structured copy.
        let text = serde_json::to_string(&self.0).map_err(failed)?;
        let value = serde_json::to_value(self.0).map_err(failed)?;
        Ok(with_text(value, text).into())
    }
}

/// A successful result carrying `value`, as rmcp's `CallToolResult::structured` builds it, with
/// `text` (the same JSON, already written) as its text copy.
fn with_text(value: Value, text: String) -> CallToolResult {
    let mut r = CallToolResult::structured(Value::Null);
    r.content = vec![ContentBlock::text(text)];
    r.structured_content = Some(value);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_result_is_what_rmcp_builds_with_the_same_text() {
        let v = json!({"count": 2, "names": ["a \"b\"", "ü\n"], "nested": {"x": null}});
        let ours = with_text(v.clone(), serde_json::to_string(&v).expect("serializes"));
        let theirs = CallToolResult::structured(v);
        assert_eq!(
            serde_json::to_value(&ours).expect("ours"),
            serde_json::to_value(&theirs).expect("theirs")
        );
    }

    #[test]
    fn a_tool_result_carries_its_json_as_text_and_as_structured_content() {
        #[derive(Serialize)]
        struct Out {
            zeta: u32,
            alpha: &'static str,
        }
        let r = Json(Out {
            zeta: 1,
            alpha: "a\"b",
        })
        .into_call_tool_result()
        .expect("serializes");
        let CallToolResponse::Complete(r) = r else {
            panic!("a plain result")
        };
        let text = r.content[0].as_text().expect("text").text.clone();
        let parsed: Value = serde_json::from_str(&text).expect("the text is JSON");
        assert_eq!(Some(parsed), r.structured_content);
        assert_eq!(
            r.structured_content,
            Some(json!({"zeta": 1, "alpha": "a\"b"}))
        );
    }
}
