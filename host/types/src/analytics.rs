//! The campaign's analytics panel as the API answers it: the metrics
//! overview (`GET /campaigns/{id}/analytics/overview`), the distribution
//! by period (`…/analytics/distribution`) and the uploaded YAML analytics
//! file (`GET`/`PUT /campaigns/{id}/analytics`).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::analytics_file::AnalyticsDefinition;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Overview {
    pub total_contacts: i64,
    pub processed_contacts: i64,
    pub completed_contacts: i64,
    pub successful_contacts: i64,
    /// completed / total (0 when there are no contacts).
    pub completion_rate: f64,
    /// successful / completed (0 when none is completed).
    pub success_rate: f64,
    pub by_stage: Vec<StageCount>,
    pub by_alternative: Vec<AlternativeCount>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageCount {
    /// The contacts' current stage; `null` for contacts without one.
    pub stage: Option<String>,
    pub contacts: i64,
    pub successful: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlternativeCount {
    pub stage: String,
    /// The A/B label (`default` for the stage's own settings).
    pub label: String,
    pub communications: i64,
    /// Of those, communications whose contact's ResultFlag is true.
    pub successful: i64,
}

/// What `by=failure` appends to a stage name to count its IN_DOUBT
/// communications apart from its FAILED ones.
pub const IN_DOUBT_SUFFIX: &str = " (in doubt)";

/// The statuses `by=failure` counts: sends that failed, and sends whose
/// outcome was lost (they may have reached the contact).
pub const FAILURE_STATUSES: [&str; 2] = ["FAILED", "IN_DOUBT"];

/// The buckets of a distribution: local days, weeks from Monday, or
/// calendar months.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Day, Period::Week, Period::Month];

    /// The query's spelling: `day`, `week`, `month`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    pub fn parse(text: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|period| period.as_str() == text)
    }

    /// The first day of the bucket holding `day` (weeks start on Monday).
    pub fn bucket(self, day: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => day,
            Period::Week => day - chrono::Duration::days(i64::from(day.weekday().num_days_from_monday())),
            Period::Month => day.with_day(1).unwrap_or(day),
        }
    }

    /// The first day of the bucket after the one starting on `bucket`.
    pub fn next(self, bucket: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => bucket + chrono::Duration::days(1),
            Period::Week => bucket + chrono::Duration::days(7),
            Period::Month => bucket.checked_add_months(chrono::Months::new(1)).unwrap_or(NaiveDate::MAX),
        }
    }

    /// The last day of the bucket starting on `bucket`.
    pub fn last_day(self, bucket: NaiveDate) -> NaiveDate {
        self.next(bucket).pred_opt().unwrap_or(bucket)
    }

    /// How many buckets the days `from` to `to` (inclusive) fall in.
    pub fn count(self, from: NaiveDate, to: NaiveDate) -> i64 {
        if from > to {
            return 0;
        }
        match self {
            Period::Day => (to - from).num_days() + 1,
            Period::Week => (self.bucket(to) - self.bucket(from)).num_days() / 7 + 1,
            Period::Month => {
                let months = |day: NaiveDate| i64::from(day.year()) * 12 + i64::from(day.month0());
                months(to) - months(from) + 1
            }
        }
    }

    /// The period that keeps a chart of `from` to `to` readable: days up
    /// to a month of them, weeks up to half a year, months beyond.
    pub fn readable(from: NaiveDate, to: NaiveDate) -> Period {
        if Period::Day.count(from, to) <= 31 {
            Period::Day
        } else if Period::Week.count(from, to) <= 26 {
            Period::Week
        } else {
            Period::Month
        }
    }
}

/// One period of a distribution.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bucket {
    /// The bucket's first day (a Monday for weeks, the 1st for months).
    pub start: NaiveDate,
    /// key → communications. The key is a stage name (`by=stage`), a
    /// status (`by=status`), or for `by=failure` the stage name of FAILED
    /// communications and the stage name with ` (in doubt)` appended for
    /// IN_DOUBT ones.
    pub counts: BTreeMap<String, i64>,
}

impl Bucket {
    /// Its communications, every key together.
    pub fn total(&self) -> i64 {
        self.counts.values().sum()
    }
}

/// Stage or Status Distribution by Period, or the delivery failures by
/// period.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Distribution {
    /// `stage`, `status` or `failure`.
    pub by: String,
    /// `day`, `week` or `month`.
    pub period: String,
    pub tz: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub buckets: Vec<Bucket>,
}

/// The campaign's YAML analytics file: when it was uploaded and what it
/// says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnalyticsView {
    pub uploaded_at: DateTime<Utc>,
    pub definition: AnalyticsDefinition,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn works_when_an_overview_and_a_distribution_round_trip() {
        let overview = json!({"total_contacts": 3, "processed_contacts": 2, "completed_contacts": 1, "successful_contacts": 1,
            "completion_rate": 0.5, "success_rate": 1.0, "by_stage": [{"stage": null, "contacts": 1, "successful": 0}],
            "by_alternative": [{"stage": "Remind", "label": "default", "communications": 2, "successful": 1}]});
        let read: Overview = serde_json::from_value(overview.clone()).expect("reads");
        assert_eq!(serde_json::to_value(&read).expect("writes"), overview);
        let distribution = json!({"by": "stage", "period": "day", "tz": "Europe/Paris", "from": "2026-01-01", "to": "2026-01-02",
            "buckets": [{"start": "2026-01-01", "counts": {"Remind": 2}}, {"start": "2026-01-02", "counts": {}}]});
        let read: Distribution = serde_json::from_value(distribution.clone()).expect("reads");
        assert_eq!(read.buckets[0].total(), 2);
        assert_eq!(serde_json::to_value(&read).expect("writes"), distribution);
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    #[test]
    fn works_when_buckets_are_counted_and_bounded() {
        // 2026-03-04 is a Wednesday; its week is March 2 to 8.
        assert_eq!(Period::Week.bucket(day("2026-03-04")), day("2026-03-02"));
        assert_eq!(Period::Week.last_day(day("2026-03-02")), day("2026-03-08"));
        assert_eq!(Period::Month.last_day(day("2026-02-01")), day("2026-02-28"));
        assert_eq!(Period::Day.count(day("2026-03-04"), day("2026-03-04")), 1);
        assert_eq!(Period::Week.count(day("2026-03-08"), day("2026-03-09")), 2, "Sunday and Monday are two weeks");
        assert_eq!(Period::Month.count(day("2025-12-31"), day("2026-01-01")), 2);
        assert_eq!(Period::Day.count(day("2026-03-05"), day("2026-03-04")), 0);
        assert_eq!(Period::parse("week"), Some(Period::Week));
        assert_eq!(Period::parse("hour"), None);
    }

    #[test]
    fn works_when_the_readable_period_grows_with_the_span() {
        let today = day("2026-06-30");
        assert_eq!(Period::readable(today, today), Period::Day);
        assert_eq!(Period::readable(day("2026-05-31"), today), Period::Day, "31 days");
        assert_eq!(Period::readable(day("2026-05-30"), today), Period::Week, "32 days");
        assert_eq!(Period::readable(day("2026-01-05"), today), Period::Week, "26 weeks");
        assert_eq!(Period::readable(day("2026-01-04"), today), Period::Month, "27 weeks");
        assert_eq!(Period::readable(day("2016-01-01"), today), Period::Month);
    }

    #[test]
    fn works_when_an_analytics_file_round_trips() {
        let sent = json!({"uploaded_at": "2026-01-01T00:00:00Z", "definition": {"version": 1, "depth_days": 30, "schedule": {"every_minutes": 15}, "metrics": [
            {"code": "s", "name": "S", "description": "", "prompt": "Q?", "type": "scale", "scale": {"min": 1, "max": 5}, "display": "bar"},
            {"code": "n", "name": "N", "description": "d", "prompt": "Q?", "type": "number", "display": "line"},
            {"code": "c", "name": "C", "description": "", "prompt": "Q?", "type": "category", "categories": ["a", "b"], "display": "pie"},
            {"code": "b", "name": "B", "description": "", "prompt": "Q?", "type": "boolean", "display": "number"}]}});
        let view: AnalyticsView = serde_json::from_value(sent.clone()).expect("reads");
        assert_eq!(view.definition.metrics[0].kind.type_name(), "scale");
        assert_eq!(view.definition.schedule.map(|schedule| schedule.every_minutes), Some(15));
        assert_eq!(serde_json::to_value(&view).expect("writes"), sent);
    }
}
