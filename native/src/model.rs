//! Placement's per-link stage (issue 18): the facts of each link the model reads
//! (pipelines/placement.py `_link_facts`), its score (placement_model.py `scores`) and the
//! decision (`decide`), with Python's floats: every sum in Python's order (left to right,
//! from 0), `log1p` and `exp` from the same C library, integer divisions as CPython divides
//! small ints (both converted, then one division). The Python code stays the reference and
//! the fallback; tests/test_native.py holds the two equal on every test page.
//!
//! Two steps: [`gather`] reads what it needs of placement's Python structures (lazily: one
//! lookup per link, or per paragraph), then [`stage`] computes on plain arrays (no Python).
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::extract::guarded;

/// The links' own facts per row (placement.py LINK_FEATURES).
pub const N_OWN: usize = 21;
/// The page's facts placement.py computes before the links' (page_listing ... main_share).
pub const N_HEAD: usize = 6;

/// The model (placement_weights.py), split as placement_model.py `_Weights` splits it, with
/// the thresholds as logits (computed by Python's `_logit`) and the names it compares.
pub struct Model {
    pub own: Vec<f64>,
    pub page: Vec<f64>,
    pub inter: [f64; 3],
    pub bits: Vec<f64>,
    pub bias: f64,
    pub cut: f64,
    pub demote: f64,
    pub demote_article: f64,
    pub promote: f64,
    /// Positions in the page's facts of markup_article and markup_forum.
    pub markup_article: usize,
    pub markup_forum: usize,
    /// placement_model.py `_SURE` and `_OVERRULED`.
    pub sure: f64,
    pub overruled: f64,
}

/// What the model reads that is not a weight: the one-hot order of the placements
/// (content first), the paragraph tags (placement.py `_PARAGRAPHS`).
struct Names {
    labels: [String; 5],
    paragraphs: HashSet<String>,
}

static MODEL: RwLock<Option<Arc<(Model, Names)>>> = RwLock::new(None);

/// One link, as [`gather`] read it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Link {
    /// Its rule's placement: an index into the one-hot order (0: content).
    pub code: usize,
    pub score: f64,
    pub block: i64,
    /// Its paragraph (-1: none), an index into [`Gathered::paras`] in `para_at`.
    pub para_at: usize,
    /// Its anchor's length (Python's `len`, code points) and spaces.
    pub anchor_len: i64,
    pub spaces: i64,
    /// Its grandparent's key (0 under the root), its position in the scan's sequence (-1).
    pub grand: i64,
    pub at: i64,
    pub in_main: bool,
}

/// A paragraph's facts the links read: its own text, whether it is running text and a
/// paragraph tag, and its link text (placement.py `_Text`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Para {
    pub own: i64,
    pub good: bool,
    pub paragraph: bool,
    pub links: i64,
}

/// What a page's links need: per link, per distinct paragraph, and the page's own facts
/// (`head`: the six before main_links, `tail`: those after page_links).
#[derive(Clone, Debug, Default)]
pub struct Gathered {
    pub links: Vec<Link>,
    pub paras: Vec<Para>,
    pub n_seq: i64,
    pub first: i64,
    pub last: i64,
    pub head: Vec<f64>,
    pub tail: Vec<f64>,
}

/// The stage's answer: each link's facts, in main or not, the page's facts, the scores.
#[derive(Debug, Default, PartialEq)]
pub struct Staged {
    pub rows: Vec<[f64; N_OWN]>,
    pub inside: Vec<f64>,
    pub page: Vec<f64>,
}

/// `log1p` of the C library, as Python's `math.log1p` (Rust's `ln_1p` calls it).
fn log1p(x: f64) -> f64 {
    x.ln_1p()
}

/// CPython's true division of two small ints (|n| < 2**53): both exact, one division.
fn div(a: i64, b: i64) -> f64 {
    a as f64 / b as f64
}

/// placement.py `_link_facts` on gathered arrays: each link's row of LINK_FEATURES, 1.0 in
/// main or 0.0, and the page's facts (PAGE_FEATURES).
pub fn stage(g: &Gathered) -> Staged {
    // Per container (the rule's block): links, rule content, anchor sum (in link order);
    // per grandparent: links.
    let log_anchor: Vec<f64> = g
        .links
        .iter()
        .map(|l| log1p(l.anchor_len as f64) / 5.0)
        .collect();
    // Each link's container and grandparent as an index (one lookup each), their sums in
    // vectors.
    let mut block_index: HashMap<i64, usize> = HashMap::new();
    let mut grand_index: HashMap<i64, usize> = HashMap::new();
    let mut per_block: Vec<(i64, i64, f64)> = Vec::new();
    let mut per_grand: Vec<i64> = Vec::new();
    let mut at_block = Vec::with_capacity(g.links.len());
    let mut at_grand = Vec::with_capacity(g.links.len());
    for (link, &la) in g.links.iter().zip(&log_anchor) {
        let content = (link.code == 0) as i64;
        let b = *block_index.entry(link.block).or_insert_with(|| {
            per_block.push((0, 0, 0.0));
            per_block.len() - 1
        });
        let sums = &mut per_block[b];
        // Python's list starts [1, content, la] and adds to it: la first, then +=.
        if sums.0 == 0 {
            *sums = (1, content, la);
        } else {
            sums.0 += 1;
            sums.1 += content;
            sums.2 += la;
        }
        at_block.push(b);
        let up = *grand_index.entry(link.grand).or_insert_with(|| {
            per_grand.push(0);
            per_grand.len() - 1
        });
        per_grand[up] += 1;
        at_grand.push(up);
    }
    let containers: Vec<(f64, f64, f64)> = per_block
        .into_iter()
        .map(|(count, content, anchor)| {
            (
                log1p(count as f64) / 5.0,
                div(content, count),
                anchor / count as f64,
            )
        })
        .collect();
    let grand: Vec<f64> = per_grand
        .into_iter()
        .map(|count| log1p(count as f64) / 5.0)
        .collect();
    let para_facts: Vec<[f64; 4]> = g
        .paras
        .iter()
        .map(|p| {
            let size = p.own.max(0);
            [
                if p.good { 1.0 } else { 0.0 },
                if p.paragraph { 1.0 } else { 0.0 },
                if size != 0 { div(p.links, size) } else { 1.0 },
                log1p(size as f64) / 8.0,
            ]
        })
        .collect();
    let n_seq = g.n_seq.max(1);
    let mut out = Staged {
        rows: Vec::with_capacity(g.links.len()),
        inside: Vec::with_capacity(g.links.len()),
        page: Vec::new(),
    };
    for (i, (link, &la)) in g.links.iter().zip(&log_anchor).enumerate() {
        let in_para = para_facts[link.para_at];
        let at = link.at;
        let words = if link.anchor_len > 0 {
            link.spaces + 1
        } else {
            0
        };
        let (same, content_share, mean_anchor) = containers[at_block[i]];
        let in_main = if link.in_main { 1.0 } else { 0.0 };
        let mut row = [0.0; N_OWN];
        row[link.code] = 1.0;
        row[5] = link.score;
        row[6] = in_main;
        row[7..11].copy_from_slice(&in_para);
        row[11] = if 0 <= at && at < g.first { 1.0 } else { 0.0 };
        row[12] = if at > g.last && g.last >= 0 { 1.0 } else { 0.0 };
        row[13] = div(at, n_seq);
        row[14] = la;
        row[15] = log1p(words as f64) / 3.0;
        row[16] = if link.anchor_len > 0 { 0.0 } else { 1.0 };
        row[17] = same;
        row[18] = grand[at_grand[i]];
        row[19] = content_share;
        row[20] = mean_anchor;
        out.rows.push(row);
        out.inside.push(in_main);
    }
    // main_links: sum(inside) (whole numbers: exact in any order) / len(inside).
    let n = out.inside.len();
    let main_links = out.inside.iter().sum::<f64>() / n as f64;
    out.page = g.head.clone();
    out.page.push(main_links);
    out.page.push(log1p(n as f64) / 8.0);
    out.page.extend_from_slice(&g.tail);
    out
}

/// Python's `sum` of the products (3.11's, and placement_model.py's `_fsum` on any
/// version): from 0, left to right, no compensation.
fn dot(w: &[f64], x: &[f64]) -> f64 {
    w.iter().zip(x).fold(0.0, |acc, (a, b)| acc + a * b)
}

/// placement_model.py `scores`: each link's weighted sum. Err when the weights do not fit
/// the facts (Python's `zip(strict=True)` raises).
pub fn scores(model: &Model, staged: &Staged, bits: &[u64]) -> Result<Vec<f64>, String> {
    if model.own.len() != N_OWN || model.page.len() != staged.page.len() {
        return Err(format!(
            "the model's weights ({} own, {} page) do not fit the facts ({N_OWN}, {})",
            model.own.len(),
            model.page.len(),
            staged.page.len()
        ));
    }
    let page = model.bias + dot(&model.page, &staged.page);
    let (listing, thread, article) = (staged.page[0], staged.page[1], staged.page[3]);
    let inter = model.inter[0] * listing + model.inter[1] * thread + model.inter[2] * article;
    let mut out = Vec::with_capacity(staged.rows.len());
    for ((row, &inside), &b) in staged.rows.iter().zip(&staged.inside).zip(bits) {
        // The weights of the set bits, in index order (`_Weights.bit_sum`).
        let mut bit_sum = 0.0;
        let mut rest = b;
        while rest != 0 {
            let j = rest.trailing_zeros() as usize;
            match model.bits.get(j) {
                Some(w) => bit_sum += w,
                None => break, // past the weights: Python's enumerate stops there
            }
            rest &= rest - 1;
        }
        out.push(page + dot(&model.own, row) + inside * inter + bit_sum);
    }
    Ok(out)
}

/// placement_model.py `decide`: the links the model overrules, each with the index of its
/// link, whether it is content now (else sidebar) and its new score.
pub fn decide(
    model: &Model,
    links: &[Link],
    staged: &Staged,
    scores: &[f64],
) -> Vec<(usize, bool, f64)> {
    const COMMENT: usize = 4;
    let page = &staged.page;
    let demote = if page[model.markup_article] != 0.0 {
        model.demote_article
    } else {
        model.demote
    };
    let promote = if page[model.markup_forum] != 0.0 {
        model.promote
    } else {
        model.cut
    };
    let thread = page[1] != 0.0;
    let mut out = Vec::new();
    for (i, ((link, &z), &inside)) in links.iter().zip(scores).zip(&staged.inside).enumerate() {
        let sure = if thread && inside != 0.0 {
            model.cut
        } else {
            demote
        };
        let is_content = link.code == 0;
        let content = z >= if is_content { sure } else { promote };
        if content == is_content
            || link.score >= 1.0
            || (link.code == COMMENT && link.score >= model.sure)
        {
            continue;
        }
        // Python's max(-30.0, min(30.0, z)): min keeps 30.0 unless z is smaller.
        let low = if z < 30.0 { z } else { 30.0 };
        let clipped = if low > -30.0 { low } else { -30.0 };
        let p = 1.0 / (1.0 + (-clipped).exp());
        let q = 1.0 - p;
        let most = if q > p { q } else { p };
        let score = if most < model.overruled {
            most
        } else {
            model.overruled
        };
        out.push((i, content, score));
    }
    out
}

/// The links the model overrules on a page gathered by the core's rules (src/rules.rs),
/// whose placements are coded in *labels*' order: [`stage`], [`scores`] and [`decide`] with
/// the model last given (`placement_model`).
pub(crate) fn overrule(
    gathered: &Gathered,
    bits: &[u64],
    labels: &[String; 5],
) -> PyResult<Vec<(usize, bool, f64)>> {
    let shared = MODEL
        .read()
        .map_err(|_| PyRuntimeError::new_err("the model's lock is poisoned"))?
        .clone()
        .ok_or_else(|| PyRuntimeError::new_err("no model: placement_model first"))?;
    let (model, names) = (&shared.0, &shared.1);
    if names.labels != *labels {
        return Err(PyValueError::new_err(
            "the model's labels are not the rules'",
        ));
    }
    if gathered.links.is_empty() || gathered.head.len() != N_HEAD {
        return Err(PyValueError::new_err(
            "no links, or the page's facts are not placement.py's",
        ));
    }
    let staged = stage(gathered);
    let z = scores(model, &staged, bits).map_err(PyValueError::new_err)?;
    Ok(decide(model, &gathered.links, &staged, &z))
}

/// Placement's arrays for one page, read from its Python structures (placement.py
/// `_model_inputs` names them).
struct Inputs<'a, 'py> {
    rules: &'a Bound<'py, PyList>,
    link_keys: Vec<i64>,
    link_para: Vec<i64>,
    anchors: &'a Bound<'py, PyAny>,
    anchor_len: Vec<i64>,
    parent: &'a Bound<'py, PyList>,
    tag: &'a Bound<'py, PyList>,
    own: &'a Bound<'py, PyDict>,
    good: &'a Bound<'py, PyDict>,
    in_links: &'a Bound<'py, PyDict>,
    seq_index: &'a Bound<'py, PyDict>,
    located: &'a Bound<'py, PyList>,
    main_key: i64,
    around: &'a Bound<'py, PyAny>,
    ancestry: &'a Bound<'py, PyList>,
}

fn at<'py>(list: &Bound<'py, PyList>, key: i64) -> PyResult<Bound<'py, PyAny>> {
    let index =
        usize::try_from(key).map_err(|_| PyValueError::new_err(format!("a negative key {key}")))?;
    list.get_item(index)
}

fn get_int(dict: &Bound<'_, PyDict>, key: i64) -> PyResult<i64> {
    Ok(match dict.get_item(key)? {
        Some(value) => value.extract()?,
        None => 0,
    })
}

/// `anchor.count(" ")` (CPython's own count: no UTF-8 copy of the string is made).
pub(crate) fn spaces(anchor: &Bound<'_, PyAny>, space: &Bound<'_, PyString>) -> PyResult<i64> {
    let s = anchor.cast::<PyString>()?;
    // SAFETY: two str objects alive for the call; -1 (an error) is checked.
    let count = unsafe {
        pyo3::ffi::PyUnicode_Count(s.as_ptr(), space.as_ptr(), 0, pyo3::ffi::PY_SSIZE_T_MAX)
    };
    if count < 0 {
        return Err(PyErr::fetch(anchor.py()));
    }
    Ok(count as i64)
}

/// Read what [`stage`] needs: per link its rule, anchor, grandparent, place in the
/// sequence, in main or not, ancestry bits; per distinct paragraph its text facts.
fn gather(
    inputs: &Inputs<'_, '_>,
    names: &Names,
    head: Vec<f64>,
    tail: Vec<f64>,
    first: i64,
    last: i64,
) -> PyResult<(Gathered, Vec<u64>)> {
    let n = inputs.link_keys.len();
    if n == 0 {
        // Python's stage divides by the number of links: placement asks for none without.
        return Err(PyValueError::new_err("no links"));
    }
    if inputs.rules.len() != n
        || inputs.link_para.len() != n
        || inputs.anchor_len.len() != n
        || inputs.anchors.len()? != n
    {
        return Err(PyValueError::new_err("the links' arrays differ in length"));
    }
    let anchors = inputs.anchors.cast::<PyList>().ok();
    let space = PyString::intern(inputs.rules.py(), " ");
    let mut para_index: HashMap<i64, usize> = HashMap::new();
    let mut paras: Vec<Para> = Vec::new();
    let mut links = Vec::with_capacity(n);
    let mut bits = Vec::with_capacity(n);
    for i in 0..n {
        let key = inputs.link_keys[i];
        let rule = inputs.rules.get_item(i)?;
        let rule = rule.cast::<PyTuple>()?;
        let placement = rule.get_item(0)?;
        let placement = placement.cast::<PyString>()?;
        let placement = placement.to_cow()?;
        let code = names
            .labels
            .iter()
            .position(|label| label.as_str() == &*placement)
            .ok_or_else(|| PyKeyError::new_err(placement.to_string()))?;
        let score: f64 = rule.get_item(1)?.extract()?;
        let block: i64 = rule.get_item(2)?.extract()?;
        let p = inputs.link_para[i];
        let para_at = match para_index.get(&p) {
            Some(&at) => at,
            None => {
                let paragraph = p >= 0 && {
                    let tag = at(inputs.tag, p)?;
                    let tag = tag.cast::<PyString>()?;
                    names.paragraphs.contains(&*tag.to_cow()?)
                };
                paras.push(Para {
                    own: get_int(inputs.own, p)?,
                    good: inputs.good.contains(p)?,
                    paragraph,
                    links: get_int(inputs.in_links, p)?,
                });
                para_index.insert(p, paras.len() - 1);
                paras.len() - 1
            }
        };
        let anchor = match anchors {
            Some(list) => list.get_item(i)?,
            None => inputs.anchors.get_item(i)?,
        };
        let up: i64 = at(inputs.parent, key)?.extract()?;
        let grand = if up > 0 {
            at(inputs.parent, up)?.extract()?
        } else {
            0
        };
        let key_obj = key.into_pyobject(inputs.rules.py())?; // one int object for both lookups
        let seq_at = match inputs.seq_index.get_item(&key_obj)? {
            Some(value) => value.extract()?,
            None => -1,
        };
        let in_main = inputs.around.contains(&key_obj)? || {
            let located = at(inputs.located, key)?;
            let top: i64 = if located.is_none() {
                key
            } else {
                located.cast::<PyTuple>()?.get_item(0)?.extract()?
            };
            top == inputs.main_key
        };
        bits.push(at(inputs.ancestry, key)?.extract::<u64>()?);
        links.push(Link {
            code,
            score,
            block,
            para_at,
            anchor_len: inputs.anchor_len[i],
            spaces: spaces(&anchor, &space)?,
            grand,
            at: seq_at,
            in_main,
        });
    }
    let gathered = Gathered {
        links,
        paras,
        n_seq: inputs.seq_index.len() as i64,
        first,
        last,
        head,
        tail,
    };
    Ok((gathered, bits))
}

/// The model's weights and names, once per process (and again when Python's change):
/// pipelines/native.py `_model_config`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn placement_model(
    own: Vec<f64>,
    page: Vec<f64>,
    inter: [f64; 3],
    bits: Vec<f64>,
    bias: f64,
    logits: (f64, f64, f64, f64),
    markup: (usize, usize),
    bounds: (f64, f64),
    labels: [String; 5],
    paragraphs: HashSet<String>,
) {
    let (cut, demote, demote_article, promote) = logits;
    let model = Model {
        own,
        page,
        inter,
        bits,
        bias,
        cut,
        demote,
        demote_article,
        promote,
        markup_article: markup.0,
        markup_forum: markup.1,
        sure: bounds.0,
        overruled: bounds.1,
    };
    let shared = Arc::new((model, Names { labels, paragraphs }));
    match MODEL.write() {
        Ok(mut slot) => *slot = Some(shared),
        Err(poisoned) => *poisoned.into_inner() = Some(shared),
    }
}

type FactsOut<'py> = (
    Vec<Bound<'py, PyTuple>>,
    Vec<f64>,
    Bound<'py, PyTuple>,
    Vec<u64>,
);

/// Placement's per-link stage of one page (placement.py `_model_inputs` gives the
/// arguments): the links the model overrules (index, content or not, score), when
/// *decisions*; and when *facts*, the facts (`LinkFacts`' parts) and the scores.
#[pyfunction]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn placement_links<'py>(
    py: Python<'py>,
    rules: &Bound<'py, PyList>,
    link_keys: Vec<i64>,
    link_para: Vec<i64>,
    anchors: &Bound<'py, PyAny>,
    anchor_len: Vec<i64>,
    parent: &Bound<'py, PyList>,
    tag: &Bound<'py, PyList>,
    texts: (Bound<'py, PyDict>, Bound<'py, PyDict>, Bound<'py, PyDict>),
    seq_index: &Bound<'py, PyDict>,
    located: &Bound<'py, PyList>,
    main: (i64, Bound<'py, PyAny>),
    edges: (i64, i64),
    ancestry: &Bound<'py, PyList>,
    page: (Vec<f64>, Vec<f64>),
    want: (bool, bool),
) -> PyResult<(
    Option<Vec<(usize, bool, f64)>>,
    Option<FactsOut<'py>>,
    Option<Vec<f64>>,
)> {
    let shared = MODEL
        .read()
        .map_err(|_| PyRuntimeError::new_err("the model's lock is poisoned"))?
        .clone()
        .ok_or_else(|| PyRuntimeError::new_err("no model: placement_model first"))?;
    let (model, names) = (&shared.0, &shared.1);
    let (own, good, in_links) = texts;
    let (head, tail) = page;
    let (decisions, facts) = want;
    if head.len() != N_HEAD {
        return Err(PyValueError::new_err(
            "the page's facts are not placement.py's",
        ));
    }
    let inputs = Inputs {
        rules,
        link_keys,
        link_para,
        anchors,
        anchor_len,
        parent,
        tag,
        own: &own,
        good: &good,
        in_links: &in_links,
        seq_index,
        located,
        main_key: main.0,
        around: &main.1,
        ancestry,
    };
    let answer = guarded(|| -> PyResult<_> {
        let (gathered, bits) = gather(&inputs, names, head, tail, edges.0, edges.1)?;
        let staged = stage(&gathered);
        let scored = if decisions || (facts && !model.own.is_empty()) {
            Some(scores(model, &staged, &bits).map_err(PyValueError::new_err)?)
        } else {
            None
        };
        let overruled = match (&scored, decisions) {
            (Some(z), true) => Some(decide(model, &gathered.links, &staged, z)),
            _ => None,
        };
        Ok((staged, bits, overruled, scored))
    })??;
    let (staged, bits, overruled, scored) = answer;
    let out = if facts {
        let rows = staged
            .rows
            .iter()
            .map(|row| PyTuple::new(py, row))
            .collect::<PyResult<Vec<_>>>()?;
        Some((rows, staged.inside, PyTuple::new(py, &staged.page)?, bits))
    } else {
        None
    };
    Ok((overruled, out, if facts { scored } else { None }))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(placement_model, m)?)?;
    m.add_function(wrap_pyfunction!(placement_links, m)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model {
            own: (0..N_OWN).map(|j| 0.1 * j as f64 - 1.0).collect(),
            page: vec![0.5; 12],
            inter: [0.3, -0.2, 0.1],
            bits: vec![1.0, -2.0, 0.25],
            bias: -0.1,
            cut: 0.2,
            demote: -2.0,
            demote_article: -0.8,
            promote: -0.8,
            markup_article: 10,
            markup_forum: 11,
            sure: 0.9,
            overruled: 0.85,
        }
    }

    fn link(code: usize, block: i64, anchor_len: i64) -> Link {
        Link {
            code,
            score: 0.6,
            block,
            anchor_len,
            ..Link::default()
        }
    }

    #[test]
    fn no_links_no_rows_and_a_nan_share() {
        let g = Gathered {
            head: vec![0.0; N_HEAD],
            tail: vec![0.0; 4],
            ..Default::default()
        };
        let staged = stage(&g);
        assert!(staged.rows.is_empty() && staged.page.len() == 12);
        assert!(staged.page[6].is_nan()); // Python divides by zero there: never called so
    }

    #[test]
    fn containers_and_paragraphs_as_python_computes_them() {
        let g = Gathered {
            links: vec![
                link(0, 7, 3),
                link(1, 7, 0),
                Link {
                    at: 4,
                    ..link(2, 9, 10)
                },
            ],
            paras: vec![Para {
                own: 40,
                good: true,
                paragraph: true,
                links: 13,
            }],
            n_seq: 5,
            first: 1,
            last: 3,
            head: vec![0.0; N_HEAD],
            tail: vec![1.0; 4],
        };
        let staged = stage(&g);
        let first = &staged.rows[0];
        assert_eq!(first[..6], [1.0, 0.0, 0.0, 0.0, 0.0, 0.6]);
        assert_eq!(first[7..11], [1.0, 1.0, 13.0 / 40.0, 40f64.ln_1p() / 8.0]);
        assert_eq!(first[17], 2f64.ln_1p() / 5.0);
        assert_eq!(first[19], 0.5);
        assert_eq!(first[20], (3f64.ln_1p() / 5.0 + 0.0) / 2.0);
        assert_eq!(staged.rows[1][16], 1.0);
        assert_eq!(staged.rows[2][12], 1.0);
        assert_eq!(staged.rows[2][13], 4.0 / 5.0);
        assert_eq!(staged.page[7], 3f64.ln_1p() / 8.0);
    }

    #[test]
    fn scores_and_decisions_are_bounded_and_in_order() {
        let m = model();
        let g = Gathered {
            links: vec![link(0, 1, 5), link(2, 1, 5)],
            paras: vec![Para::default()],
            head: vec![0.0; N_HEAD],
            tail: vec![0.0; 4],
            ..Default::default()
        };
        let staged = stage(&g);
        let z = scores(&m, &staged, &[0b101, 0]).unwrap();
        assert_eq!(z.len(), 2);
        let over = decide(&m, &g.links, &staged, &[100.0, -100.0]);
        assert!(over.is_empty()); // content stays content, sidebar stays boilerplate
        let over = decide(&m, &g.links, &staged, &[-100.0, 100.0]);
        assert_eq!(over, [(0, false, 0.85), (1, true, 0.85)]);
        assert!(scores(
            &Model {
                own: vec![],
                ..model()
            },
            &staged,
            &[0, 0]
        )
        .is_err());
    }
}
