//! Plots (SVG and PNG) drawn with plotters and an embedded DejaVu Sans font, so nothing
//! depends on the fonts installed on the machine.
//!
//! Both formats of a plot are written atomically (temporary file in the same folder, then
//! rename) next to each other: `<stem>.svg` and `<stem>.png`.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{MetricsError, Result};
use crate::matrix::AccuracyMatrix;

/// DejaVu Sans (Bitstream Vera license, see `assets/DejaVuSans-LICENSE.txt`).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Registers the embedded font for plotters' `sans-serif` family (idempotent).
pub fn register_embedded_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            if plotters::style::register_font(FAMILY, style, FONT).is_err() {
                // The font is compiled in; failing to parse it is a build defect.
                panic!("embedded DejaVu Sans font failed to parse");
            }
        }
    });
}

/// One line of a [`LineChart`]: `(x, y)` points in drawing order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// A line chart of accuracies (y in percent, 0..100) against task number.
#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

const SIZE: (u32, u32) = (900, 600);

/// One group member of a [`BarChart`]: a value per category (`None`: no bar).
#[derive(Clone, Debug, PartialEq)]
pub struct BarSeries {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

/// Grouped bars of percentages (y 0..100): one group per category, one bar per series.
#[derive(Clone, Debug, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    pub categories: Vec<String>,
    pub series: Vec<BarSeries>,
}

/// Writes `<stem>.svg` and `<stem>.png` of the bar chart; returns both paths.
pub fn write_bar_chart(chart: &BarChart, stem: &Path) -> Result<[PathBuf; 2]> {
    if let Some(s) = chart
        .series
        .iter()
        .find(|s| s.values.len() != chart.categories.len())
    {
        return Err(MetricsError::InvalidInput(format!(
            "bar series {:?} has {} values for {} categories",
            s.label,
            s.values.len(),
            chart.categories.len()
        )));
    }
    write_both(stem, chart)
}

/// Writes `<stem>.svg` and `<stem>.png` of the chart; returns both paths.
pub fn write_line_chart(chart: &LineChart, stem: &Path) -> Result<[PathBuf; 2]> {
    write_both(stem, chart)
}

/// Writes `<stem>.svg` and `<stem>.png` of an accuracy-matrix heatmap (rows: after
/// training task t, columns: evaluated task i, 1-based, values printed in the cells).
pub fn write_heatmap(matrix: &AccuracyMatrix, title: &str, stem: &Path) -> Result<[PathBuf; 2]> {
    write_both(stem, &Heatmap { matrix, title })
}

type DrawResult = std::result::Result<(), String>;

/// Something drawable on any plotters backend (closures cannot be generic over it).
trait Drawing {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> DrawResult;
}

impl Drawing for LineChart {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> DrawResult {
        draw_line_chart(area, self)
    }
}

impl Drawing for BarChart {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> DrawResult {
        draw_bar_chart(area, self)
    }
}

struct Heatmap<'a> {
    matrix: &'a AccuracyMatrix,
    title: &'a str,
}

impl Drawing for Heatmap<'_> {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> DrawResult {
        draw_heatmap(area, self.matrix, self.title)
    }
}

fn write_both(stem: &Path, drawing: &impl Drawing) -> Result<[PathBuf; 2]> {
    register_embedded_font();
    let svg_path = stem.with_extension("svg");
    let png_path = stem.with_extension("png");
    let plot_err = |path: &Path, reason: String| MetricsError::Plot {
        path: path.to_path_buf(),
        reason,
    };

    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        drawing.draw(area).map_err(|e| plot_err(&svg_path, e))?;
    }
    crate::io::write_atomic(&svg_path, svg.as_bytes())?;

    // The bitmap backend picks the encoder from the extension; mmcl-io's temporary name
    // keeps `.png` at the end.
    mmcl_io::write_atomic_with(
        &png_path,
        |tmp_png| {
            let area = BitMapBackend::new(tmp_png, SIZE).into_drawing_area();
            drawing
                .draw(area.clone())
                .and_then(|()| area.present().map_err(|e| e.to_string()))
                .map_err(|e| plot_err(&png_path, e))
        },
        |e| MetricsError::io(&png_path, e),
    )?;
    Ok([svg_path, png_path])
}

fn draw_line_chart<DB: DrawingBackend>(area: DrawingArea<DB, Shift>, c: &LineChart) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(e)?;
    let xs = || c.series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let x_max = xs().fold(1.0_f64, f64::max);
    // Task numbers start at 1; a severity axis starts at 0 (clean).
    let x_min = xs().fold(1.0_f64, f64::min);
    let mut chart = ChartBuilder::on(&area)
        .caption(&c.title, (FAMILY, 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x_min - 0.5..x_max + 0.5, 0.0..100.0)
        .map_err(e)?;
    let x_ticks = ((x_max - x_min) as usize + 1).min(20);
    chart
        .configure_mesh()
        .x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .x_labels(x_ticks)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(e)?;
    for (index, series) in c.series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        chart
            .draw_series(LineSeries::new(
                series.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(e)?
            .label(series.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        chart
            .draw_series(
                series
                    .points
                    .iter()
                    .map(|&p| Circle::new(p, 4, color.filled())),
            )
            .map_err(e)?;
    }
    if !c.series.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FAMILY, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
    }
    area.present().map_err(e)
}

fn draw_bar_chart<DB: DrawingBackend>(area: DrawingArea<DB, Shift>, c: &BarChart) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(e)?;
    let n = c.categories.len().max(1);
    // Horizontal bars: the category names ("SAMM (500) Multimodal") read left of them.
    // Category 0 is drawn at the top.
    let mut chart = ChartBuilder::on(&area)
        .caption(&c.title, (FAMILY, 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(230)
        .build_cartesian_2d(0.0..100.0, 0.0..n as f64)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc(&c.y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(e)?;
    let label_font = (FAMILY, if n > 16 { 12 } else { 15 });
    for (i, name) in c.categories.iter().enumerate() {
        let y = (n - 1 - i) as f64 + 0.5;
        let (px, py) = chart.backend_coord(&(0.0, y));
        let style = TextStyle::from(label_font).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Right,
            plotters::style::text_anchor::VPos::Center,
        ));
        area.draw_text(name, &style, (px - 8, py)).map_err(e)?;
    }
    let k = c.series.len().max(1) as f64;
    let height = 0.8 / k;
    for (s_index, series) in c.series.iter().enumerate() {
        let color = Palette99::pick(s_index).to_rgba();
        let bars = series.values.iter().enumerate().filter_map(|(i, v)| {
            let v = (*v)?.clamp(0.0, 100.0);
            // The first series on top within each group.
            let y1 = (n - 1 - i) as f64 + 0.9 - s_index as f64 * height;
            Some(Rectangle::new(
                [(0.0, y1 - height), (v, y1)],
                color.filled(),
            ))
        });
        chart
            .draw_series(bars)
            .map_err(e)?
            .label(series.label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.filled()));
    }
    if !c.series.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FAMILY, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
    }
    area.present().map_err(e)
}

fn draw_heatmap<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    m: &AccuracyMatrix,
    title: &str,
) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(e)?;
    let tasks = m.num_tasks() as i32;
    // Row t is drawn at y = tasks - 1 - t so that task 1 is at the top, like a matrix.
    let mut chart = ChartBuilder::on(&area)
        .caption(title, (FAMILY, 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0..tasks, 0..tasks)
        .map_err(e)?;
    let ticks = (tasks as usize).min(20);
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("evaluated task")
        .y_desc("after training task")
        .x_labels(ticks + 1)
        .y_labels(ticks + 1)
        .x_label_formatter(&|x| label_for(*x, tasks, false))
        .y_label_formatter(&|y| label_for(*y, tasks, true))
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()
        .map_err(e)?;
    let value_font = (FAMILY, if tasks > 12 { 10 } else { 15 });
    for t in 0..m.num_tasks() {
        for (i, v) in m.seen(t).iter().enumerate() {
            // An empty test set (GCIL) has no accuracy: leave its cell blank.
            let Some(v) = *v else { continue };
            let (x, y) = (i as i32, tasks - 1 - t as i32);
            let fill = heat_color(v);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1, y + 1)],
                    fill.filled(),
                )))
                .map_err(e)?;
            if tasks <= 20 {
                let text_color = if luminance(fill) < 0.5 { WHITE } else { BLACK };
                let (px, py) = chart.backend_coord(&(x, y + 1));
                let (qx, qy) = chart.backend_coord(&(x + 1, y));
                let style = TextStyle::from(value_font).color(&text_color).pos(
                    plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    ),
                );
                area.draw_text(&format!("{v:.0}"), &style, ((px + qx) / 2, (py + qy) / 2))
                    .map_err(e)?;
            }
        }
    }
    area.present().map_err(e)
}

/// Tick labels sit at cell edges; label the edge below/left of each cell with its task.
fn label_for(edge: i32, tasks: i32, flipped: bool) -> String {
    if edge >= tasks {
        return String::new();
    }
    let task = if flipped { tasks - edge } else { edge + 1 };
    format!("{task}")
}

/// A perceptually ordered dark-blue → yellow ramp (viridis anchor colours) over 0..100 %.
fn heat_color(value: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 5] = [
        (68, 1, 84),
        (59, 82, 139),
        (33, 145, 140),
        (94, 201, 98),
        (253, 231, 37),
    ];
    let x = (value / 100.0).clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let lo = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - lo as f64;
    let lerp = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (STOPS[lo], STOPS[lo + 1]);
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

fn luminance(c: RGBColor) -> f64 {
    (0.2126 * c.0 as f64 + 0.7152 * c.1 as f64 + 0.0722 * c.2 as f64) / 255.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_non_empty_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let m = AccuracyMatrix::new(vec![vec![90.0], vec![60.0, 80.0], vec![30.0, 50.0, 70.0]])
            .unwrap();
        let [svg, png] =
            write_heatmap(&m, "SAMM, Seq, multimodal", &dir.path().join("heat")).unwrap();
        let svg_text = std::fs::read_to_string(&svg).unwrap();
        assert!(svg_text.starts_with("<svg") && svg_text.contains("SAMM, Seq, multimodal"));
        // plotters' SVG backend writes each text on a line of its own.
        assert!(svg_text.contains(">\n90\n<") && svg_text.contains(">\n30\n<"));
        let png_bytes = std::fs::read(&png).unwrap();
        assert_eq!(&png_bytes[1..4], b"PNG");
        assert!(png_bytes.len() > 5_000);

        let chart = LineChart {
            title: "Seq, multimodal".into(),
            x_label: "task".into(),
            y_label: "accuracy (%)".into(),
            series: vec![
                Series {
                    label: "ER 500".into(),
                    points: vec![(1.0, 90.0), (2.0, 70.0), (3.0, 50.0)],
                },
                Series {
                    label: "SGD".into(),
                    points: vec![(1.0, 88.0), (2.0, 44.0), (3.0, 30.0)],
                },
            ],
        };
        let [svg, png] = write_line_chart(&chart, &dir.path().join("curve")).unwrap();
        assert!(std::fs::read_to_string(&svg).unwrap().contains("ER 500"));
        assert!(std::fs::metadata(&png).unwrap().len() > 5_000);
        // no temporary files left behind
        let bars = BarChart {
            title: "Seq: stability and plasticity".into(),
            y_label: "accuracy (%)".into(),
            categories: vec!["ER (500) Multimodal".into(), "SGD Audio".into()],
            series: vec![
                BarSeries {
                    label: "stability".into(),
                    values: vec![Some(40.0), None],
                },
                BarSeries {
                    label: "plasticity".into(),
                    values: vec![Some(80.0), Some(90.0)],
                },
            ],
        };
        let [svg, png] = write_bar_chart(&bars, &dir.path().join("bars")).unwrap();
        let svg_text = std::fs::read_to_string(&svg).unwrap();
        assert!(svg_text.contains("ER (500) Multimodal") && svg_text.contains("plasticity"));
        assert!(std::fs::metadata(&png).unwrap().len() > 5_000);
        let mut short = bars.clone();
        short.series[0].values.pop();
        assert!(write_bar_chart(&short, &dir.path().join("short")).is_err());
        // no temporary files left behind
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 6, "{names:?}");
    }

    #[test]
    fn heat_colors_span_the_ramp() {
        assert_eq!(heat_color(0.0), RGBColor(68, 1, 84));
        assert_eq!(heat_color(100.0), RGBColor(253, 231, 37));
        assert!(luminance(heat_color(10.0)) < 0.5 && luminance(heat_color(95.0)) > 0.5);
    }
}
