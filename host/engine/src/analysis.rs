//! Deep Analysis: the metrics of a campaign's YAML analytics file, asked of
//! the campaign's LLM about each conversation transcript.
//!
//! A run — started through the API (Recalculate or Continue calculation)
//! or by the YAML's `schedule` (a Continue calculation, when sessions
//! ended since the last one) — is worked on a batch per tick by whichever
//! node claims it. [`start_run`] is the one way both start. Each session of
//! the batch is one LLM call carrying every metric the session still lacks,
//! answered as one JSON object; each answer is checked against its metric's
//! type (true/false, a number within its range, one of the categories, a
//! whole number on the scale) and stored on its own, so a bad answer costs
//! that one value — stored as an error that says what came back — and the
//! run goes on. An endpoint that answers no chat completion at all gives
//! every metric of that session such an error.
//!
//! An endpoint that is down, slow or rate-limiting is different: nothing
//! is stored for the session, the run keeps the error in `last_error` and
//! rests a few seconds before the session is asked again, so an outage
//! delays a run but never fills it with errors. A stopped run is not claimed again, and
//! the batch in flight when it stopped writes nothing more.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use stratagem_domain::analytics::{self, AnalyticsError, Metric, MetricKind};
use stratagem_domain::{Message, MessageRole};
use stratagem_store::{AnalysisMode, AnalysisRun, AnalysisValue, ClaimedAnalysis, PendingSession, Store, StoreError};

use crate::llm::{ChatMessage, Llm, LlmError};
use crate::{Engine, EngineError, IN_FLIGHT};

/// Runs one node works on per tick.
const RUNS_PER_TICK: i64 = 4;
/// Longest answer text quoted back in an error.
const QUOTE_CHARS: usize = 80;
/// The pause after a batch the LLM could not answer, so an endpoint that
/// is down is not asked every tick.
const RETRY_AFTER: chrono::Duration = chrono::Duration::seconds(10);

/// Why a Deep Analysis run cannot start; each says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "the campaign has no YAML analytics file: upload one in Settings > YAML Analytics \
         (PUT /api/campaigns/{campaign_id}/analytics; example: examples/analytics/debt-collection.yaml)"
    )]
    NoAnalyticsFile { campaign_id: String },
    /// The stored file no longer passes the checks (they grew stricter).
    #[error("the campaign's YAML analytics file is not valid: upload a corrected one")]
    InvalidAnalyticsFile(Vec<AnalyticsError>),
    #[error(
        "the campaign has no LLM to analyse conversations with: create an LLM integration (POST /api/integrations) \
         and choose it in Settings > LLM Settings (PUT /api/campaigns/{campaign_id} with llm_integration_id)"
    )]
    NoLlm { campaign_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts a run of the campaign's current YAML over the sessions that ended
/// within its depth, by hand or for its `schedule` (`scheduled`: then a
/// run with nothing to compute is not started, `None`). A run in progress
/// is a `Conflict`.
pub async fn start_run(
    store: &Store,
    tenant_id: &str,
    campaign_id: &str,
    mode: AnalysisMode,
    now: chrono::DateTime<chrono::Utc>,
    scheduled: bool,
) -> Result<Option<AnalysisRun>, StartError> {
    let campaign = store.campaigns().campaign(tenant_id, campaign_id).await?;
    let Some((yaml, _)) = store.campaigns().analytics_yaml(tenant_id, campaign_id).await? else {
        return Err(StartError::NoAnalyticsFile { campaign_id: campaign_id.to_owned() });
    };
    let definition = analytics::parse(&yaml).map_err(|errors| StartError::InvalidAnalyticsFile(errors.0))?;
    let no_llm = || StartError::NoLlm { campaign_id: campaign_id.to_owned() };
    let llm = campaign.llm_integration_id.as_deref().ok_or_else(no_llm)?;
    match store.integrations().integration(tenant_id, llm).await {
        Ok(_) => {}
        Err(StoreError::NotFound(_)) => return Err(no_llm()),
        Err(other) => return Err(other.into()),
    }
    let since = now - chrono::Duration::days(i64::from(definition.depth_days));
    Ok(store.deep_analysis().create_analysis_run(tenant_id, campaign_id, mode, &definition.metrics, since, now, scheduled).await?)
}

impl Engine {
    /// Starts the scheduled runs that are due, then works one batch of each
    /// Deep Analysis run this node can claim. Returns how many sessions
    /// got their values.
    pub(crate) async fn analyze(&self) -> Result<usize, EngineError> {
        self.start_scheduled_runs().await?;
        let now = self.clock.now();
        // The lease covers one batch: its LLM calls run at once and each
        // gives up after `llm_timeout`.
        let lease = self.config.lease + chrono::Duration::from_std(self.llm_timeout()).unwrap_or(self.config.lease);
        let runs = self.store.deep_analysis().claim_analysis_runs(now, now + lease, RUNS_PER_TICK).await?;
        // Runs usually reach different endpoints: they wait side by side.
        let batches: Vec<Result<usize, EngineError>> = futures::stream::iter(runs)
            .map(|run| async move { self.analyze_batch(&run).await })
            .buffer_unordered(RUNS_PER_TICK as usize)
            .collect()
            .await;
        batches.into_iter().sum()
    }

    /// A Continue calculation for each campaign whose schedule is due and
    /// that has sessions to analyse. A campaign that cannot run one (no
    /// LLM, a run in progress) waits for its next time; the log says why,
    /// and so does a start by hand.
    async fn start_scheduled_runs(&self) -> Result<(), EngineError> {
        let now = self.clock.now();
        for (tenant_id, campaign_id) in self.store.deep_analysis().claim_scheduled_analyses(now, RUNS_PER_TICK).await? {
            match start_run(&self.store, &tenant_id, &campaign_id, AnalysisMode::Continue, now, true).await {
                Ok(Some(run)) => tracing::info!(tenant = %tenant_id, campaign = %campaign_id, run = %run.id, "scheduled Deep Analysis started"),
                Ok(None) => {}
                Err(StartError::Store(StoreError::Conflict(_) | StoreError::NotFound(_))) => {}
                Err(StartError::Store(other)) => return Err(other.into()),
                Err(reason) => tracing::info!(tenant = %tenant_id, campaign = %campaign_id, %reason, "scheduled Deep Analysis not started"),
            }
        }
        Ok(())
    }

    /// How long a run whose LLM cannot be asked waits before the next try.
    fn retry_after(&self) -> chrono::Duration {
        self.config.lease.min(RETRY_AFTER)
    }

    fn llm_timeout(&self) -> Duration {
        self.config.lease.to_std().unwrap_or(crate::llm::TIMEOUT).min(crate::llm::TIMEOUT)
    }

    async fn analyze_batch(&self, run: &ClaimedAnalysis) -> Result<usize, EngineError> {
        let batch = self.config.batch.clamp(1, IN_FLIGHT as i64);
        let sessions = self.store.deep_analysis().pending_analysis_sessions(run, batch).await?;
        if sessions.is_empty() {
            self.store.deep_analysis().finish_analysis_batch(&run.id, None, None, None, true, self.clock.now()).await?;
            return Ok(0);
        }
        let campaign = match self.store.campaigns().campaign(&run.tenant_id, &run.campaign_id).await {
            Ok(campaign) => campaign,
            // Deleted meanwhile; its runs go with it.
            Err(StoreError::NotFound(_)) => return Ok(0),
            Err(other) => return Err(other.into()),
        };
        let llm = match crate::conversations::campaign_llm(&self.store, &run.tenant_id, &campaign, None, "analysis").await? {
            Ok(llm) => llm.with_timeout(self.llm_timeout()),
            Err(error) => {
                let problem = format!("{error}; the run goes on once it has one");
                let now = self.clock.now();
                self.store.deep_analysis().finish_analysis_batch(&run.id, None, Some(&problem), Some(now + self.retry_after()), false, now).await?;
                return Ok(0);
            }
        };
        // In order, so the cursor can move past the sessions finished before
        // the first one that has to wait.
        let llm = &llm;
        let outcomes: Vec<Result<Option<LlmError>, EngineError>> = futures::stream::iter(sessions.clone())
            .map(|session| async move { self.analyze_session(run, llm, &session).await })
            .buffered(IN_FLIGHT)
            .collect()
            .await;
        let (mut cursor, mut waiting, mut analyzed) = (None, None, 0);
        for (session, outcome) in sessions.iter().zip(outcomes) {
            match outcome? {
                None => {
                    analyzed += 1;
                    if waiting.is_none() {
                        cursor = Some(session.cursor());
                    }
                }
                Some(error) => {
                    waiting.get_or_insert(error);
                }
            }
        }
        let last_error = waiting.map(|error| format!("{error}; the sessions left are asked again shortly"));
        // A short batch with nothing left waiting was the last one.
        let complete = last_error.is_none() && (sessions.len() as i64) < batch;
        let now = self.clock.now();
        let retry_at = last_error.is_some().then(|| now + self.retry_after());
        self.store.deep_analysis().finish_analysis_batch(&run.id, cursor.as_ref(), last_error.as_deref(), retry_at, complete, now).await?;
        Ok(analyzed)
    }

    /// Asks about one session and stores its values; `Some` when the LLM
    /// could not be asked now and the session waits for a later batch.
    async fn analyze_session(&self, run: &ClaimedAnalysis, llm: &Llm, session: &PendingSession) -> Result<Option<LlmError>, EngineError> {
        let metrics: Vec<&Metric> =
            session.metrics.iter().filter_map(|code| run.metrics.iter().find(|metric| metric.code == *code)).collect();
        let transcript = self.store.conversations().transcript(&run.tenant_id, &session.communication_id).await?;
        let values: Vec<AnalysisValue> = match llm.complete_json(&self.http, &prompt(&metrics, &transcript)).await {
            Ok(answer) => metrics
                .iter()
                .map(|metric| AnalysisValue { metric: metric.code.clone(), value: check(metric, answer.get(&metric.code)) })
                .collect(),
            Err(error) if error.is_transient() || error == LlmError::NotConfigured => return Ok(Some(error)),
            Err(error) => {
                metrics.iter().map(|metric| AnalysisValue { metric: metric.code.clone(), value: Err(error.to_string()) }).collect()
            }
        };
        self.store.deep_analysis().record_analysis_values(run, &session.communication_id, &values, self.clock.now()).await?;
        Ok(None)
    }
}

/// The question about one transcript: every metric with the form of its
/// answer, and the conversation.
fn prompt(metrics: &[&Metric], transcript: &[Message]) -> Vec<ChatMessage> {
    let questions: Vec<String> =
        metrics.iter().map(|metric| format!("- \"{}\" ({}): {}", metric.code, answer_form(&metric.kind), metric.prompt.trim())).collect();
    let system = format!(
        "You analyse one conversation between an agent and a contact. Answer each question below about it with one JSON \
         object whose keys are the questions' codes. Each answer must have the form given in brackets, or be null when \
         the conversation does not tell.\n\n{}",
        questions.join("\n")
    );
    let conversation: String = transcript
        .iter()
        .map(|m| format!("{}: {}\n", if m.role == MessageRole::Agent { "Agent" } else { "Contact" }, m.content))
        .collect();
    vec![ChatMessage::system(system), ChatMessage::user(conversation)]
}

fn answer_form(kind: &MetricKind) -> String {
    match kind {
        MetricKind::Boolean => "true or false".into(),
        MetricKind::Number { min, max } => format!("a number{}", range_text(*min, *max)),
        MetricKind::Category { categories } => format!("one of {}", quoted_list(categories)),
        MetricKind::Scale { min, max } => format!("a whole number from {min} to {max}"),
    }
}

fn range_text(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(min), Some(max)) => format!(" from {min} to {max}"),
        (Some(min), None) => format!(" of at least {min}"),
        (None, Some(max)) => format!(" of at most {max}"),
        (None, None) => String::new(),
    }
}

fn quoted_list(categories: &[String]) -> String {
    categories.iter().map(|category| format!("\"{category}\"")).collect::<Vec<_>>().join(", ")
}

/// An answer checked against its metric: the value to store (`null` when
/// the conversation does not tell), or why it cannot be stored.
fn check(metric: &Metric, answer: Option<&Value>) -> Result<Value, String> {
    let answer = match answer {
        None | Some(Value::Null) => return Ok(Value::Null),
        Some(answer) => answer,
    };
    let refuse = || format!("the LLM answered {}, not {}", quote(answer), answer_form(&metric.kind));
    match &metric.kind {
        MetricKind::Boolean => match answer {
            Value::Bool(_) => Ok(answer.clone()),
            Value::String(text) if text.trim().eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(text) if text.trim().eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(refuse()),
        },
        MetricKind::Number { min, max } => {
            let number = number(answer).ok_or_else(refuse)?;
            if min.is_some_and(|min| number < min) || max.is_some_and(|max| number > max) {
                return Err(refuse());
            }
            Ok(canonical(number))
        }
        MetricKind::Category { categories } => {
            let text = answer.as_str().map(str::trim).ok_or_else(refuse)?;
            categories
                .iter()
                .find(|category| *category == text)
                .or_else(|| categories.iter().find(|category| category.eq_ignore_ascii_case(text)))
                .map(|category| Value::String(category.clone()))
                .ok_or_else(refuse)
        }
        MetricKind::Scale { min, max } => {
            let number = number(answer).ok_or_else(refuse)?;
            if number.fract() != 0.0 || number < *min as f64 || number > *max as f64 {
                return Err(refuse());
            }
            Ok(canonical(number))
        }
    }
}

/// A number, also when the model wrote it as text (`"42"`).
fn number(answer: &Value) -> Option<f64> {
    match answer {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|number| number.is_finite())
}

/// Whole numbers are stored as integers, so `3` and `3.0` count as one answer.
fn canonical(number: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if number.fract() == 0.0 && number.abs() < EXACT {
        Value::from(number as i64)
    } else {
        Value::from(number)
    }
}

fn quote(answer: &Value) -> String {
    let text = answer.to_string();
    if text.chars().count() > QUOTE_CHARS {
        format!("{}…", text.chars().take(QUOTE_CHARS).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratagem_domain::analytics::Display;

    fn metric(kind: MetricKind) -> Metric {
        Metric {
            code: "m".into(),
            name: "M".into(),
            description: String::new(),
            prompt: "?".into(),
            kind,
            display: Display::Bar,
        }
    }

    #[test]
    fn works_when_answers_fit_their_metric() {
        let scale = metric(MetricKind::Scale { min: 1, max: 5 });
        assert_eq!(check(&scale, Some(&Value::from(3))), Ok(Value::from(3)));
        assert_eq!(check(&scale, Some(&Value::from(3.0))), Ok(Value::from(3)));
        assert_eq!(check(&scale, Some(&Value::from("5"))), Ok(Value::from(5)));
        let number = metric(MetricKind::Number { min: Some(0.0), max: None });
        assert_eq!(check(&number, Some(&Value::from(12.5))), Ok(Value::from(12.5)));
        let category = metric(MetricKind::Category { categories: vec!["will_pay".into(), "refuses".into()] });
        assert_eq!(check(&category, Some(&Value::from(" Refuses "))), Ok(Value::from("refuses")));
        let boolean = metric(MetricKind::Boolean);
        assert_eq!(check(&boolean, Some(&Value::from("TRUE"))), Ok(Value::Bool(true)));
        assert_eq!(check(&boolean, None), Ok(Value::Null), "a conversation that does not tell");
    }

    #[test]
    fn errors_when_answers_do_not_fit_their_metric() {
        let scale = metric(MetricKind::Scale { min: 1, max: 5 });
        assert_eq!(check(&scale, Some(&Value::from(7))), Err("the LLM answered 7, not a whole number from 1 to 5".into()));
        assert_eq!(check(&scale, Some(&Value::from(2.5))), Err("the LLM answered 2.5, not a whole number from 1 to 5".into()));
        let number = metric(MetricKind::Number { min: Some(0.0), max: Some(365.0) });
        assert_eq!(check(&number, Some(&Value::from(-1))), Err("the LLM answered -1, not a number from 0 to 365".into()));
        let category = metric(MetricKind::Category { categories: vec!["will_pay".into(), "refuses".into()] });
        assert_eq!(
            check(&category, Some(&Value::from("maybe"))),
            Err("the LLM answered \"maybe\", not one of \"will_pay\", \"refuses\"".into())
        );
        let boolean = metric(MetricKind::Boolean);
        assert_eq!(check(&boolean, Some(&Value::from("perhaps"))), Err("the LLM answered \"perhaps\", not true or false".into()));
        assert_eq!(check(&boolean, Some(&serde_json::json!({"a": 1}))), Err("the LLM answered {\"a\":1}, not true or false".into()));
    }
}
