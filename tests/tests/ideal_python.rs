//! Cross-check of the Rust `ideal()` against an independent computation of the same shares,
//! on the scenario files in `tests/scenarios/`, and of the simulator against both.
//!
//! The expected numbers below were computed once by the project's first model of fair shares:
//! a small Python program written before the Rust code (standard library only, water-filling
//! per node with caps and weights, as `throttle_tests::ideal` does), run on the four files.
//! That program is not part of this repository: its output is pinned here verbatim, so this
//! test needs neither Python nor the program, and `throttle_tests::ideal` is the executable
//! specification from now on. A change to the scenario files needs new figures from an
//! independent computation (by hand, or a model of your own), not from `ideal()` itself.

extern crate alloc;

use alloc::collections::BTreeMap;
use core::time::Duration;

use throttle_core::{Config, Limits, Tier};
use throttle_tests::sim::{Demand, LeafSpec, Scenario};

use throttle_tests::ideal::{ideal, IdealNode};

/// The Python model's output, verbatim (one line per scenario).
const PYTHON: &[(&str, &str)] = &[
    (
        include_str!("../scenarios/three_level.json"),
        r#"{"scenario": "three_level.json", "ideal": {"A1": 26214400.0, "A2": 5242880, "B1": 18350080.0, "B2": 18350080.0, "B3": 36700160.0}}"#,
    ),
    (
        include_str!("../scenarios/weighted_groups.json"),
        r#"{"scenario": "weighted_groups.json", "ideal": {"x1": 20971520.0, "y1": 6990506.666666667, "y2": 6990506.666666667, "y3": 6990506.666666667, "t2c1": 10485760.0, "t2c2": 10485760.0}}"#,
    ),
    (
        include_str!("../scenarios/multi_tier.json"),
        r#"{"scenario": "multi_tier.json", "ideal": {"a": 946176.0, "b": 102400, "c": 524288.0, "d": 1572864.0, "e": 1572864.0, "f": 524288}}"#,
    ),
    (
        include_str!("../scenarios/deep_caps.json"),
        r#"{"scenario": "deep_caps.json", "ideal": {"p1a": 5242880.0, "p1b": 2097152, "p2a": 0.0, "q1": 349525.3333333333, "q2": 699050.6666666666, "solo": 4096}}"#,
    ),
];

// ---- a minimal JSON reader (objects, arrays, numbers, strings, true/false/null) ----

#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    fn get(&self, k: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.get(k).filter(|v| **v != Json::Null),
            _ => None,
        }
    }
    fn num(&self) -> f64 {
        match self {
            Json::Num(x) => *x,
            other => panic!("not a number: {other:?}"),
        }
    }
    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }
    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(v) => v,
            other => panic!("not an array: {other:?}"),
        }
    }
}

fn parse(s: &str) -> Json {
    let b = s.as_bytes();
    let mut i = 0;
    let v = value(b, &mut i);
    ws(b, &mut i);
    assert_eq!(i, b.len(), "trailing characters");
    v
}

fn ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

fn value(b: &[u8], i: &mut usize) -> Json {
    ws(b, i);
    match b[*i] {
        b'{' => {
            *i += 1;
            let mut m = BTreeMap::new();
            loop {
                ws(b, i);
                if b[*i] == b'}' {
                    *i += 1;
                    return Json::Obj(m);
                }
                let Json::Str(k) = value(b, i) else {
                    panic!("object key at {i}")
                };
                ws(b, i);
                assert_eq!(b[*i], b':');
                *i += 1;
                m.insert(k, value(b, i));
                ws(b, i);
                if b[*i] == b',' {
                    *i += 1;
                }
            }
        }
        b'[' => {
            *i += 1;
            let mut v = Vec::new();
            loop {
                ws(b, i);
                if b[*i] == b']' {
                    *i += 1;
                    return Json::Arr(v);
                }
                v.push(value(b, i));
                ws(b, i);
                if b[*i] == b',' {
                    *i += 1;
                }
            }
        }
        b'"' => {
            let start = *i + 1;
            *i = start;
            while b[*i] != b'"' {
                *i += 1;
            }
            *i += 1;
            Json::Str(String::from_utf8(b[start..*i - 1].to_vec()).unwrap())
        }
        b't' | b'f' | b'n' => {
            for (word, v) in [
                ("true", Json::Bool(true)),
                ("false", Json::Bool(false)),
                ("null", Json::Null),
            ] {
                if b[*i..].starts_with(word.as_bytes()) {
                    *i += word.len();
                    return v;
                }
            }
            panic!("bad literal at {i}")
        }
        _ => {
            let start = *i;
            while *i < b.len() && matches!(b[*i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                *i += 1;
            }
            Json::Num(
                core::str::from_utf8(&b[start..*i])
                    .unwrap()
                    .parse()
                    .unwrap(),
            )
        }
    }
}

/// A scenario file's nodes: `(id, parent index, tiers as (rate, burst), weight, leaf)`.
type FileNode = (String, Option<usize>, Vec<(u64, u64)>, u16, bool);

fn nodes_of(file: &Json) -> Vec<FileNode> {
    let mut out: Vec<FileNode> = Vec::new();
    for n in file.get("nodes").unwrap().arr() {
        let id = n.get("id").unwrap().str().to_string();
        let parent = n.get("parent").map(|p| {
            out.iter()
                .position(|o| o.0 == p.str())
                .expect("parent first")
        });
        let tiers = match (n.get("tiers"), n.get("rate")) {
            (Some(t), _) => t
                .arr()
                .iter()
                .map(|rb| (rb.arr()[0].num() as u64, rb.arr()[1].num() as u64))
                .collect(),
            (None, Some(r)) => vec![(r.num() as u64, n.get("burst").map_or(0, |b| b.num() as u64))],
            (None, None) => Vec::new(),
        };
        let weight = n.get("weight").map_or(1, |w| w.num() as u16);
        let leaf = n.get("leaf") == Some(&Json::Bool(true));
        out.push((id, parent, tiers, weight, leaf));
    }
    out
}

#[test]
fn ideal_port_matches_python_model() {
    for (file, expected) in PYTHON {
        let file = parse(file);
        let expected = parse(expected);
        let nodes = nodes_of(&file);
        let input: Vec<IdealNode> = nodes
            .iter()
            .map(|(_, parent, tiers, weight, leaf)| IdealNode {
                parent: *parent,
                cap: tiers
                    .iter()
                    .map(|t| t.0 as f64)
                    .fold(f64::INFINITY, f64::min),
                weight: f64::from(*weight),
                leaf: *leaf,
            })
            .collect();
        let got = ideal(&input);
        let Some(Json::Obj(want)) = expected.get("ideal") else {
            panic!("bad expected output")
        };
        assert_eq!(want.len(), nodes.iter().filter(|n| n.4).count());
        for (id, rate) in want {
            let k = nodes.iter().position(|n| &n.0 == id).unwrap();
            let (w, g) = (rate.num(), got[k]);
            assert!(
                (w - g).abs() <= 1e-6 * w.max(1.0),
                "{}: {id} python {w} rust {g}",
                expected.get("scenario").unwrap().str()
            );
        }
    }
}

/// The simulator on the same files reaches the Python model's rates. Every explicit burst in
/// the files covers one round of its tier's rate (`rate × 10 ms`; `multi_tier.json`'s g3 had a
/// zero-burst tier and got an eighth of its share: a bucket cannot keep what it earns while
/// its parent serves others, see `throttle_core::Config`). The Python model ignores bursts, so
/// the Python output below is unchanged by that (leaves with unbounded
/// demand; 10 s, measured after the first second).
#[test]
fn scenario_files_simulated_reach_python_ideal() {
    let mut failures = Vec::new();
    for (file, expected) in PYTHON {
        let file = parse(file);
        let expected = parse(expected);
        let name = expected.get("scenario").unwrap().str();
        let mut sc = Scenario::new(name, Config::DEFAULT);
        for (id, parent, tiers, weight, leaf) in nodes_of(&file) {
            let ts: Vec<Tier> = tiers
                .iter()
                .map(|&(r, b)| Tier::per_second(r).with_burst(b))
                .collect();
            let limits = Limits::from_tiers(&ts).unwrap();
            if leaf {
                sc.leaf(
                    id,
                    parent,
                    limits,
                    weight,
                    LeafSpec::new(Demand::Saturating),
                );
            } else {
                sc.node(id, parent, limits, weight);
            }
        }
        sc.duration = Duration::from_secs(10);
        sc.warmup = Duration::from_secs(1);
        let r = sc.run();
        r.assert_ok();
        let Some(Json::Obj(want)) = expected.get("ideal") else {
            panic!()
        };
        let root_rate = r
            .nodes
            .iter()
            .map(|n| n.ideal.unwrap_or(0.0))
            .fold(0.0, f64::max);
        for (id, rate) in want {
            let got = r.leaf(id).rate;
            // 2 % of the ideal rate, or 0.5 % of the largest node's rate for small shares
            let tol = (0.02 * rate.num()).max(0.005 * root_rate);
            if (got - rate.num()).abs() > tol {
                failures.push(format!(
                    "{name}: {id} simulated {got:.1} python {}\n{r}",
                    rate.num()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
