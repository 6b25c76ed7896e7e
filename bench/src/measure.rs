//! Sides measured in interleaved rounds, and what is taken from them.
//!
//! The machines these benches run on are shared, and their speed swings
//! within seconds. So a comparison measures each side many times, one
//! after the other, in rounds; each round starts one side later than the
//! one before (A B C, B C A, C A B, ...), so that no side always runs
//! first or last, right after the same neighbour. A side's figure is the
//! median of its rounds, and a ratio of two sides is the median of their
//! per-round ratios: two sides measured a few seconds apart in the same
//! round saw the same machine, so their ratio is steadier than either
//! figure, and no single round decides.

use crate::{BoxError, progress};

/// A side of a comparison: its name and one measurement, which returns
/// the side's figure for that round.
pub type Side<'a> = (&'static str, &'a mut dyn FnMut() -> Result<f64, BoxError>);

/// The order of the sides in round `round` (counting from 0) of
/// `sides`: the round starts with side `round % sides` and goes on in
/// order, wrapping around.
pub fn order(round: usize, sides: usize) -> impl Iterator<Item = usize> {
    (0..sides).map(move |turn| (round + turn) % sides)
}

/// Every side's figure in every round.
#[derive(Debug, Clone)]
pub struct Rounds {
    names: Vec<&'static str>,
    /// `figures[side][round]`.
    figures: Vec<Vec<f64>>,
}

impl Rounds {
    /// No rounds yet of the sides `names`.
    pub fn new(names: &[&'static str]) -> Self {
        Self {
            names: names.to_vec(),
            figures: vec![Vec::new(); names.len()],
        }
    }

    fn index(&self, side: &str) -> usize {
        self.names
            .iter()
            .position(|name| *name == side)
            .unwrap_or_else(|| panic!("no side {side:?} in {:?}", self.names))
    }

    /// Adds `figure` to `side`'s rounds.
    pub fn push(&mut self, side: &str, figure: f64) {
        let index = self.index(side);
        self.figures[index].push(figure);
    }

    /// `side`'s figures, in the order measured.
    pub fn figures(&self, side: &str) -> &[f64] {
        &self.figures[self.index(side)]
    }

    /// The median of `side`'s figures.
    pub fn median(&self, side: &str) -> f64 {
        median(self.figures(side).iter().copied())
    }

    /// The ratio of `side` to `base` in each round.
    pub fn ratios(&self, side: &str, base: &str) -> Vec<f64> {
        self.figures(side)
            .iter()
            .zip(self.figures(base))
            .map(|(side, base)| side / base)
            .collect()
    }

    /// The median of the per-round ratios of `side` to `base`.
    pub fn paired_ratio(&self, side: &str, base: &str) -> f64 {
        median(self.ratios(side, base))
    }
}

/// Measures every side `rounds` times, in rounds whose order turns by one
/// each time (see [`order`]), printing each figure as progress with
/// `unit`.
pub fn interleaved(
    case: &str,
    rounds: usize,
    unit: &str,
    sides: &mut [Side<'_>],
) -> Result<Rounds, BoxError> {
    let names: Vec<&'static str> = sides.iter().map(|(name, _)| *name).collect();
    let mut result = Rounds::new(&names);
    for round in 0..rounds {
        for side in order(round, sides.len()) {
            let (name, measure) = &mut sides[side];
            let figure = measure()?;
            progress(format!(
                "  {case}, round {}/{rounds}: {name} {} {unit}",
                round + 1,
                figure_text(figure)
            ));
            result.push(name, figure);
        }
    }
    Ok(result)
}

/// The median of `values` (the mean of the middle two for an even
/// count); NaN when there are none.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        f64::midpoint(values[mid - 1], values[mid])
    } else {
        values[mid]
    }
}

/// The `p`-th percentile (0 to 100) of `values`, nearest rank; NaN when
/// there are none.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A figure as the report prints it: grouped thousands for large ones,
/// a few significant digits for small ones.
pub fn figure_text(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs();
    if magnitude >= 1000.0 {
        let digits = format!("{magnitude:.0}");
        let mut out = String::new();
        if value < 0.0 {
            out.push('-');
        }
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(digit);
        }
        out
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_round_starts_one_side_later() {
        let rounds: Vec<Vec<usize>> = (0..4).map(|round| order(round, 3).collect()).collect();
        assert_eq!(
            rounds,
            [vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1], vec![0, 1, 2]]
        );
    }

    #[test]
    fn medians_and_paired_ratios() {
        let mut rounds = Rounds::new(&["ebb", "base"]);
        for (ebb, base) in [(10.0, 10.0), (9.0, 12.0), (30.0, 20.0)] {
            rounds.push("ebb", ebb);
            rounds.push("base", base);
        }
        assert_eq!(rounds.median("ebb"), 10.0);
        assert_eq!(rounds.median("base"), 12.0);
        // Ratios 1.0, 0.75, 1.5: the median is 1.0, not 10/12.
        assert_eq!(rounds.paired_ratio("ebb", "base"), 1.0);
        assert_eq!(median([1.0, 2.0, 3.0, 4.0]), 2.5);
        assert_eq!(percentile(&[5.0, 1.0, 3.0, 2.0, 4.0], 50.0), 3.0);
        assert_eq!(percentile(&[5.0, 1.0, 3.0, 2.0, 4.0], 99.0), 5.0);
    }

    #[test]
    fn figures_print_readably() {
        assert_eq!(figure_text(1_234_567.8), "1,234,568");
        assert_eq!(figure_text(123.4), "123");
        assert_eq!(figure_text(12.34), "12.3");
        assert_eq!(figure_text(1.234), "1.23");
    }
}
