//! The dashboard's charts, drawn on the server as SVG (plotters, its SVG backend only: no font
//! files are read, text is laid out by estimate and drawn by the browser). A chart knows nothing
//! of issues or subscribers: it takes named series of numbers and says what it shows in a
//! `<title>` and a `<desc>`, with `role="img"`; the page shows the same figures as a table.
//!
//! Axes and text are drawn in `currentColor`, so the chart takes the page's text colour in light
//! and dark alike; the series' colours are mid tones that keep a 3:1 contrast on both.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use plotters::{coord::ranged1d::SegmentValue, prelude::*};

/// Width and height of a chart's drawing, in its own units; the page scales it to its column.
const WIDTH: u32 = 420;
const HEIGHT: u32 = 220;
/// A bar chart's height: room for the axis, and this much per bar.
const BAR_ROOM: u32 = 34;
/// The colour that stands for the page's text colour while drawing: it is written as
/// `currentColor` once the chart is drawn.
const INK: RGBColor = RGBColor(1, 2, 3);
const INK_TEXT: &str = "#010203";
const FONT: &str = "system-ui, sans-serif";

/// What went wrong drawing a chart: nothing a reader can cause, but reported rather than hidden.
#[derive(Debug, thiserror::Error)]
#[error("the chart could not be drawn: {0}")]
pub struct ChartError(String);

fn failed<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError(format!("{e:?}"))
}

/// The colour of a series, one per meaning wherever it appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hue {
    /// Messages that went out; readers active.
    Good,
    /// Refused for good; bounces.
    Bad,
    /// Waiting for another try; soft bounces.
    Waiting,
    /// Complaints.
    Complaint,
}

impl Hue {
    fn rgb(self) -> RGBColor {
        match self {
            Self::Good => RGBColor(0x2f, 0x80, 0xc8),
            Self::Bad => RGBColor(0xe0, 0x5a, 0x3a),
            Self::Waiting => RGBColor(0xc0, 0x8a, 0x10),
            Self::Complaint => RGBColor(0xa8, 0x5c, 0xd0),
        }
    }
}

/// One line of a [`TimeChart`].
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub name: &'a str,
    pub values: &'a [u64],
    pub hue: Hue,
    /// Filled down to the axis (the chart's main quantity), or a line alone.
    pub filled: bool,
}

/// Named series over the same instants.
#[derive(Debug, Clone, Copy)]
pub struct TimeChart<'a> {
    /// Unique on the page: names the chart's title and description for `aria-labelledby`.
    pub id: &'a str,
    pub title: &'a str,
    pub desc: &'a str,
    /// Where the axis' times are read.
    pub zone: Tz,
    pub times: &'a [DateTime<Utc>],
    pub series: &'a [Series<'a>],
}

/// One bar of a bar chart.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: u64,
    pub hue: Hue,
}

/// How a time axis' labels read: the time of day within a day or two, the date beyond.
fn time_format(times: &[DateTime<Utc>]) -> &'static str {
    match (times.first(), times.last()) {
        (Some(a), Some(b)) if *b - *a <= chrono::Duration::minutes(15) => "%H:%M:%S",
        (Some(a), Some(b)) if *b - *a <= chrono::Duration::hours(20) => "%H:%M",
        (Some(a), Some(b)) if *b - *a <= chrono::Duration::days(3) => "%a %H:%M",
        _ => "%-d %b",
    }
}

/// A count as an axis reads it: 1200 as 1.2k, 3000000 as 3M.
fn short(n: f64) -> String {
    let n = n.max(0.0);
    if n >= 1e6 {
        format!("{}M", trim(n / 1e6))
    } else if n >= 1e3 {
        format!("{}k", trim(n / 1e3))
    } else {
        trim(n)
    }
}

fn trim(n: f64) -> String {
    let s = format!("{n:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// Escapes text for an XML element's content or a quoted attribute.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `drawn` (plotters' SVG) with its root element made accessible and scalable, its title and
/// description first, and the ink colour written as the page's text colour.
fn finish(drawn: &str, height: u32, id: &str, title: &str, desc: &str) -> Result<String, ChartError> {
    let body_at = drawn.find("<svg").and_then(|s| drawn[s..].find('>').map(|e| s + e + 1));
    let Some(body_at) = body_at else { return Err(ChartError("no SVG root was drawn".into())) };
    let id = xml(id);
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" class=\"chart\" role=\"img\" \
         aria-labelledby=\"{id}-title {id}-desc\"><title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>{}",
        xml(title),
        xml(desc),
        drawn[body_at..].replace(INK_TEXT, "currentColor")
    ))
}

/// A chart of `chart.series` over `chart.times`: filled areas for the main quantity, lines for
/// the others.
pub fn time_chart(chart: &TimeChart<'_>) -> Result<String, ChartError> {
    let mut drawn = String::new();
    {
        let root = SVGBackend::with_string(&mut drawn, (WIDTH, HEIGHT)).into_drawing_area();
        let n = chart.times.len();
        let top = chart.series.iter().flat_map(|s| s.values.iter()).copied().max().unwrap_or(0).max(1);
        let top = (top as f64 * 1.1).ceil();
        let x_end = n.saturating_sub(1).max(1) as f64;
        let format = time_format(chart.times);
        let label = |x: &f64| {
            let i = x.round().max(0.0) as usize;
            chart.times.get(i).map(|t| t.with_timezone(&chart.zone).format(format).to_string()).unwrap_or_default()
        };
        let mut c = ChartBuilder::on(&root)
            .margin(8)
            .margin_right(16)
            .x_label_area_size(24)
            .y_label_area_size(44)
            .build_cartesian_2d(0.0..x_end, 0.0..top)
            .map_err(failed)?;
        c.configure_mesh()
            .disable_x_mesh()
            .bold_line_style(INK.mix(0.15))
            .light_line_style(TRANSPARENT)
            .axis_style(INK.mix(0.6))
            .label_style((FONT, 16).into_font().color(&INK))
            .x_labels(5)
            .y_labels(5)
            .x_label_formatter(&label)
            .y_label_formatter(&|v| short(*v))
            .draw()
            .map_err(failed)?;
        for s in chart.series {
            let colour = s.hue.rgb();
            let points = s.values.iter().enumerate().map(|(i, v)| (i as f64, *v as f64));
            if s.filled {
                c.draw_series(AreaSeries::new(points, 0.0, colour.mix(0.25)).border_style(colour.stroke_width(2)))
                    .map_err(failed)?;
            } else {
                c.draw_series(LineSeries::new(points, colour.stroke_width(2))).map_err(failed)?;
            }
        }
        root.present().map_err(failed)?;
    }
    finish(&drawn, HEIGHT, chart.id, chart.title, chart.desc)
}

/// A horizontal bar for each of `bars`, labelled, the first at the top.
pub fn bar_chart(id: &str, title: &str, desc: &str, bars: &[Bar]) -> Result<String, ChartError> {
    let mut drawn = String::new();
    let n = bars.len().max(1) as u32;
    let height = 48 + BAR_ROOM * n;
    {
        let root = SVGBackend::with_string(&mut drawn, (WIDTH, height)).into_drawing_area();
        let top = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
        let top = (top as f64 * 1.1).ceil() as u64;
        let widest = bars.iter().map(|b| b.label.chars().count()).max().unwrap_or(4).min(28) as u32;
        let labels: Vec<&str> = bars.iter().map(|b| b.label.as_str()).collect();
        let label = |v: &SegmentValue<u32>| match v {
            // The first bar is drawn at the top, where the axis ends. A segment's edges are
            // ticks too: only its middle is labelled.
            SegmentValue::CenterOf(i) => (n - 1)
                .checked_sub(*i)
                .and_then(|at| labels.get(at as usize))
                .map(|l| (*l).to_owned())
                .unwrap_or_default(),
            SegmentValue::Exact(_) | SegmentValue::Last => String::new(),
        };
        let mut c = ChartBuilder::on(&root)
            .margin(8)
            .margin_right(16)
            .x_label_area_size(24)
            .y_label_area_size(16 + widest * 7)
            .build_cartesian_2d(0..top, (0..n).into_segmented())
            .map_err(failed)?;
        c.configure_mesh()
            .disable_y_mesh()
            .bold_line_style(INK.mix(0.15))
            .light_line_style(TRANSPARENT)
            .axis_style(INK.mix(0.6))
            .label_style((FONT, 16).into_font().color(&INK))
            .x_labels(5)
            .y_labels(bars.len().max(1))
            .x_label_formatter(&|v| short(*v as f64))
            .y_label_formatter(&label)
            .draw()
            .map_err(failed)?;
        c.draw_series(bars.iter().enumerate().map(|(i, b)| {
            let i = n - 1 - i as u32;
            let mut bar = Rectangle::new(
                [(0, SegmentValue::Exact(i)), (b.value, SegmentValue::Exact(i + 1))],
                b.hue.rgb().filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }))
        .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    finish(&drawn, height, id, title, desc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(n: i64, step_s: i64) -> Vec<DateTime<Utc>> {
        let start = DateTime::from_timestamp(1_710_000_000, 0).expect("time");
        (0..n).map(|i| start + chrono::Duration::seconds(i * step_s)).collect()
    }

    #[test]
    fn a_time_chart_says_what_it_shows_and_follows_the_page_colours() {
        let t = times(30, 10);
        let sent: Vec<u64> = (0..30).map(|i| i * 3).collect();
        let failed: Vec<u64> = (0..30).map(|i| i % 4).collect();
        let svg = time_chart(&TimeChart {
            id: "sent",
            title: "Messages over time <issue 3>",
            desc: "Sent & failed per 10 s",
            zone: Tz::Europe__Paris,
            times: &t,
            series: &[
                Series { name: "sent", values: &sent, hue: Hue::Good, filled: true },
                Series { name: "failed", values: &failed, hue: Hue::Bad, filled: false },
            ],
        })
        .expect("chart");
        assert!(svg.starts_with(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 420 220\" class=\"chart\" role=\"img\""
        ));
        assert!(svg.contains("<title id=\"sent-title\">Messages over time &lt;issue 3&gt;</title>"), "{svg}");
        assert!(svg.contains("<desc id=\"sent-desc\">Sent &amp; failed per 10 s</desc>"));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("currentColor") && !svg.contains(INK_TEXT));
        assert!(svg.contains(">\n17:00:00\n"), "times in the publication's zone: {svg}");
    }

    #[test]
    fn a_bar_chart_labels_each_bar() {
        let bars = vec![
            Bar { label: "failed 550 5.1.1".into(), value: 1200, hue: Hue::Bad },
            Bar { label: "deferred 451 4.7.1".into(), value: 30, hue: Hue::Waiting },
            Bar { label: "complaint".into(), value: 2, hue: Hue::Complaint },
        ];
        let svg = bar_chart("why", "Failures", "Failures by reason", &bars).expect("chart");
        for b in &bars {
            assert_eq!(svg.matches(&format!(">\n{}\n<", b.label)).count(), 1, "{} once: {svg}", b.label);
        }
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains(">\n1k\n"), "{svg}");
    }

    #[test]
    fn empty_charts_are_drawn_too() {
        assert!(
            time_chart(&TimeChart { id: "a", title: "t", desc: "d", zone: Tz::UTC, times: &[], series: &[] }).is_ok()
        );
        assert!(bar_chart("b", "t", "d", &[]).is_ok());
    }

    #[test]
    fn counts_are_short_on_an_axis() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(950.0), "950");
        assert_eq!(short(1200.0), "1.2k");
        assert_eq!(short(3_000_000.0), "3M");
    }
}
