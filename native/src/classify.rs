//! Page type's scores (pipelines/page_type.py `classify_signals`): each type's bias plus, for
//! each signal in the signals' order whose value is not zero, its value times the signal's
//! weight for the type: the same products and sums in the same order as Python's floats (f64;
//! no fused multiply-add: Rust does not contract `a * b + c`). The weights are
//! page_type_weights.py's, given once by pipelines/native.py; Python ranks the scores.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::extract::guarded;

/// The bias per type and each signal's weights (as many as types).
struct Weights {
    bias: Vec<f64>,
    rows: HashMap<String, Vec<f64>>,
}

static WEIGHTS: RwLock<Option<Arc<Weights>>> = RwLock::new(None);

/// Each type's score of *signals* ((name, value) in order) under *weights*: Python's loop.
fn scores<'a>(
    weights: &Weights,
    signals: impl Iterator<Item = (Option<&'a str>, f64)>,
) -> Vec<f64> {
    let mut scores = weights.bias.clone();
    for (name, value) in signals {
        if value == 0.0 {
            continue; // Python's `if value:` (NaN is true, -0.0 false: as here)
        }
        if let Some(row) = name.and_then(|name| weights.rows.get(name)) {
            for (score, weight) in scores.iter_mut().zip(row) {
                // A NaN score stays that NaN (its sign): Python's `+` gives its left NaN when
                // both are NaN (x86's addsd); LLVM may swap an addition's operands.
                if !score.is_nan() {
                    *score += weight * value;
                }
            }
        }
    }
    scores
}

/// page_type_weights.py's `BIAS` and `WEIGHTS` (pipelines/native.py gives them once);
/// ValueError if a signal's weights are not one per type.
#[pyfunction]
fn page_type_weights(bias: Vec<f64>, weights: HashMap<String, Vec<f64>>) -> PyResult<()> {
    if weights.values().any(|row| row.len() != bias.len()) {
        return Err(PyValueError::new_err(
            "a signal's weights are not one per type",
        ));
    }
    let weights = Weights {
        bias,
        rows: weights,
    };
    *WEIGHTS
        .write()
        .map_err(|_| PyValueError::new_err("poisoned"))? = Some(Arc::new(weights));
    Ok(())
}

/// `classify_signals`' scores of *signals* (a dict of name -> number), one per type in
/// `MODEL_TYPES`' order; None before `page_type_weights`. A value that is not a number is a
/// TypeError (Python's loop would fail too); a name that is not a str has no weights.
#[pyfunction]
fn page_type_scores(signals: &Bound<'_, PyDict>) -> PyResult<Option<Vec<f64>>> {
    let Some(weights) = WEIGHTS.read().ok().and_then(|w| w.clone()) else {
        return Ok(None);
    };
    let mut pairs: Vec<(Option<String>, f64)> = Vec::with_capacity(signals.len());
    for (name, value) in signals.iter() {
        // A name that is no str, or that no Rust str holds (a lone surrogate), has no
        // weights, as in Python's dict.
        let name = name.extract::<String>().ok();
        pairs.push((name, value.extract::<f64>()?));
    }
    let signals = pairs.iter().map(|(name, value)| (name.as_deref(), *value));
    guarded(|| scores(&weights, signals)).map(Some)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(page_type_weights, m)?)?;
    m.add_function(wrap_pyfunction!(page_type_scores, m)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_in_the_signals_order() {
        let weights = Weights {
            bias: vec![0.1, -0.2],
            rows: HashMap::from([
                ("a".to_string(), vec![0.3, 0.7]),
                ("b".into(), vec![1e16, 1.0]),
            ]),
        };
        let got = scores(
            &weights,
            [
                (Some("b"), 1.0),
                (Some("a"), 3.0),
                (Some("x"), 9.0),
                (Some("b"), -1.0),
                (None, 1.0),
            ]
            .into_iter(),
        );
        // Left to right, as Python: ((0.1 + 1e16) + 0.9) - 1e16, not 0.1 + 0.9.
        assert_eq!(
            got,
            vec![
                ((0.1 + 1e16) + 0.3 * 3.0) + 1e16 * -1.0,
                ((-0.2 + 1.0) + 0.7 * 3.0) - 1.0
            ]
        );
        assert_eq!(
            scores(&weights, [(Some("a"), 0.0), (Some("a"), -0.0)].into_iter()),
            weights.bias
        );
        assert!(scores(&weights, [(Some("a"), f64::NAN)].into_iter())[0].is_nan());
    }
}
