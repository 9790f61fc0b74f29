//! Charts drawn on the server as SVG text: sparklines, bar charts, the
//! journey timeline and the service map. Every label passes through [`esc`];
//! the templates insert the finished SVG as markup.

use std::fmt::Write;

/// Escapes text for SVG/HTML content and attribute values.
pub fn esc(text: &str) -> String {
    super::escape::html(text)
}

/// A colour per system, stable across pages: the usual four by name, any
/// other by a hash of its name.
pub fn colour(system: &str) -> &'static str {
    const PALETTE: [&str; 8] = [
        "#2f6fb3", "#c26a00", "#2e8b57", "#8a4fb8", "#b8860b", "#1f8a8a", "#a0522d", "#5a6b7b",
    ];
    let s = system.to_ascii_lowercase();
    if s.starts_with("mes") {
        PALETTE[0]
    } else if s.starts_with("erp") {
        PALETTE[1]
    } else if s.starts_with("crm") {
        PALETTE[2]
    } else if s.contains("middleware") || s.contains("integration") {
        PALETTE[3]
    } else {
        PALETTE[4 + (domain::hash::fnv1a(&[s.as_bytes()]) % 4) as usize]
    }
}

/// Two series as a sparkline: `a` as a line (starts), `b` as red bars
/// (breaches) on the same buckets, each scaled to its own maximum.
pub fn sparkline(a: &[u64], b: &[u64], title: &str) -> String {
    let (w, h) = (240.0, 48.0);
    let n = a.len().max(b.len()).max(1);
    let step = w / n as f64;
    let max_a = a.iter().copied().max().unwrap_or(0).max(1) as f64;
    let max_b = b.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut out = format!(
        r#"<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    for (i, v) in b.iter().enumerate() {
        if *v > 0 {
            let bh = (*v as f64 / max_b) * (h * 0.45);
            let _ = write!(
                out,
                r#"<rect class="spark-breach" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{v} breaches</title></rect>"#,
                i as f64 * step + 1.0,
                h - bh,
                (step - 2.0).max(1.0),
                bh
            );
        }
    }
    let points: Vec<String> = a
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step + step / 2.0,
                h - 3.0 - (*v as f64 / max_a) * (h - 8.0)
            )
        })
        .collect();
    let _ = write!(
        out,
        r#"<polyline class="spark-line" points="{}" /></svg>"#,
        points.join(" ")
    );
    out
}

/// An error budget's burn-down: the percent left after each step as a
/// line, from 100 % down (below 0 when overspent), with the 0 % line.
pub fn burn_down(points: &[f64], title: &str) -> String {
    let (w, h) = (480.0, 120.0);
    let top = points.iter().copied().fold(100.0f64, f64::max);
    let bottom = points.iter().copied().fold(0.0f64, f64::min);
    let span = (top - bottom).max(1.0);
    let y = |v: f64| 6.0 + (top - v) / span * (h - 12.0);
    let n = points.len().max(2) - 1;
    let x = |i: usize| 4.0 + i as f64 * (w - 8.0) / n as f64;
    let mut out = format!(
        r#"<svg class="burn-down" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    let _ = write!(
        out,
        r#"<line class="burn-zero" x1="0" x2="{w}" y1="{:.1}" y2="{:.1}" />"#,
        y(0.0),
        y(0.0)
    );
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect();
    let _ = write!(
        out,
        r#"<polyline class="burn-line" points="{}" /></svg>"#,
        line.join(" ")
    );
    out
}

/// One labelled horizontal bar per row, scaled to the largest value.
pub fn hbars(rows: &[(String, u64, String)], class: &str) -> String {
    let row_h = 30.0;
    let label_w = 330.0;
    let w = 800.0;
    let h = row_h * rows.len().max(1) as f64 + 4.0;
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1) as f64;
    let mut out = format!(
        r#"<svg class="{class}" viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMinYMin meet" role="img">"#
    );
    for (i, (label, value, note)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 2.0;
        let bw = ((*value as f64 / max) * (w - label_w - 130.0)).max(1.0);
        let _ = write!(
            out,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect class="bar" x="{label_w}" y="{:.1}" width="{bw:.1}" height="{:.1}"><title>{}: {value}</title></rect><text class="value" x="{:.1}" y="{:.1}">{}</text>"#,
            label_w - 8.0,
            y + row_h * 0.62,
            esc(label),
            y + 3.0,
            row_h - 8.0,
            esc(label),
            label_w + bw + 6.0,
            y + row_h * 0.62,
            esc(note)
        );
    }
    out.push_str("</svg>");
    out
}

/// Vertical bars with a label under each (a histogram's bins).
pub fn columns(bins: &[(String, u64)], title: &str) -> String {
    let (w, h) = (640.0, 170.0);
    let (top, bottom) = (14.0, 36.0);
    let n = bins.len().max(1);
    let step = (w - 10.0) / n as f64;
    let max = bins.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let mut out = format!(
        r#"<svg class="hist" viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMinYMin meet" role="img" aria-label="{}"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    for (i, (label, v)) in bins.iter().enumerate() {
        let x = 5.0 + i as f64 * step;
        let bh = (*v as f64 / max) * (h - top - bottom);
        let _ = write!(
            out,
            r#"<rect class="bar" x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}"><title>{}: {v}</title></rect>"#,
            x + 2.0,
            h - bottom - bh,
            (step - 4.0).max(1.0),
            esc(label)
        );
        if *v > 0 {
            let _ = write!(
                out,
                r#"<text class="value" x="{:.1}" y="{:.1}" text-anchor="middle">{v}</text>"#,
                x + step / 2.0,
                h - bottom - bh - 3.0
            );
        }
        let _ = write!(
            out,
            r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x + step / 2.0,
            h - bottom + 16.0,
            esc(label)
        );
    }
    out.push_str("</svg>");
    out
}

/// A mark on the journey timeline.
pub struct Mark {
    pub lane: String,
    pub start_ns: u64,
    /// 0 for an event (drawn as a diamond).
    pub duration_ns: u64,
    pub label: String,
    /// `ok`, `error` or `retry`.
    pub state: &'static str,
    pub href: Option<String>,
}

/// One swimlane per system, spans as bars and events as diamonds, on one
/// time axis from the first to the last mark.
pub fn timeline(marks: &[Mark]) -> String {
    let mut lanes: Vec<&str> = Vec::new();
    for m in marks {
        if !lanes.contains(&m.lane.as_str()) {
            lanes.push(&m.lane);
        }
    }
    let (w, lane_h, label_w, axis_h) = (1100.0, 34.0, 130.0, 26.0);
    let h = lane_h * lanes.len().max(1) as f64 + axis_h;
    let t0 = marks.iter().map(|m| m.start_ns).min().unwrap_or(0);
    let t1 = marks
        .iter()
        .map(|m| m.start_ns.saturating_add(m.duration_ns))
        .max()
        .unwrap_or(0)
        .max(t0.saturating_add(1));
    let span = (t1 - t0) as f64;
    let plot_w = w - label_w - 12.0;
    let x = |t: u64| label_w + ((t - t0) as f64 / span) * plot_w;
    let mut out = format!(
        r#"<svg class="timeline" viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMinYMin meet" role="img" aria-label="journey timeline">"#
    );
    for (i, lane) in lanes.iter().enumerate() {
        let y = i as f64 * lane_h;
        let _ = write!(
            out,
            r#"<rect class="lane{}" x="0" y="{y:.1}" width="{w}" height="{lane_h}"/><text class="lane-label" x="8" y="{:.1}" fill="{}">{}</text>"#,
            i % 2,
            y + lane_h * 0.62,
            colour(lane),
            esc(lane)
        );
    }
    for m in marks {
        let lane = lanes.iter().position(|l| *l == m.lane).unwrap_or(0);
        let y = lane as f64 * lane_h;
        let title = format!("{} ({})", m.label, m.state);
        let shape = if m.duration_ns == 0 {
            let cx = x(m.start_ns);
            let cy = y + lane_h / 2.0;
            format!(
                r#"<path class="mark ev {}" d="M{cx:.1} {:.1} L{:.1} {cy:.1} L{cx:.1} {:.1} L{:.1} {cy:.1} Z" fill="{}"><title>{}</title></path>"#,
                m.state,
                cy - 8.0,
                cx + 8.0,
                cy + 8.0,
                cx - 8.0,
                colour(&m.lane),
                esc(&title)
            )
        } else {
            let x0 = x(m.start_ns);
            let bw = (x(m.start_ns.saturating_add(m.duration_ns)) - x0).max(3.0);
            format!(
                r#"<rect class="mark span {}" x="{x0:.1}" y="{:.1}" width="{bw:.1}" height="{:.1}" fill="{}"><title>{}</title></rect>"#,
                m.state,
                y + 8.0,
                lane_h - 16.0,
                colour(&m.lane),
                esc(&title)
            )
        };
        match &m.href {
            Some(href) => {
                let _ = write!(out, r#"<a href="{}">{shape}</a>"#, esc(href));
            }
            None => out.push_str(&shape),
        }
    }
    let axis_y = lanes.len().max(1) as f64 * lane_h;
    for i in 0..=4 {
        let t = t0 + ((t1 - t0) as f64 * i as f64 / 4.0) as u64;
        let _ = write!(
            out,
            r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="{}">{}</text>"#,
            x(t),
            axis_y + 17.0,
            match i {
                0 => "start",
                4 => "end",
                _ => "middle",
            },
            esc(&super::fmt::time(t))
        );
    }
    out.push_str("</svg>");
    out
}

/// The service map: systems in columns by call direction (callers left),
/// an arrow per caller -> callee through its call count, red when some
/// calls failed; no label covers another or a system (`map_layout`).
pub fn service_map(nodes: &[String], edges: &[(String, String, u64, u64)]) -> String {
    use super::map_layout::{layout, NODE_H, NODE_W};

    let index = |name: &str| nodes.iter().position(|n| n == name);
    let drawn: Vec<(usize, usize, String, &str, &str, u64, u64)> = edges
        .iter()
        .filter_map(|(from, to, calls, errors)| {
            Some((
                index(from)?,
                index(to)?,
                super::fmt::count(*calls),
                from.as_str(),
                to.as_str(),
                *calls,
                *errors,
            ))
        })
        .collect();
    let plan: Vec<(usize, usize, String)> = drawn.iter().map(|d| (d.0, d.1, d.2.clone())).collect();
    let l = layout(nodes.len(), &plan);
    let (w, h) = (l.width.ceil(), l.height.ceil());
    let mut out = format!(
        r##"<svg class="map" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="service map"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="#556"/></marker></defs>"##
    );
    for ((a, b, text, from, to, calls, errors), label) in drawn.iter().zip(&l.labels) {
        let ((ax, ay), (bx, by)) = (l.nodes[*a].centre(), l.nodes[*b].centre());
        let (lx, ly) = label.centre();
        // A forward call leaves its caller on the right and enters its
        // callee on the left; a call back leaves and enters from below.
        let d = if l.layers[*a] < l.layers[*b] {
            let (sx, ex) = (ax + NODE_W / 2.0, bx - NODE_W / 2.0);
            format!(
                "M{sx:.1} {ay:.1} C{:.1} {ay:.1} {:.1} {ly:.1} {lx:.1} {ly:.1} S{:.1} {by:.1} {ex:.1} {by:.1}",
                sx + 40.0,
                lx - 40.0,
                ex - 40.0
            )
        } else {
            let (sy, ey) = (ay + NODE_H / 2.0, by + NODE_H / 2.0);
            format!(
                "M{ax:.1} {sy:.1} C{ax:.1} {:.1} {:.1} {ly:.1} {lx:.1} {ly:.1} S{bx:.1} {:.1} {bx:.1} {ey:.1}",
                sy + 30.0,
                lx + 40.0,
                ey + 30.0
            )
        };
        let class = if *errors > 0 { "edge err" } else { "edge" };
        let _ = write!(
            out,
            r#"<path class="{class}" d="{d}" marker-end="url(#arrow)"><title>{} → {}: {calls} calls, {errors} failed</title></path>"#,
            esc(from),
            esc(to),
        );
        let _ = write!(
            out,
            r#"<rect class="edge-label-bg" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="3"/><text class="edge-label" x="{lx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            label.x,
            label.y,
            label.w,
            label.h,
            ly + 4.5,
            esc(text)
        );
    }
    for (name, rect) in nodes.iter().zip(&l.nodes) {
        let (x, y) = rect.centre();
        let _ = write!(
            out,
            r#"<g class="node"><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="8" fill="{}"><title>{}</title></rect><text x="{x:.1}" y="{:.1}" text-anchor="middle" textLength="{}" lengthAdjust="spacingAndGlyphs">{}</text></g>"#,
            rect.x,
            rect.y,
            rect.w,
            rect.h,
            colour(name),
            esc(name),
            y + 4.5,
            (name.chars().count() * 8).min(NODE_W as usize - 12),
            esc(name)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let svg = hbars(&[("<script>".into(), 3, "x\"y".into())], "funnel");
        assert!(svg.contains("&#60;script&#62;"), "{svg}");
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("x&#34;y"), "{svg}");
        let svg = hbars(&[("a\u{202e}b\u{0}".into(), 3, "x".into())], "funnel");
        assert!(
            !svg.contains('\u{202e}') && !svg.contains('\u{0}'),
            "{svg:?}"
        );
        assert!(svg.contains(r"a\u{202e}b\u{0}"), "{svg}");
    }

    #[test]
    fn a_timeline_at_the_end_of_time_is_drawn_without_overflow() {
        let mark = |start_ns, duration_ns| Mark {
            lane: "mes".into(),
            start_ns,
            duration_ns,
            label: "x".into(),
            state: "ok",
            href: None,
        };
        let svg = timeline(&[mark(u64::MAX, u64::MAX), mark(u64::MAX - 5, 3)]);
        assert!(svg.starts_with("<svg"));
    }

    #[test]
    fn same_system_same_colour() {
        assert_eq!(colour("erp-legacy"), colour("erp-cloud"));
        assert_eq!(colour("billing"), colour("billing"));
    }
}
