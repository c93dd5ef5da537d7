//! Fair claims: a batch is shared among the tenants with work waiting
//! first, then among each tenant's campaigns, so a tenant with a million
//! due communications does not delay another tenant's ten. Every queue
//! the engine claims from per tick goes through here: due sends, sessions
//! awaiting AGGREGATION, conversations awaiting an answer or gone quiet.
//!
//! Each campaign is claimed apart (its own `LIMIT`, read through an index
//! that starts with `campaign_id`: migration 0026), in rounds: the first
//! gives every waiting campaign its share; what campaigns with less
//! waiting left over goes to those that filled theirs in the next.

use std::collections::{BTreeMap, HashMap};

use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::Result;

/// Rounds of a claim, at most: one campaign short of its share in a later
/// round would otherwise cost another statement for a few rows.
const ROUNDS: usize = 3;

/// Campaigns per statement (a `UNION ALL` of their selects). PostgreSQL's
/// planning time grows faster than the arms: 2 ms for 16, 30 ms for 100,
/// 103 ms for 200 (measured, 2026-12-05); one statement per campaign would
/// plan and round-trip each.
const ARMS_PER_STATEMENT: usize = 16;

/// A RUNNING campaign with work waiting for a claim.
#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    pub campaign_id: String,
    pub tenant_id: String,
    /// It also holds claims whose lease expired (due sends only): its
    /// select reads those too.
    pub expired: bool,
}

/// What one claim differs in: its statement around the campaigns' selects,
/// and each campaign's select.
pub(crate) struct Claim<'a> {
    /// `UPDATE … WHERE ` + [`Store::id_among`](crate::Store::id_among) the
    /// selects joined by `UNION ALL` + ` RETURNING …`.
    pub statement: &'a (dyn Fn(&str) -> String + Sync),
    /// The select of up to `$share` ids of `$campaign`, given the waiting
    /// campaign and the numbers of those two parameters.
    pub select: &'a (dyn Fn(&Waiting, usize, usize) -> String + Sync),
    /// `$1`, `$2`, …: the parameters every select shares.
    pub parameters: &'a [i64],
}

/// Claims up to `limit` rows of `waiting` campaigns fairly, in one
/// transaction; `campaign` names the campaign of a claimed row. `turn`
/// says which tenants and campaigns get what does not divide equally, so
/// it rotates between ticks.
pub(crate) async fn claim<T>(
    tx: &mut Transaction<'static, Any>,
    how: Claim<'_>,
    waiting: Vec<Waiting>,
    limit: i64,
    turn: u64,
    row: impl Fn(&AnyRow) -> Result<T>,
    campaign: impl Fn(&T) -> &str,
) -> Result<Vec<T>> {
    let mut rounds = Rounds::new(waiting, limit, turn);
    let mut claimed = Vec::new();
    while let Some(shares) = rounds.next() {
        let mut counts: HashMap<String, i64> = HashMap::new();
        for chunk in shares.chunks(ARMS_PER_STATEMENT) {
            let first = how.parameters.len() + 1;
            let selects: Vec<String> = chunk
                .iter()
                .enumerate()
                .map(|(n, (index, _))| format!("SELECT id FROM ({}) AS a{n}", (how.select)(&rounds.waiting[*index], first + 2 * n, first + 2 * n + 1)))
                .collect();
            let sql = (how.statement)(&selects.join(" UNION ALL "));
            let mut query = sqlx::query(&sql);
            for value in how.parameters {
                query = query.bind(*value);
            }
            for (index, share) in chunk {
                query = query.bind(rounds.waiting[*index].campaign_id.clone()).bind(*share);
            }
            for found in query.fetch_all(&mut **tx).await? {
                let item = row(&found)?;
                *counts.entry(campaign(&item).to_owned()).or_default() += 1;
                claimed.push(item);
            }
        }
        rounds.claimed(&counts);
    }
    Ok(claimed)
}

/// The rounds of one claim: who may take more, and how much is left.
struct Rounds {
    waiting: Vec<Waiting>,
    /// Campaigns that may have more waiting: all at first, then those that
    /// filled their share or had none.
    hungry: Vec<usize>,
    /// This round's share of each hungry campaign.
    shares: Vec<(usize, i64)>,
    left: i64,
    turn: u64,
    done: usize,
}

impl Rounds {
    fn new(waiting: Vec<Waiting>, limit: i64, turn: u64) -> Self {
        let hungry = (0..waiting.len()).collect();
        Self { waiting, hungry, shares: Vec::new(), left: limit.max(0), turn, done: 0 }
    }

    /// The next round's campaigns with a share, and their shares; `None`
    /// once the batch is full, no campaign may have more, or the rounds
    /// are spent.
    fn next(&mut self) -> Option<Vec<(usize, i64)>> {
        if self.left == 0 || self.hungry.is_empty() || self.done == ROUNDS {
            return None;
        }
        self.shares = split(&self.waiting, &self.hungry, self.left, self.turn.wrapping_add(self.done as u64));
        self.done += 1;
        Some(self.shares.iter().copied().filter(|(_, share)| *share > 0).collect())
    }

    /// What the round claimed, by campaign id.
    fn claimed(&mut self, counts: &HashMap<String, i64>) {
        let got = |index: usize| counts.get(&self.waiting[index].campaign_id).copied().unwrap_or(0);
        self.left -= self.shares.iter().map(|(index, _)| got(*index)).sum::<i64>();
        self.hungry = self.shares.iter().filter(|(index, share)| got(*index) >= *share).map(|(index, _)| *index).collect();
    }
}

/// `limit` split equally among the tenants of the `among` campaigns, then
/// each tenant's part equally among its campaigns.
fn split(waiting: &[Waiting], among: &[usize], limit: i64, turn: u64) -> Vec<(usize, i64)> {
    let mut tenants: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &index in among {
        tenants.entry(waiting[index].tenant_id.as_str()).or_default().push(index);
    }
    let mut shares = Vec::with_capacity(among.len());
    for (part, campaigns) in equal_parts(limit, tenants.len(), turn).zip(tenants.values_mut()) {
        campaigns.sort_by(|a, b| waiting[*a].campaign_id.cmp(&waiting[*b].campaign_id));
        shares.extend(campaigns.iter().copied().zip(equal_parts(part, campaigns.len(), turn)));
    }
    shares
}

/// `total` in `n` parts that differ by one at most; the larger ones from
/// the `turn`-th part on, wrapping around.
fn equal_parts(total: i64, n: usize, turn: u64) -> impl Iterator<Item = i64> {
    let count = n.max(1) as i64;
    let (base, extra) = (total / count, total % count);
    let first = (turn % count as u64) as i64;
    (0..n as i64).map(move |part| base + i64::from((part - first).rem_euclid(count) < extra))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{equal_parts, split, Rounds, Waiting};

    fn waiting(campaigns: &[(&str, &str)]) -> Vec<Waiting> {
        campaigns.iter().map(|(tenant, campaign)| Waiting { campaign_id: (*campaign).into(), tenant_id: (*tenant).into(), expired: false }).collect()
    }

    /// Shares by campaign id.
    fn named(waiting: &[Waiting], shares: &[(usize, i64)]) -> Vec<(String, i64)> {
        let mut named: Vec<(String, i64)> = shares.iter().map(|(index, share)| (waiting[*index].campaign_id.clone(), *share)).collect();
        named.sort();
        named
    }

    #[test]
    fn works_when_parts_do_not_divide() {
        assert_eq!(equal_parts(10, 3, 0).collect::<Vec<_>>(), [4, 3, 3]);
        assert_eq!(equal_parts(10, 3, 1).collect::<Vec<_>>(), [3, 4, 3]);
        assert_eq!(equal_parts(11, 3, 2).collect::<Vec<_>>(), [4, 3, 4]);
        assert_eq!(equal_parts(2, 4, 3).collect::<Vec<_>>(), [1, 0, 0, 1]);
        assert_eq!(equal_parts(5, 0, 0).count(), 0);
    }

    /// Tenants share first: a tenant's two campaigns share its half.
    #[test]
    fn works_when_tenants_have_several_campaigns() {
        let all = waiting(&[("a", "a1"), ("a", "a2"), ("b", "b1")]);
        let shares = split(&all, &[0, 1, 2], 50, 0);
        assert_eq!(named(&all, &shares), [("a1".into(), 13), ("a2".into(), 12), ("b1".into(), 25)]);
    }

    /// What a campaign with little waiting leaves goes, in the next round,
    /// to the campaigns that filled their share.
    #[test]
    fn works_when_a_campaign_has_less_than_its_share() {
        let all = waiting(&[("flood", "f1"), ("small", "s1"), ("other", "o1")]);
        let mut rounds = Rounds::new(all, 60, 0);
        let first = rounds.next().expect("round 1");
        assert_eq!(named(&rounds.waiting, &first), [("f1".into(), 20), ("o1".into(), 20), ("s1".into(), 20)]);
        rounds.claimed(&HashMap::from([("f1".into(), 20), ("s1".into(), 3), ("o1".into(), 20)]));
        let second = rounds.next().expect("round 2");
        assert_eq!(named(&rounds.waiting, &second), [("f1".into(), 8), ("o1".into(), 9)]);
        rounds.claimed(&HashMap::from([("f1".into(), 8), ("o1".into(), 2)]));
        let third = rounds.next().expect("round 3");
        assert_eq!(named(&rounds.waiting, &third), [("f1".into(), 7)]);
        rounds.claimed(&HashMap::from([("f1".into(), 7)]));
        assert!(rounds.next().is_none(), "the batch is full");
    }

    /// More tenants than the batch: some get nothing this time, and the
    /// ones left out change with the turn.
    #[test]
    fn works_when_tenants_outnumber_the_batch() {
        let all = waiting(&[("a", "a1"), ("b", "b1"), ("c", "c1")]);
        let first = split(&all, &[0, 1, 2], 2, 0);
        let later = split(&all, &[0, 1, 2], 2, 1);
        assert_eq!(named(&all, &first), [("a1".into(), 1), ("b1".into(), 1), ("c1".into(), 0)]);
        assert_eq!(named(&all, &later), [("a1".into(), 0), ("b1".into(), 1), ("c1".into(), 1)]);
        let mut rounds = Rounds::new(all, 2, 0);
        let shares = rounds.next().expect("round 1");
        assert_eq!(shares.len(), 2, "a campaign without a share is not read: {shares:?}");
    }

    #[test]
    fn works_when_nothing_waits_or_the_limit_is_zero() {
        assert!(Rounds::new(Vec::new(), 50, 0).next().is_none());
        assert!(Rounds::new(waiting(&[("a", "a1")]), 0, 0).next().is_none());
        let mut rounds = Rounds::new(waiting(&[("a", "a1")]), 50, 0);
        assert!(rounds.next().is_some());
        rounds.claimed(&HashMap::from([("a1".into(), 7)]));
        assert!(rounds.next().is_none(), "the only campaign had less than its share");
    }
}
