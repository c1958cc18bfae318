//! The seed-claim plot: native, PV hypercall and trap-and-emulate, for a
//! page-table update and for a privileged read (CPUID), in icount
//! instructions per operation on a log scale.
//!
//! The text needs a TrueType font; plotters' `ab_glyph` renderer is given
//! DejaVu Sans from the system (Debian's `fonts-dejavu-core`).

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use super::machine::Clock;
use super::results::Results;
use crate::run::Backend;

const FONT_FAMILY: &str = "sans-serif";
const FONT_DIRS: &[&str] =
    &["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF"];

const NATIVE_COLOR: RGBColor = RGBColor(120, 120, 120);
const HV_COLOR: RGBColor = RGBColor(31, 119, 180);
const XEN_COLOR: RGBColor = RGBColor(255, 127, 14);

/// A bar group: a way of doing the operation, and which backends' figures to show.
struct Group {
    label: [&'static str; 2],
    name: &'static str,
    backends: &'static [Backend],
}

const PAGE_TABLE: &[Group] = &[
    Group { label: ["native", "store + invlpg"], name: "pte_write_invlpg", backends: &[Backend::Bare] },
    Group {
        label: ["PV hypercall", "mmu_update, 1 PTE"],
        name: "mmu_update_single",
        backends: &[Backend::Hv, Backend::Xen],
    },
    Group {
        label: ["PV hypercall, batched", "per PTE of 512"],
        name: "mmu_update_batch_per_pte",
        backends: &[Backend::Hv, Backend::Xen],
    },
    Group {
        label: ["trap-and-emulate", "store to a PT page"],
        name: "trapped_pte_write",
        backends: &[Backend::Hv, Backend::Xen],
    },
];

const PRIVILEGED_READ: &[Group] = &[
    Group { label: ["native", "cpuid"], name: "cpuid_native", backends: &[Backend::Bare] },
    Group {
        label: ["PV hypercall", "xen_version"],
        name: "null_hypercall",
        backends: &[Backend::Hv, Backend::Xen],
    },
    Group {
        label: ["trap-and-emulate", "forced-emulation cpuid"],
        name: "cpuid_emulated",
        backends: &[Backend::Hv, Backend::Xen],
    },
];

fn color(backend: Backend) -> RGBColor {
    match backend {
        Backend::Bare => NATIVE_COLOR,
        Backend::Hv => HV_COLOR,
        _ => XEN_COLOR,
    }
}

fn legend(backend: Backend) -> &'static str {
    match backend {
        Backend::Bare => "bare (native, no hypervisor)",
        Backend::Hv => "hv (our hypervisor)",
        _ => "xen (real Xen 4.17)",
    }
}

/// Reads a DejaVu Sans (and its bold face) and gives them to plotters.
fn register_fonts() -> Result<(), String> {
    let find = |file: &str| FONT_DIRS.iter().map(|dir| Path::new(dir).join(file)).find(|path| path.is_file());
    let regular = find("DejaVuSans.ttf")
        .ok_or("no DejaVuSans.ttf under /usr/share/fonts (install Debian's fonts-dejavu-core)")?;
    for (style, path) in
        [(FontStyle::Normal, Some(regular.clone())), (FontStyle::Bold, find("DejaVuSans-Bold.ttf"))]
    {
        let Some(path) = path else { continue };
        let bytes = std::fs::read(&path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        // plotters keeps fonts for the process's lifetime.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font(FONT_FAMILY, style, bytes)
            .map_err(|_| format!("{} is not a usable font", path.display()))?;
    }
    Ok(())
}

/// Draws the plot into `path`; returns it, or why there is none.
pub fn draw(results: &Results, path: &Path) -> Result<PathBuf, String> {
    register_fonts()?;
    let root = BitMapBackend::new(path, (1400, 720)).into_drawing_area();
    root.fill(&WHITE).map_err(|err| err.to_string())?;
    let root = root
        .titled(
            "Paravirtualization vs trap-and-emulate vs native: instructions per operation",
            (FONT_FAMILY, 26).into_font().style(FontStyle::Bold),
        )
        .map_err(|err| err.to_string())?;
    let runs = match results.runs_per_series {
        1 => "one run".to_string(),
        runs => format!("median of {runs} runs"),
    };
    let note = format!(
        "QEMU TCG -icount shift=0 (1 TSC tick = 1 retired instruction, guest and hypervisor), {runs}; log scale"
    );
    root.draw(&Text::new(note, (20, 4), (FONT_FAMILY, 16).into_font().color(&BLACK.mix(0.7))))
        .map_err(|err| err.to_string())?;
    let body = root.margin(30, 0, 0, 0);
    let (left, right) = body.split_horizontally(760);
    panel(&left, results, "Page-table update (one PTE)", PAGE_TABLE)?;
    panel(&right, results, "Privileged read (CPUID leaf 0)", PRIVILEGED_READ)?;
    root.present().map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    Ok(path.to_path_buf())
}

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    results: &Results,
    title: &str,
    groups: &[Group],
) -> Result<(), String> {
    let value = |backend, name| results.value(backend, Clock::Icount, name);
    let largest = groups
        .iter()
        .flat_map(|group| group.backends.iter().filter_map(|&backend| value(backend, group.name)))
        .fold(10.0f64, f64::max);
    let top = 10f64.powf((largest * 3.0).log10().ceil());
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT_FAMILY, 22))
        .margin(16)
        .margin_bottom(8)
        .x_label_area_size(56)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..groups.len() as f64, (1f64..top).log_scale())
        .map_err(|err| err.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("instructions per operation")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT_FAMILY, 15))
        .axis_desc_style((FONT_FAMILY, 16))
        .draw()
        .map_err(|err| err.to_string())?;

    let label_style = TextStyle::from((FONT_FAMILY, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    let value_style =
        TextStyle::from((FONT_FAMILY, 14).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    for backend in [Backend::Bare, Backend::Hv, Backend::Xen] {
        let mut bars = Vec::new();
        for (index, group) in groups.iter().enumerate() {
            let Some(slot) = group.backends.iter().position(|&b| b == backend) else { continue };
            let Some(figure) = value(backend, group.name) else { continue };
            let width = 0.7 / group.backends.len() as f64;
            let start = index as f64 + 0.15 + slot as f64 * width;
            bars.push((start, start + width, figure.max(1.0)));
        }
        if bars.is_empty() {
            continue;
        }
        let fill = color(backend);
        chart
            .draw_series(
                bars.iter()
                    .map(|&(x0, x1, y)| Rectangle::new([(x0 + 0.01, 1.0), (x1 - 0.01, y)], fill.filled())),
            )
            .map_err(|err| err.to_string())?
            .label(legend(backend))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], fill.filled()));
        chart
            .draw_series(
                bars.iter().map(|&(x0, x1, y)| {
                    Text::new(format!("{y:.0}"), ((x0 + x1) / 2.0, y), value_style.clone())
                }),
            )
            .map_err(|err| err.to_string())?;
    }
    for (index, group) in groups.iter().enumerate() {
        let at = (index as f64 + 0.5, 1.0);
        for (line, text) in group.label.iter().enumerate() {
            let offset = 8 + 20 * line as i32;
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at(at) + Text::new(*text, (0, offset), label_style.clone()),
                ))
                .map_err(|err| err.to_string())?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT_FAMILY, 15))
        .draw()
        .map_err(|err| err.to_string())?;
    Ok(())
}
