//! Where the service map puts its systems and call counts, so that it stays
//! legible with dozens of systems: a layered layout by call direction
//! (callers left, callees right; a cycle is cut at the call that closes it),
//! systems ordered within a column by the rows of their callers (fewer
//! crossings), and each edge's label placed where it touches no other label
//! and no system, the edge drawn through it. Pure geometry; `svg` draws it.

use std::collections::BTreeMap;

/// A system's box: its centre.
pub const NODE_W: f64 = 130.0;
pub const NODE_H: f64 = 34.0;
const COLUMN_GAP: f64 = 150.0;
const ROW_GAP: f64 = 36.0;
const MARGIN: f64 = 20.0;
pub const LABEL_H: f64 = 16.0;

/// An axis-aligned rectangle: left, top, width, height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    fn around(cx: f64, cy: f64, w: f64, h: f64) -> Self {
        Rect {
            x: cx - w / 2.0,
            y: cy - h / 2.0,
            w,
            h,
        }
    }

    /// Do the two overlap (touching edges do not count)?
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }

    pub fn centre(&self) -> (f64, f64) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }
}

/// The layout: a box per system (in `nodes` order), a label box per edge
/// (in `edges` order), and the size of the drawing.
#[derive(Debug, Clone)]
pub struct Layout {
    pub nodes: Vec<Rect>,
    pub labels: Vec<Rect>,
    /// Each system's column, 0 for the leftmost.
    pub layers: Vec<usize>,
    pub width: f64,
    pub height: f64,
}

/// The width a label of `text` takes.
pub fn label_width(text: &str) -> f64 {
    text.chars().count() as f64 * 8.0 + 10.0
}

/// Lays out `nodes` and `edges` (indexes into `nodes`, with each edge's
/// label text).
pub fn layout(nodes: usize, edges: &[(usize, usize, String)]) -> Layout {
    let layers = layers(nodes, edges);
    let columns = layers.iter().copied().max().map_or(0, |m| m + 1);
    // Order each column by the mean row of its callers, column by column.
    let mut rows: Vec<f64> = vec![0.0; nodes];
    let mut by_column: Vec<Vec<usize>> = vec![Vec::new(); columns];
    for (node, layer) in layers.iter().enumerate() {
        by_column[*layer].push(node);
    }
    for column in by_column.iter_mut() {
        let key = |n: usize| {
            let callers: Vec<f64> = edges
                .iter()
                .filter(|(a, b, _)| *b == n && layers[*a] < layers[n])
                .map(|(a, _, _)| rows[*a])
                .collect();
            if callers.is_empty() {
                f64::MAX
            } else {
                callers.iter().sum::<f64>() / callers.len() as f64
            }
        };
        let mut keyed: Vec<(f64, usize)> = column.iter().map(|n| (key(*n), *n)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *column = keyed.into_iter().map(|(_, n)| n).collect();
        for (row, n) in column.iter().enumerate() {
            rows[*n] = row as f64;
        }
    }
    let tallest = by_column.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let column_h = tallest as f64 * (NODE_H + ROW_GAP);
    let mut boxes = vec![Rect::around(0.0, 0.0, NODE_W, NODE_H); nodes];
    for (c, column) in by_column.iter().enumerate() {
        let x = MARGIN + NODE_W / 2.0 + c as f64 * (NODE_W + COLUMN_GAP);
        // Centre short columns on the tallest.
        let top = MARGIN + (column_h - column.len() as f64 * (NODE_H + ROW_GAP)) / 2.0;
        for (row, n) in column.iter().enumerate() {
            let y = top + row as f64 * (NODE_H + ROW_GAP) + NODE_H / 2.0;
            boxes[*n] = Rect::around(x, y, NODE_W, NODE_H);
        }
    }
    // Labels: at the middle of their edge if free, else the nearest free
    // place above or below it, checked against every system and label.
    let mut labels: Vec<Rect> = Vec::with_capacity(edges.len());
    for (a, b, text) in edges {
        let ((ax, ay), (bx, by)) = (boxes[*a].centre(), boxes[*b].centre());
        let (mx, my) = if layers[*a] >= layers[*b] {
            // A call back (one that closes a cycle): under both systems.
            ((ax + bx) / 2.0, ay.max(by) + NODE_H + ROW_GAP / 2.0)
        } else {
            ((ax + bx) / 2.0, (ay + by) / 2.0)
        };
        let w = label_width(text);
        let mut step = 0usize;
        let rect = loop {
            let offset = (step.div_ceil(2) as f64) * (LABEL_H + 2.0);
            let dy = if step % 2 == 1 { -offset } else { offset };
            let candidate = Rect::around(mx, my + dy, w, LABEL_H);
            let free = candidate.y >= 0.0
                && !boxes.iter().any(|n| n.overlaps(&candidate))
                && !labels.iter().any(|l| l.overlaps(&candidate));
            if free {
                break candidate;
            }
            step += 1;
        };
        labels.push(rect);
    }
    let right = boxes
        .iter()
        .chain(&labels)
        .map(|r| r.x + r.w)
        .fold(0.0, f64::max);
    let bottom = boxes
        .iter()
        .chain(&labels)
        .map(|r| r.y + r.h)
        .fold(0.0, f64::max);
    Layout {
        nodes: boxes,
        labels,
        layers,
        width: (right + MARGIN).max(320.0),
        height: (bottom + MARGIN).max(120.0),
    }
}

/// Each node's column: the longest chain of calls leading to it, after
/// cutting the calls that close a cycle (found by a depth-first walk in
/// node order, so the result does not depend on the edges' order).
fn layers(nodes: usize, edges: &[(usize, usize, String)]) -> Vec<usize> {
    let mut out: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (a, b, _) in edges {
        if a != b {
            out.entry(*a).or_default().push(*b);
        }
    }
    for targets in out.values_mut() {
        targets.sort_unstable();
        targets.dedup();
    }
    // 0 unseen, 1 on the walk's path, 2 done.
    let mut state = vec![0u8; nodes];
    let mut kept: Vec<(usize, usize)> = Vec::new();
    for start in 0..nodes {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some((node, next)) = stack.pop() {
            let targets = out.get(&node).map_or(&[][..], Vec::as_slice);
            if let Some(&t) = targets.get(next) {
                stack.push((node, next + 1));
                match state[t] {
                    0 => {
                        kept.push((node, t));
                        state[t] = 1;
                        stack.push((t, 0));
                    }
                    2 => kept.push((node, t)),
                    _ => {} // closes a cycle: cut
                }
            } else {
                state[node] = 2;
            }
        }
    }
    // Longest path on what is left (a DAG): relax in rounds.
    let mut layer = vec![0usize; nodes];
    for _ in 0..nodes {
        let mut changed = false;
        for (a, b) in &kept {
            if layer[*b] < layer[*a] + 1 {
                layer[*b] = layer[*a] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    layer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(a: usize, b: usize, calls: u64) -> (usize, usize, String) {
        (a, b, calls.to_string())
    }

    #[test]
    fn callers_stand_left_of_their_callees() {
        // crm -> middleware -> erp -> mes, and crm -> erp directly.
        let l = layout(
            4,
            &[edge(0, 1, 10), edge(1, 2, 9), edge(2, 3, 8), edge(0, 2, 1)],
        );
        assert_eq!(l.layers, [0, 1, 2, 3]);
        for w in l.nodes.windows(2) {
            assert!(w[0].x < w[1].x);
        }
    }

    #[test]
    fn a_cycle_is_cut_and_still_drawn() {
        let l = layout(3, &[edge(0, 1, 1), edge(1, 2, 1), edge(2, 0, 1)]);
        assert_eq!(l.layers, [0, 1, 2]);
        assert_eq!(l.labels.len(), 3);
    }

    /// Four systems used to put four edge labels on top of each other;
    /// with thirty and every label as wide as a large count, none touches
    /// another label or a system.
    #[test]
    fn with_thirty_systems_no_label_overlaps_another_or_a_system() {
        let n = 30;
        let mut edges = Vec::new();
        for a in 0..n {
            for k in [1, 2, 5, 11] {
                let b = (a * 7 + k) % n;
                if a != b {
                    edges.push((a, b, "1,234,567".to_string()));
                }
            }
        }
        let l = layout(n, &edges);
        for (i, a) in l.labels.iter().enumerate() {
            for b in &l.labels[i + 1..] {
                assert!(!a.overlaps(b), "{a:?} {b:?}");
            }
            for node in &l.nodes {
                assert!(!a.overlaps(node), "{a:?} {node:?}");
            }
            assert!(a.x >= 0.0 && a.y >= 0.0 && a.x + a.w <= l.width && a.y + a.h <= l.height);
        }
        for (i, a) in l.nodes.iter().enumerate() {
            for b in &l.nodes[i + 1..] {
                assert!(!a.overlaps(b));
            }
        }
    }

    #[test]
    fn the_layout_depends_on_the_systems_not_on_the_order_of_calls() {
        let mut edges = vec![edge(0, 1, 1), edge(1, 2, 1), edge(2, 0, 1), edge(0, 3, 1)];
        let a = layout(4, &edges);
        edges.reverse();
        let b = layout(4, &edges);
        assert_eq!(a.layers, b.layers);
        assert_eq!(a.nodes, b.nodes);
    }
}
