//! Which model a user gets, and when the evidence says a candidate model is
//! better or worse than the one it is tested against.
//!
//! - **Assignment** ([`bucket`]) hashes the experiment's seed and the user id
//!   (FNV-1a 32, twice, as GrowthBook's v2 bucketing, with a delimiter between
//!   seed and user) into 0..10,000. A user is in the candidate arm while their
//!   bucket is below the candidate's share: a ramp (10 → 25 → 50 %) only moves
//!   users from the control to the candidate, and nobody moves back.
//! - **Evidence** ([`evaluate`]) compares the arms' positive rates (a rated
//!   answer is positive when it got a thumbs up or 4–5 stars) **within each
//!   phase** (a period at one share: a ramp or a drift in the base rate cannot
//!   bias the comparison), with each arm a Beta(1 + s, 1 + f) posterior whose
//!   counts are shrunk by the arm's design effect (one user's ratings are
//!   correlated: the variance is the cluster-robust one, per user). The phases
//!   combine by inverse variance into one posterior for the lift.
//! - **Decisions** use a mixture sequential probability ratio test (mSPRT,
//!   normal mixture with scale [`TAU`]): its likelihood ratio stays below
//!   1/[`ALPHA`] with probability 1 − α under "no difference" however often it
//!   is checked, so an hourly evaluation, forever, makes a false promotion or
//!   rollback with probability at most α (Ville's inequality). A ramp step
//!   needs the candidate not worse than the control by more than
//!   [`RAMP_MARGIN`] at 95% confidence, a full phase of [`Policy::min_phase_hours`],
//!   and [`Policy::min_rated`] rated answers per arm in that phase.

/// Assignments are in 1/100 of a percent.
pub const BUCKETS: u32 = 10_000;
/// Bound on false decisions (promote or roll back when the arms are equal),
/// however often the rule is checked.
pub const ALPHA: f64 = 0.02;
/// The mixture's scale: the size of lift the test is most sensitive to
/// (absolute, in positive-rate points / 100).
pub const TAU: f64 = 0.08;
/// A ramp step needs the candidate at most this much worse (95% confidence).
pub const RAMP_MARGIN: f64 = 0.05;
/// Distinct users per arm before any decision (and per arm in a phase
/// before a ramp): a handful of users cannot decide for everyone.
pub const MIN_USERS: f64 = 10.0;
/// One-sided 95%.
const Z95_ONE_SIDED: f64 = 1.644_853_626_951_472_2;
const Z95_TWO_SIDED: f64 = 1.959_963_984_540_054;

/// FNV-1a, 32 bits.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The user's bucket in an experiment, 0..[`BUCKETS`]: GrowthBook's v2 formula
/// (`fnv32a(fnv32a(seed + value) + "") % 10000`) with `|` between the seed
/// and the user id, so that seed "ab" + user "c" is not seed "a" + user "bc".
pub fn bucket(seed: &str, user: &str) -> u32 {
    let mut key = Vec::with_capacity(seed.len() + 1 + user.len());
    key.extend_from_slice(seed.as_bytes());
    key.push(b'|');
    key.extend_from_slice(user.as_bytes());
    let first = fnv1a32(&key);
    fnv1a32(first.to_string().as_bytes()) % BUCKETS
}

/// Whether a bucket is in the candidate arm at a share (percent).
pub fn in_candidate(bucket: u32, share_percent: f64) -> bool {
    f64::from(bucket) < share_percent * f64::from(BUCKETS) / 100.0
}

/// What to do when an experiment reaches its limit without a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inconclusive {
    KeepControl,
    Promote,
}

impl Inconclusive {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "keep_control" => Some(Self::KeepControl),
            "promote" => Some(Self::Promote),
            _ => None,
        }
    }
}

/// A dataset's experiment policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The candidate's shares, percent, ascending; it is promoted only at the last.
    pub steps: Vec<f64>,
    /// Rated answers per arm before any decision (and per arm within a phase
    /// before a ramp step).
    pub min_rated: f64,
    /// The shortest phase before a ramp step (a day covers the daily cycle).
    pub min_phase_hours: f64,
    /// The longest an experiment runs before `on_inconclusive` applies.
    pub max_days: f64,
    pub on_inconclusive: Inconclusive,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            steps: vec![10.0, 25.0, 50.0],
            min_rated: 100.0,
            min_phase_hours: 24.0,
            max_days: 28.0,
            on_inconclusive: Inconclusive::KeepControl,
        }
    }
}

impl Policy {
    /// What is wrong with a policy, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.steps.is_empty() {
            return Some("experiment_steps must have at least one share".into());
        }
        let mut prev = 0.0;
        for s in &self.steps {
            if !(*s > prev && *s <= 100.0) {
                return Some(format!(
                    "experiment_steps must rise strictly, each share above 0 and at most 100 percent, got {:?}",
                    self.steps
                ));
            }
            prev = *s;
        }
        if !(self.min_rated >= 1.0) || !(self.min_phase_hours >= 0.0) || !(self.max_days > 0.0) {
            return Some("experiment_min_rated must be at least 1, experiment_min_phase_hours at least 0, experiment_max_days above 0".into());
        }
        None
    }
}

/// One arm's rated answers in one phase, summed per user: `n` rated, `s`
/// positive, the sums over users of n_u², s_u², s_u·n_u (for the
/// cluster-robust variance), and how many users (summed over phases when
/// merged).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ArmStats {
    pub n: f64,
    pub s: f64,
    pub sum_n2: f64,
    pub sum_s2: f64,
    pub sum_sn: f64,
    pub users: f64,
}

impl ArmStats {
    /// Add one user's counts.
    pub fn add_user(&mut self, n: f64, s: f64) {
        self.n += n;
        self.s += s;
        self.sum_n2 += n * n;
        self.sum_s2 += s * s;
        self.sum_sn += s * n;
        self.users += 1.0;
    }

    pub fn merge(&mut self, o: &ArmStats) {
        self.n += o.n;
        self.s += o.s;
        self.sum_n2 += o.sum_n2;
        self.sum_s2 += o.sum_s2;
        self.sum_sn += o.sum_sn;
        self.users += o.users;
    }

    /// The design effect: the cluster-robust variance of the rate (with the
    /// small-sample factor G/(G-1) over G users) over the binomial one (at
    /// least 1).
    pub fn design_effect(&self) -> f64 {
        if self.n < 2.0 {
            return 1.0;
        }
        let p = self.s / self.n;
        let binomial = p * (1.0 - p) / self.n;
        if binomial <= 0.0 {
            return 1.0;
        }
        let mut cluster = (self.sum_s2 - 2.0 * p * self.sum_sn + p * p * self.sum_n2) / (self.n * self.n);
        if self.users >= 2.0 {
            cluster *= self.users / (self.users - 1.0);
        }
        (cluster / binomial).max(1.0)
    }

    /// Mean and variance of the arm's Beta(1 + s/deff, 1 + f/deff) posterior.
    pub fn posterior(&self) -> (f64, f64) {
        let deff = self.design_effect();
        let a = 1.0 + self.s / deff;
        let b = 1.0 + (self.n - self.s) / deff;
        let mean = a / (a + b);
        let var = a * b / ((a + b) * (a + b) * (a + b + 1.0));
        (mean, var)
    }

    pub fn rate(&self) -> Option<f64> {
        (self.n > 0.0).then(|| self.s / self.n)
    }
}

/// Both arms in one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhaseStats {
    pub control: ArmStats,
    pub candidate: ArmStats,
}

/// Where an experiment stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// Index into the policy's steps of the current share.
    pub step: usize,
    /// Hours since the current phase began.
    pub phase_hours: f64,
    /// Hours since the experiment began.
    pub experiment_hours: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Not enough evidence yet.
    Wait,
    /// Not worse so far: the next share.
    Ramp { to: f64 },
    /// Better: served to everyone.
    Promote,
    /// Worse: back to the control.
    Rollback,
    /// The limit passed without a decision; `promote` per the policy.
    Expire { promote: bool },
}

impl Decision {
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Wait => "wait",
            Decision::Ramp { .. } => "ramp",
            Decision::Promote => "promote",
            Decision::Rollback => "rollback",
            Decision::Expire { .. } => "expire",
        }
    }
}

/// The numbers behind a decision.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evidence {
    pub control_rated: f64,
    pub control_positive: f64,
    pub candidate_rated: f64,
    pub candidate_positive: f64,
    /// Candidate minus control, within phases, combined (absolute).
    pub lift: f64,
    pub lift_se: f64,
    /// A 95% interval for one look (what a report shows).
    pub lift_low_95: f64,
    pub lift_high_95: f64,
    /// The always-valid (1 − ALPHA) interval the decisions use.
    pub lift_low_seq: f64,
    pub lift_high_seq: f64,
    /// Posterior probabilities that the candidate is better / worse.
    pub p_better: f64,
    pub p_worse: f64,
    /// The mSPRT likelihood ratio; a decision needs at least 1/ALPHA.
    pub likelihood_ratio: f64,
    pub phases: usize,
    pub reason: String,
}

/// The standard normal distribution function.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// erf, Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7).
fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t + 0.254_829_592)
            * t
            * (-x * x).exp();
    sign * y
}

/// The normal-mixture mSPRT likelihood ratio for an estimate `d` with variance `v`.
fn mixture_ratio(d: f64, v: f64) -> f64 {
    let t2 = TAU * TAU;
    ((v / (v + t2)).sqrt().ln() + d * d * t2 / (2.0 * v * (v + t2))).exp()
}

/// Half-width of the always-valid (1 − alpha) interval at variance `v`.
fn sequential_half_width(v: f64, alpha: f64) -> f64 {
    let t2 = TAU * TAU;
    (2.0 * v * (v + t2) / t2 * (((v + t2) / v).sqrt() / alpha).ln()).sqrt()
}

/// The combined lift and its variance over the phases where both arms have
/// rated answers; `None` when there is none.
fn combined_lift(phases: &[PhaseStats]) -> Option<(f64, f64, usize)> {
    let (mut wsum, mut wd, mut used) = (0.0, 0.0, 0);
    for ph in phases {
        if ph.control.n < 1.0 || ph.candidate.n < 1.0 {
            continue;
        }
        let (mc, vc) = ph.candidate.posterior();
        let (m0, v0) = ph.control.posterior();
        let w = 1.0 / (vc + v0);
        wsum += w;
        wd += w * (mc - m0);
        used += 1;
    }
    (used > 0).then(|| (wd / wsum, 1.0 / wsum, used))
}

/// The decision for an experiment, from its rated answers per phase (the last
/// one is the current phase), and the numbers behind it.
pub fn evaluate(policy: &Policy, standing: &Standing, phases: &[PhaseStats]) -> (Decision, Evidence) {
    let mut total = PhaseStats::default();
    for ph in phases {
        total.control.merge(&ph.control);
        total.candidate.merge(&ph.candidate);
    }
    let mut ev = Evidence {
        control_rated: total.control.n,
        control_positive: total.control.s,
        candidate_rated: total.candidate.n,
        candidate_positive: total.candidate.s,
        lift: 0.0,
        lift_se: f64::NAN,
        lift_low_95: f64::NAN,
        lift_high_95: f64::NAN,
        lift_low_seq: f64::NAN,
        lift_high_seq: f64::NAN,
        p_better: 0.5,
        p_worse: 0.5,
        likelihood_ratio: 1.0,
        phases: 0,
        reason: String::new(),
    };
    let last_step = standing.step + 1 >= policy.steps.len();
    let expired = standing.experiment_hours >= policy.max_days * 24.0;
    // At the limit, "promote" promotes only a candidate that was measured
    // (enough answers and users in both arms) and is not worse by more than
    // the ramp margin on the always-valid interval; otherwise the control stays.
    let expire = |mut ev: Evidence, why: String, measured_not_worse: bool| {
        ev.reason = why;
        let promote = policy.on_inconclusive == Inconclusive::Promote && measured_not_worse;
        (Decision::Expire { promote }, ev)
    };
    let Some((d, v, used)) = combined_lift(phases) else {
        if expired {
            return expire(
                ev,
                format!("no rated answers in both arms after {:.0} days", policy.max_days),
                false,
            );
        }
        ev.reason = "no rated answers in both arms yet".into();
        return (Decision::Wait, ev);
    };
    let se = v.sqrt();
    let h = sequential_half_width(v, ALPHA);
    let lr = mixture_ratio(d, v);
    ev.lift = d;
    ev.lift_se = se;
    ev.lift_low_95 = d - Z95_TWO_SIDED * se;
    ev.lift_high_95 = d + Z95_TWO_SIDED * se;
    ev.lift_low_seq = d - h;
    ev.lift_high_seq = d + h;
    ev.p_better = normal_cdf(d / se);
    ev.p_worse = 1.0 - ev.p_better;
    ev.likelihood_ratio = lr;
    ev.phases = used;

    let enough = total.control.n >= policy.min_rated
        && total.candidate.n >= policy.min_rated
        && total.control.users >= MIN_USERS
        && total.candidate.users >= MIN_USERS;
    let conclusive = enough && lr >= 1.0 / ALPHA;
    if conclusive && d < 0.0 {
        ev.reason = format!(
            "worse: lift {:+.1} points, always-valid {:.0}% interval {:+.1} to {:+.1}, P(worse) {:.3}",
            100.0 * d,
            100.0 * (1.0 - ALPHA),
            100.0 * ev.lift_low_seq,
            100.0 * ev.lift_high_seq,
            ev.p_worse
        );
        return (Decision::Rollback, ev);
    }
    if conclusive && d > 0.0 && last_step {
        ev.reason = format!(
            "better: lift {:+.1} points, always-valid {:.0}% interval {:+.1} to {:+.1}, P(better) {:.3}",
            100.0 * d,
            100.0 * (1.0 - ALPHA),
            100.0 * ev.lift_low_seq,
            100.0 * ev.lift_high_seq,
            ev.p_better
        );
        return (Decision::Promote, ev);
    }
    if expired {
        return expire(
            ev,
            format!(
                "inconclusive after {:.0} days: lift {:+.1} points, always-valid interval {:+.1} to {:+.1}",
                policy.max_days,
                100.0 * d,
                100.0 * (d - h),
                100.0 * (d + h)
            ),
            enough && d - h > -RAMP_MARGIN,
        );
    }
    if !last_step {
        let current = phases.last().copied().unwrap_or_default();
        let not_worse = d - Z95_ONE_SIDED * se > -RAMP_MARGIN;
        if standing.phase_hours >= policy.min_phase_hours
            && current.candidate.n >= policy.min_rated
            && current.control.n >= policy.min_rated
            && current.candidate.users >= MIN_USERS
            && current.control.users >= MIN_USERS
            && not_worse
        {
            let to = policy.steps[standing.step + 1];
            ev.reason = format!(
                "not worse: lift {:+.1} points, 95% lower bound {:+.1} above -{:.0}; share {} -> {} %",
                100.0 * d,
                100.0 * (d - Z95_ONE_SIDED * se),
                100.0 * RAMP_MARGIN,
                policy.steps[standing.step],
                to
            );
            return (Decision::Ramp { to }, ev);
        }
    }
    ev.reason = if !enough {
        format!(
            "{:.0} and {:.0} rated answers (control, candidate); {} per arm needed",
            total.control.n, total.candidate.n, policy.min_rated
        )
    } else {
        format!(
            "lift {:+.1} points, always-valid interval {:+.1} to {:+.1}: not yet conclusive",
            100.0 * d,
            100.0 * (d - h),
            100.0 * (d + h)
        )
    };
    (Decision::Wait, ev)
}

#[cfg(test)]
mod tests;
