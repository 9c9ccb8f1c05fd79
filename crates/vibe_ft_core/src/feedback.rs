//! From users' ratings of answers to training data: a quality score from
//! thumbs and stars, the messages of a multi-turn example (earlier answers as
//! context only), and preference (DPO) pairs from a liked and a disliked answer
//! to the same conversation.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// A user's rating of one answer: thumbs up/down, 1 to 5 stars, or both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rating {
    pub thumbs_up: Option<bool>,
    pub stars: Option<i32>,
}

/// How ratings become a 0..10 quality score (the examples' scale). Generic
/// over the number: the database computes in `numeric`, exactly, so a score
/// compares with a threshold exactly as it is stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scoring<T = f64> {
    pub thumbs_up: T,
    pub thumbs_down: T,
    /// Score of 1, 2, 3, 4 and 5 stars.
    pub stars: [T; 5],
}

impl Default for Scoring<f64> {
    /// Thumbs up 8, down 2; stars 0, 2.5, 5, 7.5, 10. With both, the mean:
    /// a thumbs-up with 5 stars is 9, with 3 stars 6.5.
    fn default() -> Self {
        Scoring {
            thumbs_up: 8.0,
            thumbs_down: 2.0,
            stars: [0.0, 2.5, 5.0, 7.5, 10.0],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatingError {
    #[error("a rating needs thumbs up/down or stars")]
    Empty,
    #[error("stars must be 1 to 5, got {0}")]
    Stars(i32),
}

impl<T: Clone> Scoring<T> {
    /// The score of a rating: the thumbs' or the stars' value, or with both,
    /// `mean` of the two.
    pub fn score_with(&self, r: Rating, mean: impl FnOnce(T, T) -> T) -> Result<T, RatingError> {
        let thumbs = r
            .thumbs_up
            .map(|up| if up { self.thumbs_up.clone() } else { self.thumbs_down.clone() });
        let stars = match r.stars {
            None => None,
            Some(s @ 1..=5) => Some(self.stars[s as usize - 1].clone()),
            Some(s) => return Err(RatingError::Stars(s)),
        };
        match (thumbs, stars) {
            (Some(t), Some(s)) => Ok(mean(t, s)),
            (Some(v), None) | (None, Some(v)) => Ok(v),
            (None, None) => Err(RatingError::Empty),
        }
    }
}

impl Scoring<f64> {
    pub fn score(&self, r: Rating) -> Result<f64, RatingError> {
        self.score_with(r, |a, b| (a + b) / 2.0)
    }
}

/// The messages of a training example: the conversation so far with every
/// earlier assistant answer marked `"weight": 0` (context, not trained), then
/// the rated answer with `"weight": 1`.
pub fn training_messages(conversation: &[Value], answer: &str) -> Value {
    let mut out: Vec<Value> = conversation
        .iter()
        .map(|m| match m {
            Value::Object(map) if map.get("role").and_then(Value::as_str) == Some("assistant") => {
                let mut map = map.clone();
                map.insert("weight".into(), json!(0));
                Value::Object(map)
            }
            other => other.clone(),
        })
        .collect();
    out.push(json!({"role": "assistant", "content": answer, "weight": 1}));
    Value::Array(out)
}

/// One rated answer to a conversation prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct Rated {
    pub prefix: Vec<Value>,
    pub answer: String,
    pub score: f64,
    /// Ties between equal scores are broken by this (e.g. the feedback id), so
    /// pairing is deterministic.
    pub order: i64,
}

/// A preference pair: for one prefix, the best answer scoring at least
/// `liked` against the worst scoring at most `disliked`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub prefix: Vec<Value>,
    pub preferred: String,
    pub non_preferred: String,
}

/// At most one pair per distinct prefix (compared as canonical JSON), in prefix order.
pub fn preference_pairs(rated: &[Rated], liked: f64, disliked: f64) -> Vec<Pair> {
    let mut groups: BTreeMap<String, Vec<&Rated>> = BTreeMap::new();
    for r in rated {
        groups
            .entry(Value::Array(r.prefix.clone()).to_string())
            .or_default()
            .push(r);
    }
    groups
        .into_values()
        .filter_map(|g| {
            let best = g
                .iter()
                .filter(|r| r.score >= liked)
                .max_by(|a, b| a.score.total_cmp(&b.score).then(b.order.cmp(&a.order)))?;
            let worst = g
                .iter()
                .filter(|r| r.score <= disliked)
                .min_by(|a, b| a.score.total_cmp(&b.score).then(a.order.cmp(&b.order)))?;
            (best.answer != worst.answer).then(|| Pair {
                prefix: best.prefix.clone(),
                preferred: best.answer.clone(),
                non_preferred: worst.answer.clone(),
            })
        })
        .collect()
}

/// The provider's preference JSONL object for a pair.
pub fn dpo_line(p: &Pair) -> Value {
    let mut input = Map::new();
    input.insert("messages".into(), Value::Array(p.prefix.clone()));
    json!({
        "input": Value::Object(input),
        "preferred_output": [{"role": "assistant", "content": p.preferred}],
        "non_preferred_output": [{"role": "assistant", "content": p.non_preferred}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_from_thumbs_and_stars() {
        let s = Scoring::default();
        let r = |t, st| Rating {
            thumbs_up: t,
            stars: st,
        };
        assert_eq!(s.score(r(Some(true), None)), Ok(8.0));
        assert_eq!(s.score(r(Some(false), None)), Ok(2.0));
        assert_eq!(s.score(r(None, Some(1))), Ok(0.0));
        assert_eq!(s.score(r(None, Some(5))), Ok(10.0));
        assert_eq!(s.score(r(Some(true), Some(5))), Ok(9.0));
        assert_eq!(s.score(r(Some(true), Some(3))), Ok(6.5));
        assert_eq!(s.score(r(None, None)), Err(RatingError::Empty));
        assert_eq!(s.score(r(Some(true), Some(6))), Err(RatingError::Stars(6)));
        assert_eq!(s.score(r(None, Some(0))), Err(RatingError::Stars(0)));
        assert_eq!(s.score(r(None, Some(300))), Err(RatingError::Stars(300)));
    }

    #[test]
    fn earlier_answers_are_context_only() {
        let conv = vec![
            json!({"role": "system", "content": "Coach"}),
            json!({"role": "user", "content": "Plan my week"}),
            json!({"role": "assistant", "content": "Mon: run", "weight": 1}),
            json!({"role": "user", "content": "Shorter"}),
        ];
        let m = training_messages(&conv, "Mon+Thu: 20 min");
        assert_eq!(m[2]["weight"], 0);
        assert_eq!(
            m[4],
            json!({"role": "assistant", "content": "Mon+Thu: 20 min", "weight": 1})
        );
        assert!(m[0].get("weight").is_none() && m[1].get("weight").is_none());
        assert!(crate::messages::validate(&m).is_ok());
    }

    #[test]
    fn pairs_best_liked_with_worst_disliked_per_prefix() {
        let p1 = vec![json!({"role": "user", "content": "Hi"})];
        let p2 = vec![json!({"role": "user", "content": "Bye"})];
        let r = |prefix: &Vec<Value>, a: &str, score, order| Rated {
            prefix: prefix.clone(),
            answer: a.into(),
            score,
            order,
        };
        let rated = vec![
            r(&p1, "great", 9.0, 1),
            r(&p1, "good", 8.0, 2),
            r(&p1, "bad", 2.0, 3),
            r(&p1, "awful", 0.0, 4),
            r(&p2, "fine", 8.0, 5),       // no disliked answer: no pair
            r(&p1, "also great", 9.0, 6), // tie: the earlier one wins
        ];
        let pairs = preference_pairs(&rated, 7.0, 3.0);
        assert_eq!(pairs.len(), 1);
        assert_eq!(
            (pairs[0].preferred.as_str(), pairs[0].non_preferred.as_str()),
            ("great", "awful")
        );
        let line = dpo_line(&pairs[0]);
        assert_eq!(line["input"]["messages"], json!(p1));
        assert_eq!(line["preferred_output"][0]["content"], "great");
        assert_eq!(
            line["non_preferred_output"][0],
            json!({"role": "assistant", "content": "awful"})
        );
        assert!(preference_pairs(&rated, 9.5, 3.0).is_empty());
    }
}
