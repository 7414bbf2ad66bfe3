//! Charts of one or more runs, as SVG and PNG (plotters): the latency distribution per
//! transport, bytes and requests per message, server CPU per delivery, memory per connection.
//!
//! Text is drawn with a TrueType font read at run time (DejaVu Sans from Debian's
//! `fonts-dejavu-core`, or any `.ttf` under /usr/share/fonts), through plotters' pure-Rust
//! `ab_glyph` renderer, so building the bench needs no fontconfig or freetype libraries.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::TransportReport;

const SIZE: (u32, u32) = (960, 540);
const FONT_CANDIDATES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];
/// One color per transport, in `Transport::ALL` order.
const TRANSPORT_COLORS: [RGBColor; 4] =
    [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40)];
/// One color per target in bar charts.
const TARGET_COLORS: [RGBColor; 4] =
    [RGBColor(31, 119, 180), RGBColor(150, 150, 150), RGBColor(255, 127, 14), RGBColor(44, 160, 44)];

/// Finds a font file and registers it for plotters.
fn load_font() -> anyhow::Result<()> {
    let path = FONT_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .or_else(|| find_ttf(Path::new("/usr/share/fonts"), 4));
    let path = path.context("charts need a TrueType font: apt-get install fonts-dejavu-core")?;
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    // Registered fonts must live as long as the process; the file is read once per run.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    for style in [FontStyle::Normal, FontStyle::Bold] {
        plotters::style::register_font("sans-serif", style, bytes)
            .map_err(|_| anyhow!("{} is not a usable TrueType font", path.display()))?;
    }
    Ok(())
}

/// The first `.ttf` file under `dir`, looking `depth` levels down.
fn find_ttf(dir: &Path, depth: u32) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).ok()?.flatten().map(|entry| entry.path()).collect();
    entries.sort();
    entries.iter().find(|path| path.extension().is_some_and(|ext| ext == "ttf")).cloned().or_else(|| {
        (depth > 0)
            .then(|| entries.iter().filter(|p| p.is_dir()).find_map(|p| find_ttf(p, depth - 1)))
            .flatten()
    })
}

fn plot_error<E: std::fmt::Debug>(err: E) -> anyhow::Error {
    anyhow!("drawing a chart: {err:?}")
}

/// The charts, each drawn once generically and rendered on both backends.
#[derive(Debug, Clone, Copy)]
enum Chart {
    LatencyCdf,
    PerMessage,
    CpuPerDelivery,
    MemoryPerConnection,
}

impl Chart {
    const ALL: [Self; 4] =
        [Self::LatencyCdf, Self::PerMessage, Self::CpuPerDelivery, Self::MemoryPerConnection];

    fn name(self) -> &'static str {
        match self {
            Self::LatencyCdf => "latency_cdf",
            Self::PerMessage => "per_message",
            Self::CpuPerDelivery => "cpu_per_delivery",
            Self::MemoryPerConnection => "memory_per_connection",
        }
    }

    fn draw<DB: DrawingBackend>(
        self,
        root: DrawingArea<DB, Shift>,
        reports: &[TransportReport],
    ) -> anyhow::Result<()> {
        match self {
            Self::LatencyCdf => latency_cdf(root, reports),
            Self::PerMessage => per_message(root, reports),
            Self::CpuPerDelivery => cpu_per_delivery(root, reports),
            Self::MemoryPerConnection => memory_per_connection(root, reports),
        }
    }
}

/// Renders every chart of `reports` into `dir` as `<name>.svg` and `<name>.png`; returns the
/// files written.
pub(crate) fn render(dir: &Path, reports: &[TransportReport]) -> anyhow::Result<Vec<PathBuf>> {
    anyhow::ensure!(!reports.is_empty(), "no results to chart");
    let reports = &series_names(reports);
    load_font()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for chart in Chart::ALL {
        let svg = dir.join(format!("{}.svg", chart.name()));
        chart.draw(SVGBackend::new(&svg, SIZE).into_drawing_area(), reports)?;
        let png = dir.join(format!("{}.png", chart.name()));
        chart.draw(BitMapBackend::new(&png, SIZE).into_drawing_area(), reports)?;
        written.extend([svg, png]);
    }
    Ok(written)
}

/// The reports with each concurrent run's target named after its transports (`pushgate
/// (sse+ws at once)`), so its rows are a series of their own beside the same target's runs of
/// one transport at a time.
fn series_names(reports: &[TransportReport]) -> Vec<TransportReport> {
    reports
        .iter()
        .map(|report| {
            let mut report = report.clone();
            if report.concurrent {
                report.target = format!("{} ({} at once)", report.target, report.group_of.join("+"));
            }
            report
        })
        .collect()
}

fn transport_color(transport: &str) -> RGBColor {
    let index = crate::Transport::ALL.iter().position(|t| t.name() == transport).unwrap_or(0);
    TRANSPORT_COLORS[index % TRANSPORT_COLORS.len()]
}

fn targets(reports: &[TransportReport]) -> Vec<String> {
    let mut targets: Vec<String> = Vec::new();
    for report in reports {
        if !targets.contains(&report.target) {
            targets.push(report.target.clone());
        }
    }
    targets
}

fn transports(reports: &[TransportReport]) -> Vec<String> {
    let mut transports: Vec<String> = Vec::new();
    for report in reports {
        if !transports.contains(&report.transport) {
            transports.push(report.transport.clone());
        }
    }
    transports
}

/// Percentile `q` (0–100) as "nines": 90% → 1, 99% → 2, 99.9% → 3.
fn nines(percentile: f64) -> f64 {
    -(1.0 - percentile / 100.0).max(1e-5).log10()
}

/// The latency distribution, one line per target and transport: latency (log scale) against
/// percentile on a "nines" scale, so the tail gets as much room as the median.
fn latency_cdf<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    reports: &[TransportReport],
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(plot_error)?;
    let points: Vec<f64> = reports.iter().flat_map(|r| r.latency_cdf.iter().map(|p| p[0])).collect();
    let low = points.iter().copied().fold(f64::INFINITY, f64::min).max(1.0) / 1e3;
    let high = points.iter().copied().fold(0.0, f64::max).max(2.0) / 1e3;
    let all_targets = targets(reports);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            if all_targets.len() > 1 {
                format!("Delivery latency distribution ({}: solid, others dashed)", all_targets[0])
            } else {
                "Delivery latency distribution".to_owned()
            },
            ("sans-serif", 24),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d((low * 0.8..high * 1.25).log_scale(), 0.0..4.2)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("latency, ms (log scale)")
        .y_desc("percentile")
        .y_labels(5)
        .y_label_formatter(&|y: &f64| match y.round() as i32 {
            0 => "0%".to_owned(),
            1 => "90%".to_owned(),
            2 => "99%".to_owned(),
            3 => "99.9%".to_owned(),
            4 => "99.99%".to_owned(),
            _ => String::new(),
        })
        .x_label_formatter(&|x: &f64| if *x >= 1.0 { format!("{x:.0}") } else { format!("{x}") })
        .draw()
        .map_err(plot_error)?;
    for report in reports {
        if report.latency_cdf.is_empty() {
            continue;
        }
        let color = transport_color(&report.transport);
        let dashed = all_targets.iter().position(|t| *t == report.target).unwrap_or(0) > 0;
        let line: Vec<(f64, f64)> =
            report.latency_cdf.iter().map(|p| ((p[0] / 1e3).max(low), nines(p[1]).min(4.2))).collect();
        let label = if all_targets.len() > 1 {
            format!("{} {}", report.target, report.transport)
        } else {
            report.transport.clone()
        };
        let style = color.stroke_width(2);
        if dashed {
            chart.draw_series(DashedLineSeries::new(line, 6, 4, style)).map_err(plot_error)?
        } else {
            chart.draw_series(LineSeries::new(line, style)).map_err(plot_error)?
        }
        .label(label)
        .legend(move |(x, y)| {
            // Two segments either way, so a dashed series shows dashed in the legend too.
            let gap = if dashed { 4 } else { 0 };
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (10 - gap, 0)], color.stroke_width(2))
                + PathElement::new(vec![(10 + gap, 0), (20, 0)], color.stroke_width(2))
        });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)?;
    Ok(())
}

/// The value axis of a bar chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    Linear,
    Log,
}

/// One metric as grouped bars: a group per transport, a bar per target.
fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    unit: &str,
    scale: Scale,
    reports: &[TransportReport],
    value: impl Fn(&TransportReport) -> Option<f64>,
    format: impl Fn(f64) -> String,
) -> anyhow::Result<()> {
    let values: Vec<f64> = reports.iter().filter_map(&value).filter(|v| *v > 0.0).collect();
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(0.0, f64::max);
    match scale {
        Scale::Log => {
            let (low, high) = if values.is_empty() { (0.1, 10.0) } else { (low / 4.0, high * 4.0) };
            let y = (low..high).log_scale();
            bars_on(area, title, &format!("{unit} (log scale)"), y, low, reports, value, format)
        }
        Scale::Linear => {
            let high = if values.is_empty() { 1.0 } else { high * 1.15 };
            bars_on(area, title, unit, 0.0..high, 0.0, reports, value, format)
        }
    }
}

#[allow(clippy::too_many_arguments)] // One call site per scale, both in `bars`.
fn bars_on<DB: DrawingBackend, Y>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    y: Y,
    low: f64,
    reports: &[TransportReport],
    value: impl Fn(&TransportReport) -> Option<f64>,
    format: impl Fn(f64) -> String,
) -> anyhow::Result<()>
where
    Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    Y::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let groups = transports(reports);
    let series = targets(reports);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..groups.len() as f64, y)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_labels(0)
        .y_desc(y_desc)
        .y_label_formatter(&|y: &f64| {
            if *y >= 100.0 { format!("{y:.0}") } else { format!("{y}") }
        })
        .draw()
        .map_err(plot_error)?;
    let slot = 0.8 / series.len().max(1) as f64;
    for (s, target) in series.iter().enumerate() {
        let color = TARGET_COLORS[s % TARGET_COLORS.len()];
        let mut drawn = Vec::new();
        for (g, transport) in groups.iter().enumerate() {
            let Some(v) =
                reports.iter().find(|r| r.target == *target && r.transport == *transport).and_then(&value)
            else {
                continue;
            };
            if v <= 0.0 {
                continue;
            }
            let x0 = g as f64 + 0.1 + s as f64 * slot;
            drawn.push((x0, x0 + slot * 0.9, v));
        }
        chart
            .draw_series(
                drawn.iter().map(|(x0, x1, v)| Rectangle::new([(*x0, low), (*x1, *v)], color.filled())),
            )
            .map_err(plot_error)?
            .label(target.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        let text = ("sans-serif", 13).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
        for (x0, x1, v) in &drawn {
            let (px, py) = local(area, chart.backend_coord(&((x0 + x1) / 2.0, *v)));
            area.draw(&Text::new(format(*v), (px, py - 2), text.clone())).map_err(plot_error)?;
        }
    }
    let label = ("sans-serif", 16).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
    for (g, transport) in groups.iter().enumerate() {
        let (px, py) = local(area, chart.backend_coord(&(g as f64 + 0.5, low)));
        area.draw(&Text::new(transport.clone(), (px, py + 8), label.clone())).map_err(plot_error)?;
    }
    if series.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(plot_error)?;
    }
    Ok(())
}

/// A pixel of the whole backend as a pixel of `area` (which may be a part of it).
fn local<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, (x, y): (i32, i32)) -> (i32, i32) {
    let (base_x, base_y) = area.get_base_pixel();
    (x - base_x, y - base_y)
}

fn per_message<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    reports: &[TransportReport],
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(plot_error)?;
    let (left, right) = root.split_horizontally(SIZE.0 / 2);
    bars(
        &left,
        "Bytes on the wire per delivered message",
        "bytes",
        Scale::Log,
        reports,
        |r| r.bytes_per_message,
        |v| format!("{v:.0}"),
    )?;
    bars(
        &right,
        "HTTP requests per delivered message",
        "requests",
        Scale::Log,
        reports,
        |r| r.requests_per_message,
        |v| {
            if v >= 0.1 { format!("{v:.2}") } else { format!("{v:.1e}") }
        },
    )?;
    root.present().map_err(plot_error)?;
    Ok(())
}

fn cpu_per_delivery<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    reports: &[TransportReport],
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(plot_error)?;
    bars(
        &root,
        "Server CPU per delivered message",
        "µs",
        Scale::Linear,
        reports,
        |r| r.server_cpu_us_per_delivery,
        |v| format!("{v:.2}"),
    )?;
    root.present().map_err(plot_error)?;
    Ok(())
}

fn memory_per_connection<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    reports: &[TransportReport],
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(plot_error)?;
    bars(
        &root,
        "Server memory per idle connection (RSS)",
        "KB",
        Scale::Linear,
        reports,
        |r| r.rss_per_connection_bytes.map(|b| b / 1e3),
        |v| format!("{v:.1}"),
    )?;
    root.present().map_err(plot_error)?;
    Ok(())
}
