//! One policy's replay as an SVG chart: queue depth above, workers, busy and target below,
//! over the same time axis.
//!
//! Hand-written SVG 1.1 with no script or external reference, so it opens in a browser, an
//! image viewer, or `rsvg-convert`. Each series is one `<polyline>` with an `id` (`queue`,
//! `workers`, `busy`, `target`).

use std::fmt::Write;

use super::stats::TickRow;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 24.0;
/// Top and height of the queue panel and the workers panel.
const QUEUE_PANEL: (f64, f64) = (56.0, 190.0);
const WORKER_PANEL: (f64, f64) = (300.0, 210.0);

/// A series: its id, legend, colour and dash pattern.
struct Series {
    id: &'static str,
    label: &'static str,
    colour: &'static str,
    dash: &'static str,
}

const QUEUE: Series = Series {
    id: "queue",
    label: "queue depth",
    colour: "#c0392b",
    dash: "",
};
const WORKERS: Series = Series {
    id: "workers",
    label: "workers",
    colour: "#1f5fa8",
    dash: "",
};
const BUSY: Series = Series {
    id: "busy",
    label: "busy",
    colour: "#8fb8e6",
    dash: "",
};
const TARGET: Series = Series {
    id: "target",
    label: "target",
    colour: "#e67e22",
    dash: "6 4",
};

/// A panel: where it is and the range of its y axis.
struct Panel {
    top: f64,
    height: f64,
    y_max: f64,
    x_max: f64,
}

impl Panel {
    fn x(&self, seconds: f64) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * seconds / self.x_max
    }

    fn y(&self, value: f64) -> f64 {
        self.top + self.height * (1.0 - value / self.y_max)
    }
}

/// The chart of `ticks` titled `title`.
pub fn svg(title: &str, ticks: &[TickRow]) -> String {
    let x_max = ticks.last().map_or(1.0, |t| t.at_s).max(1.0);
    let queue_max = ticks.iter().map(|t| t.queue).max().unwrap_or(0);
    let worker_max = ticks
        .iter()
        .map(|t| t.workers.max(t.target))
        .max()
        .unwrap_or(0);
    let queue = Panel {
        top: QUEUE_PANEL.0,
        height: QUEUE_PANEL.1,
        y_max: nice_max(queue_max),
        x_max,
    };
    let workers = Panel {
        top: WORKER_PANEL.0,
        height: WORKER_PANEL.1,
        y_max: nice_max(worker_max),
        x_max,
    };
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{WIDTH}\" \
         height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" \
         font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{}</text>\n",
        escape(title)
    );
    axes(&mut out, &queue, "tasks waiting");
    axes(&mut out, &workers, "workers");
    time_axis(&mut out, &workers);
    line(&mut out, &queue, &QUEUE, ticks, |t| t.queue, false);
    line(&mut out, &workers, &BUSY, ticks, |t| t.busy, true);
    line(&mut out, &workers, &WORKERS, ticks, |t| t.workers, true);
    line(&mut out, &workers, &TARGET, ticks, |t| t.target, true);
    legend(&mut out, queue.top - 8.0, &[&QUEUE]);
    legend(&mut out, workers.top - 8.0, &[&WORKERS, &BUSY, &TARGET]);
    out.push_str("</svg>\n");
    out
}

/// The panel's frame, horizontal grid lines with their values, and its y label.
fn axes(out: &mut String, panel: &Panel, label: &str) {
    let (left, right) = (LEFT, WIDTH - RIGHT);
    // Five divisions of a 1-2-5 maximum fall on whole numbers (1, 2 or 5 have fewer).
    let divisions = if panel.y_max >= 5.0 {
        5
    } else {
        panel.y_max as u32
    };
    for i in 0..=divisions {
        let value = panel.y_max * f64::from(i) / f64::from(divisions);
        let y = panel.y(value);
        let _ = writeln!(
            out,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\" stroke=\"#e4e4e4\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{value:.0}</text>",
            left - 6.0,
            y + 4.0
        );
    }
    let (top, bottom) = (panel.top, panel.top + panel.height);
    let _ = writeln!(
        out,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{:.1}\" height=\"{}\" fill=\"none\" \
         stroke=\"#999\"/><text transform=\"translate(16 {:.1}) rotate(-90)\" \
         text-anchor=\"middle\" fill=\"#333\">{label}</text>",
        right - left,
        panel.height,
        (top + bottom) / 2.0
    );
}

/// Minute marks under the lower panel, and vertical grid lines through both panels.
fn time_axis(out: &mut String, panel: &Panel) {
    let minutes = panel.x_max / 60.0;
    let step = nice_max((minutes / 6.0).ceil() as u32).max(1.0);
    let bottom = panel.top + panel.height;
    let mut minute = 0.0;
    while minute <= minutes + 1e-9 {
        let x = panel.x(minute * 60.0);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{bottom}\" \
             stroke=\"#f0f0f0\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
             fill=\"#555\">{minute:.0}</text>",
            QUEUE_PANEL.0,
            bottom + 16.0
        );
        minute += step;
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#333\">minutes</text>",
        (LEFT + WIDTH - RIGHT) / 2.0,
        bottom + 34.0
    );
}

/// One series as a polyline; `steps` draws each value flat until the next tick.
fn line(
    out: &mut String,
    panel: &Panel,
    series: &Series,
    ticks: &[TickRow],
    value: impl Fn(&TickRow) -> u32,
    steps: bool,
) {
    let mut points = String::new();
    let mut last: Option<f64> = None;
    for tick in ticks {
        let (x, y) = (panel.x(tick.at_s), panel.y(f64::from(value(tick))));
        if let Some(last_y) = last.filter(|_| steps) {
            let _ = write!(points, "{x:.1},{last_y:.1} ");
        }
        let _ = write!(points, "{x:.1},{y:.1} ");
        last = Some(y);
    }
    let dash = match series.dash {
        "" => String::new(),
        dash => format!(" stroke-dasharray=\"{dash}\""),
    };
    let _ = writeln!(
        out,
        "<polyline id=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" \
         stroke-width=\"1.6\"{dash}/>",
        series.id,
        points.trim_end(),
        series.colour
    );
}

/// Swatches and labels in a row at `y`, right-aligned.
fn legend(out: &mut String, y: f64, series: &[&Series]) {
    let mut x = WIDTH - RIGHT - 110.0 * series.len() as f64;
    for s in series {
        let dash = match s.dash {
            "" => String::new(),
            dash => format!(" stroke-dasharray=\"{dash}\""),
        };
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{}\" \
             stroke-width=\"2\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\">{}</text>",
            x + 22.0,
            s.colour,
            x + 28.0,
            y + 4.0,
            s.label
        );
        x += 110.0;
    }
}

/// The smallest 1, 2 or 5 times a power of ten at or above `value` (and at least 1).
fn nice_max(value: u32) -> f64 {
    let value = f64::from(value.max(1));
    let mut power = 1.0;
    loop {
        for step in [1.0, 2.0, 5.0] {
            if step * power >= value {
                return step * power;
            }
        }
        power *= 10.0;
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(at_s: f64, queue: u32, workers: u32, target: u32) -> TickRow {
        TickRow {
            at_s,
            queue,
            oldest_wait_s: None,
            workers,
            busy: workers / 2,
            draining: 0,
            target,
            balance_usd: 1.0,
            completed: 0,
            failed: 0,
            reason: String::new(),
        }
    }

    #[test]
    fn axes_round_up_to_nice_numbers() {
        assert_eq!(nice_max(0), 1.0);
        assert_eq!(nice_max(7), 10.0);
        assert_eq!(nice_max(11), 20.0);
        assert_eq!(nice_max(180), 200.0);
        assert_eq!(nice_max(201), 500.0);
    }

    #[test]
    fn each_series_is_a_polyline_within_its_panel() {
        let ticks = [
            tick(10.0, 40, 1, 6),
            tick(20.0, 10, 6, 6),
            tick(30.0, 0, 6, 4),
        ];
        let svg = svg("steady · a<b", &ticks);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains("steady · a&lt;b"));
        for id in ["queue", "workers", "busy", "target"] {
            assert!(svg.contains(&format!("<polyline id=\"{id}\"")), "{id}");
        }
        // The queue's peak (40 of a 50 axis) sits 4/5 up the queue panel, at the right edge
        // of the plot for the last tick.
        let peak_y = QUEUE_PANEL.0 + QUEUE_PANEL.1 * 0.2;
        assert!(svg.contains(&format!(
            "{:.1},{peak_y:.1}",
            LEFT + (WIDTH - LEFT - RIGHT) / 3.0
        )));
        assert!(svg.contains(&format!(
            "{:.1},{:.1}",
            WIDTH - RIGHT,
            QUEUE_PANEL.0 + QUEUE_PANEL.1
        )));
    }
}
