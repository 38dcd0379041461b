//! The fairness oracle: long-run rates under hierarchical weighted max-min sharing.
//!
//! The project's reference model of fair shares, complete here (HTB-like semantics; it was
//! first written as a small Python program kept outside this repository, whose output
//! `tests/ideal_python.rs` pins): each node splits what it gets
//! among its busy children in proportion to their weights (water-filling); a child never gets
//! more than its own cap or than its subtree can use, and what it cannot use goes to its
//! siblings. Leaves have unbounded demand unless capped (give a leaf cap `0.0` to mark it
//! idle). Multi-tier nodes use their smallest long-run rate. `f64` is fine here: this is a test
//! oracle, compared with tolerances, and the Python original uses floats too.

/// One node of the tree given to [`ideal`]. Nodes refer to their parent by index; a parent
/// must come before its children.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IdealNode {
    /// Index of the parent in the slice, `None` for a root.
    pub parent: Option<usize>,
    /// Long-run cap in tokens per second; `f64::INFINITY` when unlimited, `0.0` when paused.
    pub cap: f64,
    /// Share among busy siblings (≥ 1).
    pub weight: f64,
    /// True for a leaf (a consumer with unbounded demand up to its cap).
    pub leaf: bool,
}

/// Tolerance of the water-filling loop (the same as the Python model `ideal_python.rs` checks
/// against).
const EPS: f64 = 1e-9;

/// The ideal long-run rate of every node (a leaf: what it gets; an interior node: the sum of
/// its leaves), in the same units as the caps. Roots get what they can use.
pub fn ideal(nodes: &[IdealNode]) -> Vec<f64> {
    let mut kids: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut roots = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        match n.parent {
            Some(p) => kids[p].push(i),
            None => roots.push(i),
        }
    }
    // usable(i): the most a subtree can consume; children come after parents, so a reverse
    // sweep sees every child first.
    let mut usable = vec![0.0; nodes.len()];
    for i in (0..nodes.len()).rev() {
        usable[i] = if nodes[i].leaf {
            nodes[i].cap
        } else {
            nodes[i].cap.min(kids[i].iter().map(|&c| usable[c]).sum())
        };
    }
    let mut out = vec![0.0; nodes.len()];
    for r in roots {
        split(r, f64::INFINITY, nodes, &kids, &usable, &mut out);
    }
    // interior nodes report the sum of their leaves
    for i in (0..nodes.len()).rev() {
        if !nodes[i].leaf {
            out[i] = kids[i].iter().map(|&c| out[c]).sum();
        }
    }
    out
}

fn split(
    i: usize,
    amount: f64,
    nodes: &[IdealNode],
    kids: &[Vec<usize>],
    usable: &[f64],
    out: &mut [f64],
) {
    let amount = amount.min(nodes[i].cap);
    if nodes[i].leaf {
        out[i] = amount;
        return;
    }
    let cs = &kids[i];
    let mut alloc = vec![0.0; cs.len()];
    let mut left = amount;
    let mut active: Vec<usize> = (0..cs.len()).filter(|&k| usable[cs[k]] > 0.0).collect();
    while !active.is_empty() && left > EPS {
        let wsum: f64 = active.iter().map(|&k| nodes[cs[k]].weight).sum();
        let share = |k: usize| left * nodes[cs[k]].weight / wsum;
        let capped: Vec<usize> = active
            .iter()
            .copied()
            .filter(|&k| alloc[k] + share(k) >= usable[cs[k]] - EPS)
            .collect();
        if capped.is_empty() {
            for &k in &active {
                alloc[k] += share(k);
            }
            break;
        }
        for k in capped {
            left -= usable[cs[k]] - alloc[k];
            alloc[k] = usable[cs[k]];
            active.retain(|&a| a != k);
        }
    }
    for (k, &c) in cs.iter().enumerate() {
        split(c, alloc[k], nodes, kids, usable, out);
    }
}

/// Jain's fairness index of `xs`: `(Σx)² / (n·Σx²)`, 1 when all are equal, `1/n` when one
/// takes everything. `None` for an empty slice or all zeros.
pub fn jain(xs: &[f64]) -> Option<f64> {
    let s: f64 = xs.iter().sum();
    let q: f64 = xs.iter().map(|x| x * x).sum();
    (!xs.is_empty() && q > 0.0).then(|| s * s / (xs.len() as f64 * q))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(parent: Option<usize>, cap: f64, weight: f64, leaf: bool) -> IdealNode {
        IdealNode {
            parent,
            cap,
            weight,
            leaf,
        }
    }

    #[test]
    fn capped_child_leaves_rest_to_siblings() {
        let inf = f64::INFINITY;
        let t = [
            n(None, 10.0, 1.0, false),
            n(Some(0), 1.0, 1.0, true),
            n(Some(0), inf, 1.0, true),
            n(Some(0), inf, 2.0, true),
        ];
        let r = ideal(&t);
        assert!((r[1] - 1.0).abs() < 1e-9);
        assert!((r[2] - 3.0).abs() < 1e-9);
        assert!((r[3] - 6.0).abs() < 1e-9);
        assert!((r[0] - 10.0).abs() < 1e-9);
    }

    #[test]
    fn jain_of_equal_is_one() {
        assert_eq!(jain(&[2.0, 2.0, 2.0]), Some(1.0));
        assert_eq!(jain(&[]), None);
        assert!((jain(&[1.0, 0.0]).unwrap() - 0.5).abs() < 1e-12);
    }
}
