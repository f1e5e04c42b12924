//! SVG charts of a save (plotters, SVG backend only), drawn for a reader who has not seen one
//! before.
//!
//! # What a chart shows
//!
//! A figure is a stack of panels sharing one time axis (seconds since the fork), each panel one
//! measure with its own y-axis label:
//!
//! 1. **memory of the pair**: server + snapshot child on the run's basis (anonymous PSS, shared
//!    pages counted once), with each server's **baseline** (the same figure just before the
//!    save) and **2× baseline** (every page copied) as grey dashed lines, labelled beside the
//!    plot where the line ends.
//! 2. **copy-on-write**: the child's `Private_Dirty`, the pages copied since the fork. A
//!    forkless save has no child: its line in this panel is the server's own growth over its
//!    baseline while the save ran (what the save costs it), and the panel's title says so.
//!
//! Parent RSS is not drawn: it is another measure (shared pages counted in full), and next to a
//! PSS total it made the total look smaller than one of its parts.
//!
//! # Colours
//!
//! One colour per server and snapshot method, the same in every chart ([`server_color`]); the
//! baseline and 2× lines are neutral greys, so a colour always means a server. The legend sits
//! above the panels and the line labels to their right: nothing is drawn over the plot areas
//! except the data and the grey guides.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::procfs::Basis;
use crate::run::{Sample, Summary};
use crate::MIB;

/// forkdb, snapshot by `fork()` (`BGSAVE`).
pub const FORKDB_FORK: RGBColor = RGBColor(31, 119, 180);
/// redis-server, snapshot by `fork()`.
pub const REDIS_FORK: RGBColor = RGBColor(214, 39, 40);
/// forkdb's forkless snapshot (`BGSAVE FORKLESS`), kept for when it exists.
pub const FORKDB_FORKLESS: RGBColor = RGBColor(44, 160, 44);
/// Any other server.
pub const OTHER_SERVER: RGBColor = RGBColor(148, 103, 189);
/// The baseline line: dark grey, long dashes.
pub const BASELINE_GREY: RGBColor = RGBColor(80, 80, 80);
/// The 2× baseline line: mid grey, short dashes.
pub const DOUBLE_GREY: RGBColor = RGBColor(140, 140, 140);
/// The frame around each plot area.
const FRAME: RGBColor = RGBColor(0, 0, 0);
const TEXT: RGBColor = RGBColor(40, 40, 40);

const WIDTH: u32 = 1200;
const TITLE_H: u32 = 34;
const LEGEND_H: u32 = 30;
/// Room right of each plot for the labels of the grey lines.
const GUTTER: u32 = 250;
const FONT: &str = "sans-serif";
const LABEL_PX: u32 = 13;
const LEGEND_PX: u32 = 14;

/// The colour of a server and snapshot method in every chart.
pub fn server_color(server: &str, save_cmd: &str) -> RGBColor {
    let forkless = save_cmd.to_ascii_lowercase().contains("forkless");
    if server.starts_with("forkdb") {
        if forkless {
            FORKDB_FORKLESS
        } else {
            FORKDB_FORK
        }
    } else if server.starts_with("redis") {
        REDIS_FORK
    } else {
        OTHER_SERVER
    }
}

/// One data line.
pub struct Series {
    pub color: RGBColor,
    /// (seconds, MiB)
    pub points: Vec<(f64, f64)>,
}

/// Which grey guide a [`Mark`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    Baseline,
    Double,
}

/// A horizontal guide across the whole panel, labelled to its right.
pub struct Mark {
    pub kind: MarkKind,
    /// MiB
    pub y: f64,
    /// Label lines (the first one names the line and its value).
    pub label: Vec<String>,
}

/// One measure against time.
pub struct Panel {
    pub title: String,
    pub y_desc: String,
    pub series: Vec<Series>,
    pub marks: Vec<Mark>,
    /// Relative height.
    pub weight: u32,
}

/// A whole chart.
pub struct Figure {
    pub title: String,
    pub x_desc: String,
    /// (name, colour): one entry per server.
    pub legend: Vec<(String, RGBColor)>,
    pub panels: Vec<Panel>,
}

/// One server's run as a chart sees it.
pub struct Side<'a> {
    /// Legend entry: server, command and method.
    pub name: String,
    /// Prefix of the grey lines' labels in a chart of several servers (`forkdb`, `redis`).
    pub short: String,
    pub color: RGBColor,
    pub basis: Basis,
    pub baseline_bytes: u64,
    /// A forkless save: no child; the lower panel shows the server's growth instead.
    pub forkless: bool,
    pub samples: &'a [Sample],
}

impl<'a> Side<'a> {
    pub fn of(s: &Summary, samples: &'a [Sample]) -> Side<'a> {
        let method = s.method;
        Side {
            // `BGSAVE FORKLESS` names its method already.
            name: if method == "forkless" {
                format!("{}: {}", s.server, s.save_cmd)
            } else {
                format!("{}: {} ({method})", s.server, s.save_cmd)
            },
            short: s.label.clone(),
            color: server_color(
                &s.server,
                if method == "forkless" {
                    "BGSAVE FORKLESS"
                } else {
                    &s.save_cmd
                },
            ),
            basis: s.ratio_basis,
            baseline_bytes: s.baseline_bytes,
            forkless: method == "forkless",
            samples,
        }
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / MIB as f64
}

/// `v` with the decimals a reader needs at its size (`9.4`, `331`).
fn num(v: f64, range: f64) -> String {
    if range < 2.0 {
        format!("{v:.2}")
    } else if range < 20.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// The two panels for `sides`; with `prefix`, the grey lines' labels name their server.
pub fn figure(title: &str, sides: &[Side], prefix: bool) -> Figure {
    let basis = sides.first().map_or(Basis::PssAnon, |s| s.basis);
    let mut total = Panel {
        title: format!(
            "Memory of the server + its snapshot child ({}: shared pages counted once)",
            basis_words(basis)
        ),
        y_desc: format!("{} (MiB)", basis.label()),
        series: Vec::new(),
        marks: Vec::new(),
        weight: 3,
    };
    let any_forkless = sides.iter().any(|s| s.forkless);
    let mut cow = Panel {
        title: if any_forkless {
            "What the save costs: fork = pages copied (the child's Private_Dirty); forkless = \
             the server's growth over its baseline"
                .to_owned()
        } else {
            "Copy-on-write: pages copied since the fork (the child's Private_Dirty)".to_owned()
        },
        y_desc: if any_forkless {
            "COW / growth (MiB)".to_owned()
        } else {
            "child Private_Dirty (MiB)".to_owned()
        },
        series: Vec::new(),
        marks: Vec::new(),
        weight: 2,
    };
    for side in sides {
        let who = if prefix {
            format!("{} ", side.short)
        } else {
            String::new()
        };
        let secs = |s: &Sample| s.ms / 1000.0;
        total.series.push(Series {
            color: side.color,
            points: side
                .samples
                .iter()
                .map(|s| (secs(s), mib(s.total_bytes)))
                .collect(),
        });
        let base_bytes = side.baseline_bytes;
        cow.series.push(Series {
            color: side.color,
            points: if side.forkless {
                side.samples
                    .iter()
                    .filter(|s| s.saving)
                    .map(|s| (secs(s), mib(s.total_bytes.saturating_sub(base_bytes))))
                    .collect()
            } else {
                side.samples
                    .iter()
                    .filter(|s| s.child_alive)
                    .map(|s| (secs(s), mib(s.cow_bytes)))
                    .collect()
            },
        });
        let base = mib(side.baseline_bytes);
        total.marks.push(Mark {
            kind: MarkKind::Baseline,
            y: base,
            label: vec![
                format!("{who}baseline: {} MiB", num(base, base)),
                format!("= {} just before the save", basis.label()),
            ],
        });
        // No pages are shared with a forkless save: "every page copied" does not apply.
        if side.forkless {
            continue;
        }
        total.marks.push(Mark {
            kind: MarkKind::Double,
            y: 2.0 * base,
            label: vec![
                format!("{who}2× baseline: {} MiB", num(2.0 * base, base)),
                "= every page copied".to_owned(),
            ],
        });
    }
    Figure {
        title: title.to_owned(),
        x_desc: if any_forkless {
            "time since the save started (s)".to_owned()
        } else {
            "time since the fork (s)".to_owned()
        },
        legend: sides.iter().map(|s| (s.name.clone(), s.color)).collect(),
        panels: vec![total, cow],
    }
}

fn basis_words(b: Basis) -> &'static str {
    match b {
        Basis::PssAnon => "parent + child anonymous PSS",
        Basis::Pss => "parent + child PSS",
        Basis::Rss => "parent RSS + child private pages",
    }
}

/// `chart.svg` of one run.
pub fn run_chart(path: &Path, s: &Summary, samples: &[Sample]) -> Result<()> {
    write(path, &figure(&s.title, &[Side::of(s, samples)], false))
}

/// `compare.svg`: several servers' runs in one chart.
pub fn compare_chart(path: &Path, title: &str, sides: &[Side]) -> Result<()> {
    write(path, &figure(title, sides, true))
}

/// Renders `fig` into an SVG file at `path`.
pub fn write(path: &Path, fig: &Figure) -> Result<()> {
    let svg = render(fig).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    std::fs::write(path, svg).map_err(|e| anyhow!("writing {}: {e}", path.display()))
}

/// Width of `text` in pixels at `px`: 0.6 em a character, a little more than a sans-serif
/// font's average, so that legend entries placed by it do not overlap.
fn text_width(text: &str, px: u32) -> i32 {
    (text.chars().count() as f64 * px as f64 * 0.6).ceil() as i32
}

/// Renders `fig` as SVG text.
pub fn render(fig: &Figure) -> Result<String> {
    let weights: u32 = fig
        .panels
        .iter()
        .map(|p| p.weight.max(1))
        .sum::<u32>()
        .max(1);
    let panels_h = 150 * weights;
    let height = TITLE_H + LEGEND_H + panels_h;
    let x_max = fig
        .panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)))
        .fold(0.1, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let e = |e: &dyn std::fmt::Display| anyhow!("{e}");
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let title = TextStyle::from((FONT, 17).into_font())
            .color(&TEXT)
            .pos(Pos::new(HPos::Left, VPos::Top));
        root.draw(&Text::new(fig.title.clone(), (16, 10), title))
            .map_err(|x| e(&x))?;

        // The legend: one row between the title and the first panel, outside every plot area.
        let legend = TextStyle::from((FONT, LEGEND_PX).into_font())
            .color(&TEXT)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let y = (TITLE_H + LEGEND_H / 2) as i32;
        let mut x = 90;
        for (name, color) in &fig.legend {
            root.draw(&PathElement::new(
                vec![(x, y), (x + 28, y)],
                color.stroke_width(4),
            ))
            .map_err(|x| e(&x))?;
            root.draw(&Text::new(name.clone(), (x + 36, y), legend.clone()))
                .map_err(|x| e(&x))?;
            x += 36 + text_width(name, LEGEND_PX) + 30;
        }

        let (_, mut rest) = root.split_vertically(TITLE_H + LEGEND_H);
        for panel in &fig.panels {
            let h = panels_h * panel.weight.max(1) / weights;
            let (area, below) = rest.split_vertically(h);
            rest = below;
            draw_panel(&root, &area, panel, x_max, &fig.x_desc)?;
        }
        root.present().map_err(|x| e(&x))?;
    }
    Ok(svg)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw_panel(root: &Area, area: &Area, p: &Panel, x_max: f64, x_desc: &str) -> Result<()> {
    let e = |e: &dyn std::fmt::Display| anyhow!("{e}");
    let y_max = p
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(p.marks.iter().map(|m| m.y))
        .fold(1.0, f64::max)
        * 1.06;
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 15).into_font().color(&TEXT))
        .margin(10)
        .margin_right(GUTTER)
        .x_label_area_size(46)
        .y_label_area_size(76)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(p.y_desc.as_str())
        .axis_desc_style((FONT, 14).into_font().color(&TEXT))
        .x_label_formatter(&|x| num(*x, x_max * 2.0))
        .y_label_formatter(&|y| num(*y, y_max))
        .bold_line_style(RGBColor(228, 228, 228))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|x| e(&x))?;
    for m in &p.marks {
        let (color, dash, gap) = match m.kind {
            MarkKind::Baseline => (BASELINE_GREY, 10, 6),
            MarkKind::Double => (DOUBLE_GREY, 4, 4),
        };
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, m.y), (x_max, m.y)],
                dash,
                gap,
                color.stroke_width(2),
            ))
            .map_err(|x| e(&x))?;
    }
    for s in &p.series {
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                s.color.stroke_width(3),
            ))
            .map_err(|x| e(&x))?;
    }
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    root.draw(&Rectangle::new(
        [(xr.start, yr.start), (xr.end, yr.end)],
        ShapeStyle {
            color: FRAME.to_rgba(),
            filled: false,
            stroke_width: 1,
        },
    ))
    .map_err(|x| e(&x))?;

    // Labels of the grey lines, in the gutter right of the plot: each at its line's height,
    // moved apart where two would overlap, with a leader from the line's end.
    let line_h = LABEL_PX as i32 + 3;
    let mut labels: Vec<(i32, &Mark)> = p
        .marks
        .iter()
        .map(|m| (chart.backend_coord(&(x_max, m.y)).1, m))
        .collect();
    labels.sort_by_key(|l| l.0);
    let mut tops = Vec::with_capacity(labels.len());
    let mut next_free = yr.start - 6;
    for (py, m) in &labels {
        let h = line_h * m.label.len() as i32;
        let top = (py - line_h / 2).max(next_free);
        tops.push(top);
        next_free = top + h + 4;
    }
    // Pushed past the bottom: move the stack back up.
    let mut limit = yr.end + 6;
    for (i, (_, m)) in labels.iter().enumerate().rev() {
        let h = line_h * m.label.len() as i32;
        if tops[i] + h > limit {
            tops[i] = limit - h;
        }
        limit = tops[i] - 4;
    }
    let style = TextStyle::from((FONT, LABEL_PX).into_font())
        .color(&TEXT)
        .pos(Pos::new(HPos::Left, VPos::Top));
    for ((py, m), top) in labels.iter().zip(tops) {
        let color = match m.kind {
            MarkKind::Baseline => BASELINE_GREY,
            MarkKind::Double => DOUBLE_GREY,
        };
        let x0 = xr.end;
        root.draw(&PathElement::new(
            vec![(x0, *py), (x0 + 8, *py), (x0 + 16, top + line_h / 2)],
            color.stroke_width(2),
        ))
        .map_err(|x| e(&x))?;
        for (i, text) in m.label.iter().enumerate() {
            root.draw(&Text::new(
                text.clone(),
                (x0 + 20, top + i as i32 * line_h),
                style.clone(),
            ))
            .map_err(|x| e(&x))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One element of plotters' SVG output: its tag, attributes and text.
    #[derive(Debug)]
    struct El {
        tag: String,
        attrs: Vec<(String, String)>,
        text: String,
    }

    impl El {
        fn attr(&self, name: &str) -> &str {
            self.attrs
                .iter()
                .find(|a| a.0 == name)
                .map_or("", |a| a.1.as_str())
        }
        fn num(&self, name: &str) -> f64 {
            self.attr(name)
                .parse()
                .unwrap_or_else(|_| panic!("{name} of {self:?}"))
        }
    }

    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
    }

    /// Parses the flat SVG plotters writes: one element per `<tag attr="v" .../>` or
    /// `<text ...>content</text>`.
    fn parse(svg: &str) -> Vec<El> {
        let mut out = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            rest = &rest[i + 1..];
            if rest.starts_with('/') {
                continue;
            }
            let end = rest.find('>').expect("unterminated tag");
            let head = &rest[..end];
            let tag: String = head.chars().take_while(|c| c.is_alphanumeric()).collect();
            let mut attrs = Vec::new();
            let mut a = &head[tag.len()..];
            while let Some(eq) = a.find("=\"") {
                let name = a[..eq].trim().to_owned();
                let v_end = a[eq + 2..].find('"').expect("unterminated attribute");
                attrs.push((name, unescape(&a[eq + 2..eq + 2 + v_end])));
                a = &a[eq + 2 + v_end + 1..];
            }
            rest = &rest[end + 1..];
            let mut text = String::new();
            if tag == "text" {
                let close = rest.find("</text>").expect("unterminated text");
                text = unescape(rest[..close].trim());
                rest = &rest[close..];
            }
            out.push(El { tag, attrs, text });
        }
        out
    }

    #[derive(Debug, Clone, Copy)]
    struct Rect {
        x0: f64,
        y0: f64,
        x1: f64,
        y1: f64,
    }

    impl Rect {
        fn contains(&self, (x, y): (f64, f64)) -> bool {
            x >= self.x0 - 1.0 && x <= self.x1 + 1.0 && y >= self.y0 - 1.0 && y <= self.y1 + 1.0
        }
        fn overlaps(&self, o: &Rect) -> bool {
            self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
        }
    }

    fn hex(c: RGBColor) -> String {
        format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
    }

    /// The box a `<text>` covers, from its anchor, size and the same width estimate the layout
    /// uses (made 20% wider here, to leave a margin for real fonts).
    fn text_box(t: &El) -> Rect {
        let (x, y) = (t.num("x"), t.num("y"));
        let size = t.num("font-size") * 1.24;
        let w = t.text.chars().count() as f64 * size * 0.72;
        let x0 = match t.attr("text-anchor") {
            "end" => x - w,
            "middle" => x - w / 2.0,
            _ => x,
        };
        let y0 = match t.attr("dy") {
            "0.76em" => y,
            "0.5ex" => y - size / 2.0,
            _ => y - size,
        };
        Rect {
            x0,
            y0,
            x1: x0 + w,
            y1: y0 + size,
        }
    }

    fn points(e: &El) -> Vec<(f64, f64)> {
        if e.tag == "line" {
            return vec![(e.num("x1"), e.num("y1")), (e.num("x2"), e.num("y2"))];
        }
        e.attr("points")
            .split_whitespace()
            .map(|p| {
                let (x, y) = p.split_once(',').expect("x,y");
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }

    fn sample(ms: f64, alive: bool, total_mib: f64, cow_mib: f64) -> Sample {
        let b = |m: f64| (m * MIB as f64) as u64;
        Sample {
            ms,
            saving: alive,
            child_alive: alive,
            child_pid: alive.then_some(2),
            cow_bytes: b(cow_mib),
            parent_rss_bytes: b(300.0),
            child_rss_bytes: b(290.0),
            parent_pss_bytes: b(150.0),
            child_pss_bytes: b(150.0),
            total_bytes: b(total_mib),
            keys_processed: None,
            writes: 0,
            minor_faults: 0,
        }
    }

    /// A forkdb-like curve (rises, then falls to zero COW before the child exits, as with
    /// `snapshot-child-release`) and a redis-like one (rises and stays).
    fn runs() -> (Vec<Sample>, Vec<Sample>) {
        let f = (0..=120)
            .map(|i| {
                let t = i as f64 / 120.0;
                let cow = 80.0 * (std::f64::consts::PI * t).sin().max(0.0);
                sample(i as f64 * 100.0, i < 120, 264.0 + cow, cow)
            })
            .collect();
        let r = (0..=130)
            .map(|i| {
                let cow = 212.0 * (i as f64 / 120.0).min(1.0);
                sample(i as f64 * 100.0, i < 130, 331.0 + cow, cow)
            })
            .collect();
        (f, r)
    }

    fn side<'a>(server: &str, short: &str, base: f64, s: &'a [Sample]) -> Side<'a> {
        Side {
            name: format!("{server}: BGSAVE (fork)"),
            short: short.to_owned(),
            color: server_color(server, "BGSAVE"),
            basis: Basis::PssAnon,
            baseline_bytes: (base * MIB as f64) as u64,
            forkless: false,
            samples: s,
        }
    }

    /// Checks what a reader needs from `svg`: the legend and the grey lines' labels outside
    /// every plot area, each data line inside one, and the labels that say what is drawn.
    fn check(svg: &str, fig: &Figure) {
        let els = parse(svg);
        let frames: Vec<Rect> = els
            .iter()
            .filter(|e| {
                e.tag == "rect" && e.attr("fill") == "none" && e.attr("stroke") == hex(FRAME)
            })
            .map(|e| Rect {
                x0: e.num("x"),
                y0: e.num("y"),
                x1: e.num("x") + e.num("width"),
                y1: e.num("y") + e.num("height"),
            })
            .collect();
        assert_eq!(frames.len(), fig.panels.len(), "one frame per panel");
        let texts: Vec<&El> = els.iter().filter(|e| e.tag == "text").collect();
        let find = |s: &str| -> &El {
            texts
                .iter()
                .find(|t| t.text == s)
                .unwrap_or_else(|| panic!("no text {s:?} in the chart"))
        };

        // Every data line lies in a plot area (so the frames are the plot areas).
        for (_, color) in &fig.legend {
            let lines: Vec<&El> = els
                .iter()
                .filter(|e| e.tag == "polyline" && e.attr("stroke") == hex(*color))
                .collect();
            let inside = lines
                .iter()
                .filter(|l| {
                    points(l)
                        .iter()
                        .all(|p| frames.iter().any(|f| f.contains(*p)))
                })
                .count();
            assert_eq!(
                inside,
                fig.panels.len(),
                "one data line per panel in {color:?}"
            );
            // The legend's swatch: the one line of this colour outside every plot area.
            let outside: Vec<&&El> = lines
                .iter()
                .filter(|l| {
                    points(l)
                        .iter()
                        .all(|p| !frames.iter().any(|f| f.contains(*p)))
                })
                .collect();
            assert_eq!(outside.len(), 1, "one legend swatch of {color:?}");
        }
        for p in &fig.panels {
            find(&p.title);
            find(&p.y_desc);
            // The grey guides are drawn, in grey.
            for m in &p.marks {
                let grey = hex(match m.kind {
                    MarkKind::Baseline => BASELINE_GREY,
                    MarkKind::Double => DOUBLE_GREY,
                });
                assert!(
                    els.iter().any(|e| e.attr("stroke") == grey
                        && e.attr("stroke-width") == "2"
                        && points(e)
                            .iter()
                            .all(|p| frames.iter().any(|f| f.contains(*p)))),
                    "no {grey} guide line"
                );
            }
        }
        // Legend entries and labels (every occurrence) do not overlap each other either.
        let wanted: Vec<String> = fig
            .legend
            .iter()
            .map(|l| l.0.clone())
            .chain(
                fig.panels
                    .iter()
                    .flat_map(|p| p.marks.iter().flat_map(|m| m.label.clone())),
            )
            .collect();
        let boxes: Vec<(&str, Rect)> = texts
            .iter()
            .filter(|t| wanted.contains(&t.text))
            .map(|t| (t.text.as_str(), text_box(t)))
            .collect();
        assert_eq!(boxes.len(), wanted.len(), "each label drawn once");
        for (text, b) in &boxes {
            for f in &frames {
                assert!(!b.overlaps(f), "{text:?} {b:?} covers the plot area {f:?}");
            }
        }
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                assert!(!a.1.overlaps(&b.1), "{:?} overlaps {:?}", a.0, b.0);
            }
        }
        find(&fig.x_desc);
    }

    #[test]
    fn compare_chart_keeps_legend_and_labels_off_the_plots() {
        let (f, r) = runs();
        let fig = figure(
            "forkdb vs redis",
            &[
                side("forkdb 0.1.0", "forkdb", 264.0, &f),
                side("redis 7.0.15", "redis", 331.0, &r),
            ],
            true,
        );
        let svg = render(&fig).unwrap();
        check(&svg, &fig);
        let texts: Vec<String> = parse(&svg).into_iter().map(|e| e.text).collect();
        for want in [
            "forkdb baseline: 264 MiB",
            "redis baseline: 331 MiB",
            "forkdb 2× baseline: 528 MiB",
            "redis 2× baseline: 662 MiB",
            "= anon PSS just before the save",
            "= every page copied",
            "anon PSS (MiB)",
            "child Private_Dirty (MiB)",
            "time since the fork (s)",
            "forkdb 0.1.0: BGSAVE (fork)",
            "redis 7.0.15: BGSAVE (fork)",
        ] {
            assert!(texts.iter().any(|t| t == want), "{want:?} missing");
        }
    }

    #[test]
    fn run_chart_shows_one_measure_per_panel() {
        let (_, r) = runs();
        let fig = figure(
            "redis alone",
            &[side("redis 7.0.15", "redis", 331.0, &r)],
            false,
        );
        let svg = render(&fig).unwrap();
        check(&svg, &fig);
        assert!(svg.contains(">\nbaseline: 331 MiB\n<"), "{svg}");
        assert!(svg.contains(">\n2× baseline: 662 MiB\n<"));
        // No RSS anywhere: the panels are anon PSS and Private_Dirty only.
        assert!(!svg.contains("RSS"));
        // Top panel: the totals; bottom panel: the COW, ending at the child's exit.
        assert_eq!(fig.panels[0].series[0].points.len(), r.len());
        assert_eq!(fig.panels[1].series[0].points.len(), r.len() - 1);
    }

    /// Close guides (baselines a few MiB apart) get labels that do not overlap.
    #[test]
    fn close_guides_are_labelled_apart() {
        let (f, r) = runs();
        let fig = figure(
            "close",
            &[
                side("forkdb 0.1.0", "forkdb", 300.0, &f),
                side("redis 7.0.15", "redis", 303.0, &r),
            ],
            true,
        );
        check(&render(&fig).unwrap(), &fig);
    }

    /// A forkless save has no child: its lower-panel line is the server's growth over its
    /// baseline while the save ran, in its own colour, and the panel and axis say so.
    #[test]
    fn a_forkless_side_shows_the_servers_growth() {
        let (f, r) = runs();
        let mut forkless = side("forkdb 0.1.0", "forkdb forkless", 264.0, &f);
        forkless.forkless = true;
        forkless.color = server_color("forkdb 0.1.0", "BGSAVE FORKLESS");
        forkless.name = "forkdb 0.1.0: BGSAVE FORKLESS".to_owned();
        let fig = figure(
            "three",
            &[
                side("forkdb 0.1.0", "forkdb", 264.0, &f),
                forkless,
                side("redis 7.0.15", "redis", 331.0, &r),
            ],
            true,
        );
        check(&render(&fig).unwrap(), &fig);
        assert!(fig.panels[1]
            .title
            .contains("forkless = the server's growth"));
        assert_eq!(fig.x_desc, "time since the save started (s)");
        let growth = &fig.panels[1].series[1];
        assert_eq!(growth.color, FORKDB_FORKLESS);
        // total − baseline of the samples taken while saving: 264 + cow − 264.
        assert_eq!(growth.points.len(), f.len() - 1);
        let peak = growth.points.iter().map(|p| p.1).fold(0.0, f64::max);
        assert!((peak - 80.0).abs() < 0.5, "{peak}");
    }

    #[test]
    fn one_colour_per_server_and_method() {
        let fork = server_color("forkdb 0.1.0", "BGSAVE");
        let redis = server_color("redis 7.0.15", "BGSAVE");
        let forkless = server_color("forkdb 0.1.0", "BGSAVE FORKLESS");
        assert_eq!(fork, FORKDB_FORK);
        assert_eq!(redis, REDIS_FORK);
        assert_eq!(forkless, FORKDB_FORKLESS);
        let all = [
            fork,
            redis,
            forkless,
            OTHER_SERVER,
            BASELINE_GREY,
            DOUBLE_GREY,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
