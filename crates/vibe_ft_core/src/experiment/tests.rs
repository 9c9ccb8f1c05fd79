//! The rule, proven by simulation (fixed seeds): a population of users, each
//! conversation assigned by [`bucket`], answers rated late (up to a day),
//! users who differ in how much they like things, a base rate that drifts over
//! the week, ramps in the middle of the run, and an evaluation every hour.
//! `cargo test -p vibe_ft_core --release experiment -- --nocapture` prints the
//! figures that bench/RESULTS.md quotes.

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn bucket_is_growthbooks_v2_with_a_delimiter() {
    // fnv1a32 reference values (FNV's published test vectors)
    assert_eq!(fnv1a32(b""), 0x811c9dc5);
    assert_eq!(fnv1a32(b"a"), 0xe40c292c);
    assert_eq!(fnv1a32(b"foobar"), 0xbf9cf968);
    // the delimiter keeps seed/user boundaries apart
    assert_ne!(bucket("ab", "c"), bucket("a", "bc"));
    let b = bucket("exp", "user-1");
    assert!(b < BUCKETS);
    assert_eq!(b, fnv1a32(fnv1a32(b"exp|user-1").to_string().as_bytes()) % BUCKETS);
    // spread: 20,000 users land within 2 points of each share
    for share in [10.0, 25.0, 50.0] {
        let n = (0..20_000)
            .filter(|i| in_candidate(bucket("seed", &format!("u{i}")), share))
            .count();
        let got = 100.0 * n as f64 / 20_000.0;
        assert!((got - share).abs() < 2.0, "share {share}: {got}");
    }
    // a ramp only moves users into the candidate arm
    for i in 0..5_000 {
        let b = bucket("ramp", &format!("u{i}"));
        if in_candidate(b, 10.0) {
            assert!(in_candidate(b, 25.0) && in_candidate(b, 50.0));
        }
    }
}

#[test]
fn policy_problems_are_named() {
    assert!(Policy::default().problem().is_none());
    let bad = Policy {
        steps: vec![25.0, 10.0],
        ..Policy::default()
    };
    assert!(bad.problem().unwrap().contains("rise strictly"));
    let bad = Policy {
        steps: vec![],
        ..Policy::default()
    };
    assert!(bad.problem().is_some());
    let bad = Policy {
        min_rated: 0.0,
        ..Policy::default()
    };
    assert!(bad.problem().is_some());
}

#[test]
fn design_effect_grows_when_users_agree_with_themselves() {
    let mut independent = ArmStats::default();
    let mut clustered = ArmStats::default();
    for u in 0..100 {
        independent.add_user(1.0, if u % 2 == 0 { 1.0 } else { 0.0 });
        clustered.add_user(10.0, if u % 2 == 0 { 10.0 } else { 0.0 });
    }
    assert!((independent.design_effect() - 1.0).abs() < 0.05);
    assert!(clustered.design_effect() > 9.0);
}

#[test]
fn no_data_waits_and_expires_per_policy() {
    let p = Policy::default();
    let s = Standing {
        step: 0,
        phase_hours: 1.0,
        experiment_hours: 1.0,
    };
    assert_eq!(evaluate(&p, &s, &[]).0, Decision::Wait);
    let s = Standing {
        step: 0,
        phase_hours: 1.0,
        experiment_hours: 28.0 * 24.0,
    };
    assert_eq!(evaluate(&p, &s, &[]).0, Decision::Expire { promote: false });
    let p = Policy {
        on_inconclusive: Inconclusive::Promote,
        ..p
    };
    // "promote" at the limit promotes only a measured candidate that is not worse
    assert_eq!(evaluate(&p, &s, &[]).0, Decision::Expire { promote: false });
    let mut same = PhaseStats::default();
    for i in 0..6000 {
        same.control.add_user(1.0, if i % 10 < 6 { 1.0 } else { 0.0 });
        same.candidate.add_user(1.0, if i % 10 < 6 { 1.0 } else { 0.0 });
    }
    assert_eq!(evaluate(&p, &s, &[same]).0, Decision::Expire { promote: true });
    let mut worse = same;
    worse.candidate = ArmStats::default();
    for i in 0..6000 {
        worse.candidate.add_user(1.0, if i % 10 < 5 { 1.0 } else { 0.0 });
    }
    let (d, ev) = evaluate(&p, &s, &[worse]);
    assert!(
        matches!(d, Decision::Expire { promote: false } | Decision::Rollback),
        "{d:?} {ev:?}"
    );
}

#[test]
fn a_few_users_cannot_decide() {
    // one user rates the candidate down 200 times, 200 users like the control
    let mut ph = PhaseStats::default();
    ph.candidate.add_user(200.0, 0.0);
    for _ in 0..200 {
        ph.control.add_user(1.0, 1.0);
    }
    let s = Standing {
        step: 0,
        phase_hours: 48.0,
        experiment_hours: 48.0,
    };
    let (d, ev) = evaluate(&Policy::default(), &s, &[ph]);
    assert_eq!(d, Decision::Wait, "{ev:?}");
}

#[test]
fn a_clear_difference_decides_and_says_why() {
    let mut ph = PhaseStats::default();
    for _ in 0..2_000 {
        ph.control.add_user(1.0, 0.0);
    }
    for i in 0..2_000 {
        ph.candidate.add_user(1.0, if i % 10 < 8 { 1.0 } else { 0.0 });
    }
    for i in 0..2_000 {
        ph.control.add_user(1.0, if i % 10 < 6 { 1.0 } else { 0.0 });
    }
    let p = Policy::default();
    // not at the last step: no promotion, but a ramp
    let s = Standing {
        step: 0,
        phase_hours: 30.0,
        experiment_hours: 30.0,
    };
    assert_eq!(evaluate(&p, &s, &[ph]).0, Decision::Ramp { to: 25.0 });
    let s = Standing {
        step: 2,
        phase_hours: 30.0,
        experiment_hours: 90.0,
    };
    let (d, ev) = evaluate(&p, &s, &[ph]);
    assert_eq!(d, Decision::Promote);
    assert!(ev.p_better > 0.999 && ev.reason.starts_with("better"), "{ev:?}");
    // the other way round: rolled back at any step
    let flipped = PhaseStats {
        control: ph.candidate,
        candidate: ph.control,
    };
    let s = Standing {
        step: 0,
        phase_hours: 1.0,
        experiment_hours: 1.0,
    };
    let (d, ev) = evaluate(&p, &s, &[flipped]);
    assert_eq!(d, Decision::Rollback);
    assert!(ev.lift_high_seq < 0.0 && ev.reason.starts_with("worse"), "{ev:?}");
}

/// One simulated population and experiment.
#[derive(Clone, Copy)]
struct Scenario {
    control: f64,
    candidate: f64,
    late_ratings: bool,
    conversations_per_hour: f64,
}

struct Outcome {
    decision: Decision,
    /// Rated answers (both arms) counted at the decision.
    rated: f64,
    /// The step the candidate was at when decided.
    step: usize,
}

const USERS: usize = 2_000;
const RATED_SHARE: f64 = 0.3;

fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Per phase and arm, each user's (rated, positive), and the arm's sums.
#[derive(Clone)]
struct PhaseCounts {
    users: [Vec<(f64, f64)>; 2],
    stats: [ArmStats; 2],
}

impl PhaseCounts {
    fn new() -> Self {
        PhaseCounts {
            users: [vec![(0.0, 0.0); USERS], vec![(0.0, 0.0); USERS]],
            stats: [ArmStats::default(); 2],
        }
    }

    fn add(&mut self, arm: usize, user: usize, positive: bool) {
        let (n0, s0) = self.users[arm][user];
        let (n1, s1) = (n0 + 1.0, s0 + if positive { 1.0 } else { 0.0 });
        self.users[arm][user] = (n1, s1);
        let st = &mut self.stats[arm];
        if n0 == 0.0 {
            st.users += 1.0;
        }
        st.n += 1.0;
        st.s += s1 - s0;
        st.sum_n2 += n1 * n1 - n0 * n0;
        st.sum_s2 += s1 * s1 - s0 * s0;
        st.sum_sn += s1 * n1 - s0 * n0;
    }
}

fn simulate(sc: Scenario, run: u64) -> Outcome {
    let policy = Policy::default();
    let mut rng = StdRng::seed_from_u64(0x5eed_0000 + run);
    let seed = format!("experiment-{run}");
    let buckets: Vec<u32> = (0..USERS).map(|u| bucket(&seed, &format!("user-{run}-{u}"))).collect();
    // users differ: some like everything, some nothing
    let offsets: Vec<f64> = (0..USERS).map(|_| 0.12 * normal(&mut rng)).collect();
    let max_hours = (policy.max_days * 24.0) as usize;
    let mut arriving: Vec<Vec<(usize, usize, usize, bool)>> = vec![Vec::new(); max_hours + 26];
    let mut phases = vec![PhaseCounts::new()];
    let (mut step, mut phase_start) = (0usize, 0usize);
    for hour in 0..max_hours {
        let share = policy.steps[step];
        let daily = 1.0 + 0.5 * (2.0 * std::f64::consts::PI * hour as f64 / 24.0).sin();
        // the base rate drifts over the week, the same for both arms
        let drift = 0.05 * (2.0 * std::f64::consts::PI * hour as f64 / 168.0).sin();
        let conversations = (sc.conversations_per_hour * daily).round() as usize;
        for _ in 0..conversations {
            let user = rng.random_range(0..USERS);
            let arm = usize::from(in_candidate(buckets[user], share));
            if rng.random::<f64>() >= RATED_SHARE {
                continue;
            }
            let rate = if arm == 1 { sc.candidate } else { sc.control };
            let p = (rate + drift + offsets[user]).clamp(0.01, 0.99);
            let positive = rng.random::<f64>() < p;
            let delay = if sc.late_ratings { rng.random_range(0..=24) } else { 0 };
            arriving[hour + delay].push((phases.len() - 1, arm, user, positive));
        }
        for (phase, arm, user, positive) in std::mem::take(&mut arriving[hour]) {
            phases[phase].add(arm, user, positive);
        }
        let stats: Vec<PhaseStats> = phases
            .iter()
            .map(|p| PhaseStats {
                control: p.stats[0],
                candidate: p.stats[1],
            })
            .collect();
        let standing = Standing {
            step,
            phase_hours: (hour + 1 - phase_start) as f64,
            experiment_hours: (hour + 1) as f64,
        };
        let (decision, ev) = evaluate(&policy, &standing, &stats);
        match decision {
            Decision::Wait => {}
            Decision::Ramp { .. } => {
                step += 1;
                phase_start = hour + 1;
                phases.push(PhaseCounts::new());
            }
            _ => {
                return Outcome {
                    decision,
                    rated: ev.control_rated + ev.candidate_rated,
                    step,
                }
            }
        }
    }
    let stats: Vec<PhaseStats> = phases
        .iter()
        .map(|p| PhaseStats {
            control: p.stats[0],
            candidate: p.stats[1],
        })
        .collect();
    let standing = Standing {
        step,
        phase_hours: 0.0,
        experiment_hours: max_hours as f64,
    };
    let (decision, ev) = evaluate(&policy, &standing, &stats);
    Outcome {
        decision,
        rated: ev.control_rated + ev.candidate_rated,
        step,
    }
}

struct Figures {
    promoted: f64,
    rolled_back: f64,
    rolled_back_at_first_step: f64,
    median_rated: f64,
    p90_rated: f64,
}

fn run_many(sc: Scenario, runs: u64) -> Figures {
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2u64)
            .map(|t| {
                s.spawn(move || {
                    (0..runs)
                        .filter(|r| r % 2 == t)
                        .map(|r| simulate(sc, r))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let n = outcomes.len() as f64;
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count() as f64 / n;
    let mut decided: Vec<f64> = outcomes
        .iter()
        .filter(|o| matches!(o.decision, Decision::Promote | Decision::Rollback))
        .map(|o| o.rated)
        .collect();
    decided.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Figures {
        promoted: count(&|o| o.decision == Decision::Promote),
        rolled_back: count(&|o| o.decision == Decision::Rollback),
        rolled_back_at_first_step: count(&|o| o.decision == Decision::Rollback && o.step == 0),
        median_rated: decided.get(decided.len() / 2).copied().unwrap_or(f64::NAN),
        p90_rated: decided.get(decided.len() * 9 / 10).copied().unwrap_or(f64::NAN),
    }
}

fn report(name: &str, sc: Scenario, f: &Figures) {
    eprintln!(
        "| {name} | {:.0}% vs {:.0}% | {} | {:.3} | {:.3} | {:.3} | {} | {} |",
        100.0 * sc.candidate,
        100.0 * sc.control,
        if sc.late_ratings { "up to 24 h" } else { "at once" },
        f.promoted,
        f.rolled_back,
        f.rolled_back_at_first_step,
        if f.median_rated.is_nan() {
            "–".to_string()
        } else {
            format!("{:.0}", f.median_rated)
        },
        if f.p90_rated.is_nan() {
            "–".to_string()
        } else {
            format!("{:.0}", f.p90_rated)
        }
    );
}

const RUNS: u64 = 200;
const VOLUME: f64 = 300.0;

#[test]
fn simulated_a_a_experiments_rarely_decide() {
    for late_ratings in [true, false] {
        let sc = Scenario {
            control: 0.6,
            candidate: 0.6,
            late_ratings,
            conversations_per_hour: VOLUME,
        };
        let f = run_many(sc, RUNS);
        report("A/A", sc, &f);
        assert!(
            1.0 - f.promoted - f.rolled_back >= 0.95,
            "A/A decided too often: {:.3} promoted, {:.3} rolled back",
            f.promoted,
            f.rolled_back
        );
    }
}

#[test]
fn simulated_better_candidates_are_promoted() {
    for late_ratings in [true, false] {
        let sc = Scenario {
            control: 0.6,
            candidate: 0.7,
            late_ratings,
            conversations_per_hour: VOLUME,
        };
        let f = run_many(sc, RUNS);
        report("better", sc, &f);
        assert!(f.promoted >= 0.90, "promoted only {:.3}", f.promoted);
        // The README states it: 90% of promotions within 8,000 rated answers (both arms).
        assert!(
            f.p90_rated <= 8_000.0,
            "90% of promotions took up to {} rated answers",
            f.p90_rated
        );
    }
}

#[test]
fn simulated_worse_candidates_are_rolled_back_at_the_first_step() {
    for late_ratings in [true, false] {
        let sc = Scenario {
            control: 0.6,
            candidate: 0.5,
            late_ratings,
            conversations_per_hour: VOLUME,
        };
        let f = run_many(sc, RUNS);
        report("worse", sc, &f);
        assert!(
            f.rolled_back_at_first_step >= 0.95,
            "rolled back at the first step only {:.3} (at all: {:.3})",
            f.rolled_back_at_first_step,
            f.rolled_back
        );
    }
}
