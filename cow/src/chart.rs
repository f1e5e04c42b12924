//! SVG line charts (plotters, SVG backend only): memory in MiB against milliseconds since the
//! fork.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::run::{Sample, Summary};
use crate::MIB;

/// One line of a chart.
pub struct Line {
    pub name: String,
    pub color: RGBColor,
    pub width: u32,
    /// (ms, MiB)
    pub points: Vec<(f64, f64)>,
}

pub const GREY: RGBColor = RGBColor(120, 120, 120);
pub const BLUE_: RGBColor = RGBColor(31, 119, 180);
pub const ORANGE: RGBColor = RGBColor(255, 127, 14);
pub const GREEN_: RGBColor = RGBColor(44, 160, 44);
pub const RED_: RGBColor = RGBColor(214, 39, 40);
pub const PURPLE: RGBColor = RGBColor(148, 103, 189);
pub const LIGHT_GREEN: RGBColor = RGBColor(152, 223, 138);
pub const LIGHT_RED: RGBColor = RGBColor(255, 152, 150);

fn mib(b: u64) -> f64 {
    b as f64 / MIB as f64
}

/// A horizontal line from 0 to `x_max`.
pub fn flat(name: &str, color: RGBColor, y: f64, x_max: f64) -> Line {
    Line {
        name: name.to_owned(),
        color,
        width: 1,
        points: vec![(0.0, y), (x_max, y)],
    }
}

/// The series of one run's samples: parent RSS, child COW, total.
pub fn run_lines(
    prefix: &str,
    s: &Summary,
    samples: &[Sample],
    colors: [RGBColor; 3],
) -> Vec<Line> {
    let total_name = s.ratio_basis.total_label();
    let series = |name: &str, color, width, f: fn(&Sample) -> u64, alive_only: bool| Line {
        name: format!("{prefix}{name}"),
        color,
        width,
        points: samples
            .iter()
            .filter(|x| !alive_only || x.child_alive)
            .map(|x| (x.ms, mib(f(x))))
            .collect(),
    };
    vec![
        series("parent RSS", colors[0], 2, |x| x.parent_rss_bytes, false),
        series("child COW", colors[1], 2, |x| x.cow_bytes, true),
        series(total_name, colors[2], 3, |x| x.total_bytes, false),
    ]
}

/// `chart.svg` of one run.
pub fn run_chart(path: &Path, s: &Summary, samples: &[Sample]) -> Result<()> {
    let baseline = mib(s.baseline_bytes);
    let x_max = samples.iter().map(|x| x.ms).fold(1.0, f64::max);
    let mut lines = vec![flat("baseline", GREY, baseline, x_max)];
    lines.extend(run_lines("", s, samples, [BLUE_, ORANGE, GREEN_]));
    lines.push(flat("2× baseline", RED_, 2.0 * baseline, x_max));
    draw(path, &s.title, &lines)
}

/// Draws `lines` into an SVG file at `path`.
pub fn draw(path: &Path, title: &str, lines: &[Line]) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    let x_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let y_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.08;
    let root = SVGBackend::new(path, (1100, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("ms since fork")
        .y_desc("MiB")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| err(&e))?;
    for line in lines {
        let style = line.color.stroke_width(line.width);
        let color = line.color;
        chart
            .draw_series(LineSeries::new(line.points.iter().copied(), style))
            .map_err(|e| err(&e))?
            .label(line.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
