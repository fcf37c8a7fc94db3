// Plots of `ember bench` results as a standalone SVG 1.1 document (`ember bench --plot FILE.svg`).
//
// Two panels side by side, prefill tok/s and decode tok/s: the two differ by 5-10x, so on
// one axis decode would be a flat line near zero. Each panel has its own y axis from 0 to a
// "nice" top (ticks 1, 2 or 5 x 10^k apart) with gridlines. The x axis is the parameter that
// varies: threads when the rows differ in threads, else prompt length, else generation
// length (one row: a single tick at its thread count). Every other parameter combination is
// a series (a line with its own colour and marker shape, named in the legend below the
// panels, e.g. "prompt 128, gen 32"); markers sit at the medians, with min-max error bars.
// The x ticks are the measured values; the axis is log2 when they are positive and span a
// factor of 4 or more (thread and length sweeps usually double), else linear.
//
// The document needs nothing outside itself: no CSS, no fonts but the generic sans-serif,
// text XML-escaped (model names may hold & < >), numbers written with std::to_chars (no
// locale), so the same rows always give the same bytes.
//
// The layout is computed separately (layout_bench_plot) so tests can check where each
// point is drawn against the axis mapping.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ember::cli {

// One measured combination: medians and min-max over the timed runs, tok/s. A value that
// is NaN, infinite, negative or above kPlotMaxValue is not drawn (nor its error bar).
struct PlotRow {
  int threads = 0, n_prompt = 0, n_gen = 0;
  double prefill_tps = 0, prefill_min = 0, prefill_max = 0;
  double decode_tps = 0, decode_min = 0, decode_max = 0;
};

// Text above the panels: title (e.g. the model name), subtitle (e.g. kernels, machine,
// repetitions). Either may be empty; too long a line is cut with "...".
struct PlotInfo {
  std::string title;
  std::string subtitle;
};

inline constexpr double kPlotMaxValue = 1e300;  // larger values are not drawn

enum class PlotParam { kThreads, kPrompt, kGen };

// Maps data values in [lo, hi] to pixels in [p_lo, p_hi] (p_hi < p_lo for a y axis, whose
// pixels grow downwards), linearly or, when log, linearly in log2(value).
struct PlotScale {
  double lo = 0, hi = 1;
  double p_lo = 0, p_hi = 1;
  bool log = false;
  double to_pixel(double v) const;
};

// Ticks 0, step, 2 step, ... with step = 1, 2 or 5 x 10^k chosen so that about `target`
// intervals cover [0, max]; the last tick is >= max (to a relative 1e-9). max <= 0 or not
// finite is taken as 1 (an empty or all-zero panel still gets an axis).
struct PlotTicks {
  double step = 1;
  std::vector<double> values;
};
PlotTicks nice_ticks(double max, int target = 5);

// A y tick label: fixed decimals as fine as the step needs ("0", "2.5", "0.05"), with an SI
// suffix when top (the last tick) is >= 10000 ("20k", "1.5M"), in powers of ten from 1e21
// or below 0.01 ("2e21", "5e-3").
std::string format_tick(double v, double step, double top);
// A measured rate with about four significant digits ("12.34", "567.8", "12345", "1.235M").
std::string format_rate(double v);
// Text content or attribute value for XML: & < > " ' escaped, control characters dropped
// (tab and newline become spaces), invalid UTF-8 bytes replaced by U+FFFD.
std::string xml_escape(std::string_view s);

struct PlotSeries {
  std::string label;         // the parameters other than x, e.g. "2 threads, prompt 64, gen 32"
  std::vector<size_t> rows;  // indices into the rows, ascending in x
  double dx = 0;             // px: drawn this far right of its x values (series side by side)
  double legend_x = 0, legend_y = 0;  // left end and baseline of its legend entry
};

struct PlotPanel {
  std::string title;
  double left = 0, top = 0, width = 0, height = 0;  // plot area, px
  PlotScale x, y;
  PlotTicks y_ticks;
};

struct BenchPlotLayout {
  double width = 0, height = 0;  // of the whole document, px
  PlotParam x_param = PlotParam::kThreads;
  std::vector<double> x_values;  // distinct, ascending
  std::vector<PlotSeries> series;
  PlotPanel prefill, decode;
};

// The x value of a row for the chosen parameter.
double plot_x_value(const PlotRow& row, PlotParam p);
// Axes, series and legend positions for the rows (the text of info only decides whether
// there is a subtitle line).
BenchPlotLayout layout_bench_plot(const std::vector<PlotRow>& rows, const PlotInfo& info);
// The SVG document. Each drawn point is a `<g class="point" transform="translate(X,Y)">`
// with X = panel.x.to_pixel(x value) + series.dx and Y = panel.y.to_pixel(median).
std::string render_bench_svg(const std::vector<PlotRow>& rows, const PlotInfo& info);
// render_bench_svg written to path; false with *error set (naming the path) on failure.
bool write_bench_svg(const std::string& path, const std::vector<PlotRow>& rows, const PlotInfo& info,
                     std::string* error);

}  // namespace ember::cli
