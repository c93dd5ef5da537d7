//! The validated analytics file. Its types are shared with the web app
//! (`stratagem_types::analytics_file`); the parser and its checks are here.

pub use stratagem_types::analytics_file::{AnalyticsDefinition, Display, Metric, MetricKind, MetricType, Schedule};

#[cfg(test)]
mod tests {
    use crate::analytics::test_support::*;
    use crate::analytics::*;

    #[test]
    fn works_when_the_json_form_mirrors_the_yaml() {
        let definition = parse(EXAMPLE).expect("valid");
        let json = serde_json::to_value(&definition).expect("serializes");
        assert_eq!(
            json["metrics"][0],
            serde_json::json!({
                "code": "client_satisfaction",
                "name": "Client satisfaction",
                "description": "How satisfied the client sounded by the end of the conversation.",
                "prompt": definition.metrics[0].prompt,
                "type": "scale",
                "scale": {"min": 1, "max": 5},
                "display": "bar",
            })
        );
        assert_eq!(json["metrics"][1]["type"], "boolean");
        assert_eq!(json["metrics"][2]["categories"][5], "unclear");
        assert_eq!(
            json["metrics"][3]["range"],
            serde_json::json!({"min": 0.0, "max": 1_000_000.0})
        );
        let back: AnalyticsDefinition = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, definition);

        let open: Metric = serde_json::from_str(
            r#"{"code":"a","name":"A","prompt":"Q","type":"number","display":"line"}"#,
        )
        .expect("a number without range deserializes");
        assert_eq!(
            open.kind,
            MetricKind::Number {
                min: None,
                max: None
            }
        );
        assert_eq!(
            serde_json::to_value(&open)
                .expect("serializes")
                .get("range"),
            None
        );
    }

    #[test]
    fn works_when_added_and_changed_metrics_are_compared() {
        let previous = parse(&with_metrics(&format!(
            "{}{}",
            metric("kept"),
            metric("changed")
        )))
        .expect("valid");
        let current = parse(&with_metrics(&format!(
            "{}  - {{code: changed, name: N, prompt: Another question?, type: boolean}}\n{}",
            metric("kept"),
            metric("added")
        )))
        .expect("valid");
        let codes = |metrics: Vec<&Metric>| -> Vec<String> {
            metrics
                .into_iter()
                .map(|metric| metric.code.clone())
                .collect()
        };
        assert_eq!(codes(current.added_metrics(&previous)), ["added"]);
        assert_eq!(
            codes(current.changed_or_added(&previous)),
            ["changed", "added"]
        );
        assert!(current.changed_or_added(&current).is_empty());
        assert!(previous.added_metrics(&current).is_empty());
    }
}
