//! What every time chart of a run shares: the simulated-time x axis, the scenario's
//! events marked and the warm-up shaded (the run page's and the HA section's charts).

use sim_core::model::Sample;

use crate::RunMeta;
use crate::chart::{Chart, Line, Marks};
use crate::units::ns_to_s;

/// Marks the scenario's events and shades the warm-up on a time chart.
pub(crate) fn with_events(mut c: Chart, meta: &RunMeta) -> Chart {
    if !meta.marks.is_empty() {
        c.marks.push(Marks {
            label: "scenario event".into(),
            rgb: EVENT_RGB,
            xs: meta.marks.iter().map(|m| m.at_s).collect(),
            titles: meta.marks.iter().map(|m| m.label.clone()).collect(),
        });
    }
    c.warmup = (meta.warmup_s > 0.0).then_some(meta.warmup_s);
    c
}

/// The scenario's events: violet, apart from the HA marks' red, green and near black.
const EVENT_RGB: (u8, u8, u8) = (0x94, 0x67, 0xbd);

/// A chart against simulated time [s], from y = 0.
pub(crate) fn time_chart(title: &str, y_label: &str, lines: Vec<Line>) -> Chart {
    Chart {
        title: title.into(),
        x_label: "simulated time [s]".into(),
        y_label: y_label.into(),
        y_from_zero: true,
        lines,
        ..Chart::default()
    }
}

/// A sample's time [s].
pub(crate) fn t_s(s: &Sample) -> f64 {
    ns_to_s(s.t.as_nanos())
}
