//! Stage validation. The stage types and the channel rules live in
//! stratagem-types (shared with the web app) and are re-exported here.

pub use stratagem_types::stage::*;

use crate::FieldError;

/// The checks a stage gets before it is stored.
pub trait StageValidation {
    /// Every problem with the stage, each naming its field.
    fn validate(&self) -> Vec<FieldError>;
}

impl StageValidation for StageDefinition {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !crate::is_valid_name(&self.name, 200) {
            errors.push(FieldError::new("name", "must have 1 to 200 characters"));
        }
        if self.description.chars().count() > 2000 {
            errors.push(FieldError::new(
                "description",
                "must have at most 2000 characters",
            ));
        }
        validate_channel(
            self.channel,
            self.agent_id.as_deref(),
            &self.settings,
            "",
            &mut errors,
        );
        if self.alternatives.len() > 10 {
            errors.push(FieldError::new(
                "alternatives",
                "at most 10 alternatives per stage",
            ));
        }
        let mut labels = std::collections::HashSet::new();
        let mut total = 0u32;
        for (index, alternative) in self.alternatives.iter().enumerate() {
            let at = format!("alternatives[{index}].");
            let label = alternative.label.trim();
            if !crate::is_valid_name(&alternative.label, 100) {
                errors.push(FieldError::new(
                    format!("{at}label"),
                    "must have 1 to 100 characters",
                ));
            } else if label.eq_ignore_ascii_case(DEFAULT_LABEL) {
                errors.push(FieldError::new(
                    format!("{at}label"),
                    "`default` names the stage's own settings; choose another label",
                ));
            } else if !labels.insert(label.to_lowercase()) {
                errors.push(FieldError::new(
                    format!("{at}label"),
                    format!("`{label}` is used by another alternative"),
                ));
            }
            if alternative.weight == 0 || alternative.weight > TOTAL_WEIGHT {
                errors.push(FieldError::new(
                    format!("{at}weight"),
                    format!(
                        "must be 1 to {TOTAL_WEIGHT} (percent of contacts), got {}",
                        alternative.weight
                    ),
                ));
            }
            total = total.saturating_add(alternative.weight);
            validate_channel(
                alternative.channel,
                alternative.agent_id.as_deref(),
                &alternative.settings,
                &at,
                &mut errors,
            );
        }
        if total > TOTAL_WEIGHT {
            errors.push(FieldError::new(
                "alternatives",
                format!(
                    "weights add up to {total}; they are percentages of contacts taken from the default and must add up to at most {TOTAL_WEIGHT}"
                ),
            ));
        }
        errors
    }
}

/// Checks one channel choice (the stage's or an alternative's).
fn validate_channel(
    channel: Channel,
    agent_id: Option<&str>,
    settings: &ChannelSettings,
    at: &str,
    errors: &mut Vec<FieldError>,
) {
    let rules = channel.rules();
    let channel_name = channel.as_str();
    let has_agent = agent_id.is_some_and(|id| !id.trim().is_empty());
    match rules.agent {
        AgentRule::Required if !has_agent => errors.push(FieldError::new(
            format!("{at}agent_id"),
            format!("channel {channel_name} needs an agent: set agent_id to one of your agents"),
        )),
        AgentRule::NotUsed if agent_id.is_some() => errors.push(FieldError::new(
            format!("{at}agent_id"),
            format!(
                "channel {channel_name} is a final stage without communication and takes no agent"
            ),
        )),
        _ => {}
    }
    for &setting in rules.required {
        if !settings.has(setting) {
            errors.push(FieldError::new(
                format!("{at}settings.{}", setting.name()),
                format!("is required for channel {channel_name}"),
            ));
        }
    }
    let allowed: Vec<&str> = rules
        .required
        .iter()
        .chain(rules.optional)
        .map(|s| s.name())
        .collect();
    for setting in ALL_SETTINGS {
        if settings.is_present(setting) && !allowed.contains(&setting.name()) {
            let hint = if allowed.is_empty() {
                "it takes no settings".to_owned()
            } else {
                format!("its settings are {}", allowed.join(", "))
            };
            errors.push(FieldError::new(
                format!("{at}settings.{}", setting.name()),
                format!("does not apply to channel {channel_name}; {hint}"),
            ));
        }
    }
    if settings.agent_channel.is_some() && !has_agent {
        errors.push(FieldError::new(
            format!("{at}settings.agent_channel"),
            "needs agent_id: it names one of that agent's channels",
        ));
    }
    for (name, text) in [("email_subject", &settings.email_subject), ("email_template", &settings.email_template)] {
        if let Some(Err(error)) = text.as_deref().map(crate::template::check) {
            errors.push(FieldError {
                field: format!("{at}settings.{name}"),
                message: error.message,
                line: Some(error.line),
                column: Some(error.column),
            });
        }
    }
    for (setting, limit) in [
        (&settings.email_subject, 998),
        (&settings.email_template, 256 * 1024),
    ] {
        if setting.as_ref().is_some_and(|text| text.len() > limit) {
            errors.push(FieldError::new(
                format!("{at}settings"),
                format!("an email subject or template exceeds {limit} bytes"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_stage(json: serde_json::Value) -> StageDefinition {
        serde_json::from_value(json).expect("stage parses")
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn works_when_each_channel_has_exactly_its_required_fields() {
        let cases = [
            (
                "EMAIL_NOTIFICATION",
                None,
                serde_json::json!({"integration_id": "int_1", "email_subject": "Hi", "email_template": "Dear {{name}}"}),
            ),
            (
                "EMAIL_COMMUNICATION",
                Some("agt_1"),
                serde_json::json!({"email_subject": "Hi", "email_template": "Dear {{name}}"}),
            ),
            ("HUMAN", None, serde_json::json!({})),
            ("INFOBIP", Some("agt_1"), serde_json::json!({})),
            (
                "MESSAGEBIRD_WHATSAPP",
                Some("agt_1"),
                serde_json::json!({"project_id": "p", "version": "3", "start_state": "greet"}),
            ),
            ("MESSAGEBIRD_WEBHOOK", Some("agt_1"), serde_json::json!({})),
            (
                "WHATSAPP",
                None,
                serde_json::json!({"start_state": "greet", "template_name": "debt_reminder"}),
            ),
            ("MOBILE_PUSH", None, serde_json::json!({})),
            ("TELEGRAM", Some("agt_1"), serde_json::json!({})),
            ("SIP", Some("agt_1"), serde_json::json!({})),
            (
                "TWILIO",
                Some("agt_1"),
                serde_json::json!({"start_state": "greet"}),
            ),
            ("NO_COMMUNICATION", None, serde_json::json!({})),
            ("SIMULATED", None, serde_json::json!({})),
        ];
        assert_eq!(cases.len(), Channel::ALL.len());
        for (channel, agent, settings) in cases {
            let stage = parse_stage(
                serde_json::json!({"name": "1. Step", "channel": channel, "agent_id": agent, "settings": settings}),
            );
            assert_eq!(stage.validate(), vec![], "{channel}");
        }
    }

    #[test]
    fn errors_when_an_email_template_has_an_unknown_placeholder() {
        let stage = parse_stage(serde_json::json!({"name": "Mail", "channel": "EMAIL_NOTIFICATION",
            "settings": {"integration_id": "int_1", "email_subject": "Hi", "email_template": "Dear {{nam}}"}}));
        let errors = stage.validate();
        assert_eq!(fields(&errors), ["settings.email_template"]);
        assert_eq!((errors[0].line, errors[0].column), (Some(1), Some(6)));
    }

    #[test]
    fn errors_when_required_fields_are_missing_or_blank() {
        let stage = parse_stage(
            serde_json::json!({"name": "1. Mail", "channel": "EMAIL_NOTIFICATION", "settings": {"email_subject": "  "}}),
        );
        let errors = stage.validate();
        assert_eq!(
            fields(&errors),
            [
                "settings.integration_id",
                "settings.email_subject",
                "settings.email_template"
            ]
        );
        assert_eq!(
            errors[0].message,
            "is required for channel EMAIL_NOTIFICATION"
        );
        let twilio = parse_stage(serde_json::json!({"name": "Call", "channel": "TWILIO"}));
        assert_eq!(
            fields(&twilio.validate()),
            ["agent_id", "settings.start_state"]
        );
    }

    #[test]
    fn errors_when_a_setting_belongs_to_another_channel() {
        let stage = parse_stage(
            serde_json::json!({"name": "Chat", "channel": "TELEGRAM", "agent_id": "agt_1", "settings": {"email_subject": "Hi"}}),
        );
        let errors = stage.validate();
        assert_eq!(fields(&errors), ["settings.email_subject"]);
        assert_eq!(
            errors[0].message,
            "does not apply to channel TELEGRAM; its settings are integration_id, agent_channel, start_phrase"
        );
        let last = parse_stage(
            serde_json::json!({"name": "End", "channel": "NO_COMMUNICATION", "agent_id": "agt_1"}),
        );
        assert_eq!(fields(&last.validate()), ["agent_id"]);
    }

    #[test]
    fn errors_when_json_names_an_unknown_channel_or_setting() {
        let error = serde_json::from_value::<StageDefinition>(
            serde_json::json!({"name": "x", "channel": "FAX"}),
        )
        .expect_err("unknown channel");
        assert!(
            error.to_string().contains("unknown variant `FAX`"),
            "{error}"
        );
        let error = serde_json::from_value::<StageDefinition>(
            serde_json::json!({"name": "x", "channel": "SIP", "settings": {"subjekt": "x"}}),
        )
        .expect_err("unknown setting");
        assert!(
            error.to_string().contains("unknown field `subjekt`"),
            "{error}"
        );
    }

    #[test]
    fn works_when_alternatives_weights_add_up_to_at_most_100() {
        let stage = parse_stage(serde_json::json!({
            "name": "Reminder", "channel": "SIMULATED",
            "alternatives": [
                {"label": "B", "weight": 30, "channel": "TELEGRAM", "agent_id": "agt_1"},
                {"label": "C", "weight": 70, "channel": "SIMULATED"}
            ]
        }));
        assert_eq!(stage.validate(), vec![]);
    }

    #[test]
    fn errors_when_alternatives_are_invalid() {
        let stage = parse_stage(serde_json::json!({
            "name": "Reminder", "channel": "SIMULATED",
            "alternatives": [
                {"label": "B", "weight": 60, "channel": "TELEGRAM"},
                {"label": "b", "weight": 50, "channel": "SIMULATED"},
                {"label": "default", "weight": 0, "channel": "SIMULATED"}
            ]
        }));
        let errors = stage.validate();
        assert_eq!(
            fields(&errors),
            [
                "alternatives[0].agent_id",
                "alternatives[1].label",
                "alternatives[2].label",
                "alternatives[2].weight",
                "alternatives"
            ]
        );
        assert!(
            errors[4].message.starts_with("weights add up to 110"),
            "{}",
            errors[4].message
        );
    }

    #[test]
    fn works_when_choosing_alternatives_in_proportion_and_stably() {
        let stage = parse_stage(serde_json::json!({
            "name": "Reminder", "channel": "SIMULATED",
            "alternatives": [{"label": "B", "weight": 30, "channel": "SIMULATED"}]
        }));
        let chosen = (0..10_000)
            .filter(|i| stage.choose("stg_1", &format!("CONTRACT-{i}")).is_some())
            .count();
        assert!(
            (2_700..3_300).contains(&chosen),
            "30% expected, got {chosen} of 10000"
        );
        for i in 0..100 {
            let key = format!("CONTRACT-{i}");
            assert_eq!(stage.choose("stg_1", &key), stage.choose("stg_1", &key));
        }
        // A pinned value: the choice must not change between releases.
        let labels: String = (0..12)
            .map(|i| {
                if stage.choose("stg_1", &i.to_string()).is_some() {
                    'B'
                } else {
                    '-'
                }
            })
            .collect();
        assert_eq!(labels, PINNED_CHOICES);
    }

    const PINNED_CHOICES: &str = "--BB-B--B--B";
}
