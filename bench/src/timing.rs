//! Repeated timing of one workload: a warm-up run, then rounds until both a minimum count
//! and a minimum wall time are reached; figures are taken from the median round, which a
//! stray scheduler hiccup on a small machine does not move.

use std::time::{Duration, Instant};

/// How long and how often to repeat a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Rounds to run at least (after the warm-up).
    pub min_rounds: u32,
    /// Wall time to spend at least, over all rounds.
    pub min_time: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            min_rounds: 5,
            min_time: Duration::from_secs(3),
        }
    }
}

/// The duration of every measured round.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    rounds: Vec<Duration>,
}

impl Samples {
    /// Wraps measured round durations (at least one).
    pub fn new(rounds: Vec<Duration>) -> Option<Samples> {
        (!rounds.is_empty()).then_some(Samples { rounds })
    }

    /// Rounds measured.
    pub fn count(&self) -> usize {
        self.rounds.len()
    }

    /// The median round (the lower middle for an even count).
    pub fn median(&self) -> Duration {
        let mut sorted = self.rounds.clone();
        sorted.sort();
        sorted[(sorted.len() - 1) / 2]
    }

    /// The fastest round.
    pub fn min(&self) -> Duration {
        self.rounds.iter().copied().min().unwrap_or_default()
    }

    /// Items per second at the median round, for `items` processed per round.
    pub fn per_second(&self, items: u64) -> f64 {
        items as f64 / self.median().as_secs_f64()
    }

    /// Microseconds per item at the median round.
    pub fn micros_per(&self, items: u64) -> f64 {
        self.median().as_secs_f64() * 1e6 / items.max(1) as f64
    }
}

/// Runs `work` once to warm up, then repeatedly within `budget`, timing each round.
pub fn measure<T>(budget: Budget, mut work: impl FnMut() -> T) -> Samples {
    std::hint::black_box(work());
    let start = Instant::now();
    let mut rounds = Vec::new();
    while rounds.len() < budget.min_rounds.max(1) as usize || start.elapsed() < budget.min_time {
        let t = Instant::now();
        std::hint::black_box(work());
        rounds.push(t.elapsed());
    }
    Samples { rounds }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_rates() {
        let s = Samples::new(vec![
            Duration::from_millis(30),
            Duration::from_millis(10),
            Duration::from_millis(20),
            Duration::from_millis(1000),
        ])
        .expect("non-empty");
        assert_eq!(s.median(), Duration::from_millis(20));
        assert_eq!(s.min(), Duration::from_millis(10));
        assert!((s.per_second(100) - 5000.0).abs() < 1e-6);
        assert!((s.micros_per(4) - 5000.0).abs() < 1e-6);
        assert!(Samples::new(Vec::new()).is_none());
    }

    #[test]
    fn measure_runs_at_least_min_rounds() {
        let mut calls = 0u32;
        let s = measure(
            Budget {
                min_rounds: 7,
                min_time: Duration::ZERO,
            },
            || calls += 1,
        );
        assert_eq!(s.count(), 7);
        assert_eq!(calls, 8, "one warm-up call plus the measured rounds");
    }
}
