#include "plot_svg.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <tuple>

namespace ember::cli {
namespace {

// ---- geometry (px) -----------------------------------------------------------------
// Two panels of kPanelWidth side by side; inside each, room on the left for the tick
// labels and the rotated axis title. Text widths are estimated at kCharWidth em per
// character (sans-serif averages ~0.55 em; over-estimating keeps labels apart).
constexpr double kWidth = 960;
constexpr double kMargin = 16;
constexpr double kPanelGap = 28;
constexpr double kPanelWidth = (kWidth - 2 * kMargin - kPanelGap) / 2;
constexpr double kPlotInsetLeft = 66, kPlotInsetRight = 14;
constexpr double kPlotHeight = 280;
constexpr double kPlotTop = 72;         // without a subtitle line
constexpr double kSubtitleHeight = 18;  // added to kPlotTop when there is one
constexpr double kXPadFraction = 0.08;  // first and last x value this far inside the plot area
constexpr double kCharWidth = 0.6;
constexpr double kLegendFont = 12, kLegendSwatch = 30, kLegendSpacing = 22, kLegendRow = 20;
constexpr double kTitleFont = 17, kSubtitleFont = 12;
constexpr double kBoldCharWidth = 0.7;  // bold glyphs are wider
// Series at the same x are drawn side by side, kDodge apart (at most kDodgeSpread in all),
// so that equal values and overlapping error bars stay visible.
constexpr double kDodge = 7, kDodgeSpread = 28;

const char* const kColors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"};
constexpr size_t kNumColors = sizeof kColors / sizeof kColors[0];
constexpr size_t kNumShapes = 6;

bool drawable(double v) { return std::isfinite(v) && v >= 0 && v <= kPlotMaxValue; }

// ---- numbers without locale --------------------------------------------------------
std::string fixed(double v, int decimals) {
  char buf[400];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  if (r.ec != std::errc()) return "0";
  std::string s(buf, r.ptr);
  // Zero without a sign ("-0.00" from a tiny negative rounding).
  if (s.find_first_not_of("-0.") == std::string::npos) return decimals > 0 ? "0." + std::string(decimals, '0') : "0";
  return s;
}

// Coordinates: two decimals, trailing zeros dropped ("12.5", "40").
std::string num(double v) {
  std::string s = fixed(v, 2);
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

// Decimals that show a multiple of step exactly (step = 1, 2 or 5 x 10^k).
int decimals_for(double step) {
  const double e = std::floor(std::log10(step) + 1e-9);
  return static_cast<int>(std::clamp(-e, 0.0, 12.0));
}

// ---- text --------------------------------------------------------------------------
// A well-formed UTF-8 sequence's length and the range of its second byte, by its first
// byte (Unicode table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF);
// len 0 for a byte that cannot start one.
struct Utf8Lead {
  size_t len;
  unsigned char lo, hi;
};
Utf8Lead utf8_lead(unsigned char c) {
  if (c >= 0xC2 && c <= 0xDF) return {2, 0x80, 0xBF};
  if (c == 0xE0) return {3, 0xA0, 0xBF};
  if (c == 0xED) return {3, 0x80, 0x9F};
  if (c >= 0xE1 && c <= 0xEF) return {3, 0x80, 0xBF};
  if (c == 0xF0) return {4, 0x90, 0xBF};
  if (c >= 0xF1 && c <= 0xF3) return {4, 0x80, 0xBF};
  if (c == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Valid UTF-8 with control characters dropped (tab, newline, return -> space) and
// invalid bytes replaced by U+FFFD.
std::string sanitize_utf8(std::string_view s) {
  std::string o;
  o.reserve(s.size());
  const auto in = [&](size_t i, unsigned char lo, unsigned char hi) {
    return i < s.size() && static_cast<unsigned char>(s[i]) >= lo && static_cast<unsigned char>(s[i]) <= hi;
  };
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == '\t' || c == '\n' || c == '\r') {
        o += ' ';
      } else if (c >= 0x20 && c != 0x7f) {
        o += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    const Utf8Lead lead = utf8_lead(c);
    bool ok = lead.len > 0 && in(i + 1, lead.lo, lead.hi);
    for (size_t k = 2; ok && k < lead.len; ++k) ok = in(i + k, 0x80, 0xBF);
    if (ok) {
      o.append(s.substr(i, lead.len));
      i += lead.len;
    } else {
      o += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return o;
}

size_t code_points(std::string_view s) {
  const auto starts = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; };  // not a continuation
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), starts));
}

// Clean UTF-8 cut to at most max_chars code points ("..." ending a cut line).
std::string fit_chars(std::string s, size_t max_chars) {
  if (code_points(s) <= max_chars) return s;
  const size_t keep = max_chars > 3 ? max_chars - 3 : 0;
  size_t n = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && n++ == keep) break;
  }
  s.resize(i);
  return s + "...";
}

std::string escape_specials(std::string_view s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&apos;"; break;
      default: o += c;
    }
  }
  return o;
}

double text_width(std::string_view s, double font) { return kCharWidth * font * static_cast<double>(code_points(s)); }

const char* param_axis_title(PlotParam p) {
  switch (p) {
    case PlotParam::kThreads: return "threads";
    case PlotParam::kPrompt: return "prompt length (tokens)";
    case PlotParam::kGen: return "generation length (tokens)";
  }
  return "";
}

// "2 threads, prompt 64, gen 32" without the x parameter.
std::string series_label(const PlotRow& r, PlotParam x) {
  std::string s;
  const auto add = [&](std::string part) { s += (s.empty() ? "" : ", ") + part; };
  if (x != PlotParam::kThreads) add(std::to_string(r.threads) + (r.threads == 1 ? " thread" : " threads"));
  if (x != PlotParam::kPrompt) add("prompt " + std::to_string(r.n_prompt));
  if (x != PlotParam::kGen) add("gen " + std::to_string(r.n_gen));
  return s;
}

// ---- SVG writing -------------------------------------------------------------------
class Svg {
 public:
  std::string out;

  void line(double x1, double y1, double x2, double y2, const char* stroke, double width) {
    out += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) +
           "\" stroke=\"" + stroke + "\" stroke-width=\"" + num(width) + "\"/>\n";
  }
  // Text (UTF-8, unescaped) at (x, y) baseline; anchor start|middle|end; extra: more attributes.
  void text(double x, double y, std::string_view s, double size, const char* anchor, const std::string& extra = "") {
    out += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + num(size) + "\" text-anchor=\"" + anchor +
           "\"" + (extra.empty() ? "" : " " + extra) + ">" + escape_specials(s) + "</text>\n";
  }
  // Text with a white outline behind it, readable over lines and gridlines (drawn twice:
  // paint-order is SVG 2).
  void halo_text(double x, double y, std::string_view s, double size, const char* anchor) {
    text(x, y, s, size, anchor, "fill=\"white\" stroke=\"white\" stroke-width=\"3\" stroke-linejoin=\"round\"");
    text(x, y, s, size, anchor, "fill=\"#222\"");
  }
  // Marker shape `shape` centred on the origin of the enclosing group.
  void marker(size_t shape, const char* color) {
    const std::string paint = std::string(" fill=\"") + color + "\" stroke=\"white\" stroke-width=\"1\"/>";
    switch (shape % kNumShapes) {
      case 0: out += "<circle r=\"4.5\"" + paint; break;
      case 1: out += "<rect x=\"-4\" y=\"-4\" width=\"8\" height=\"8\"" + paint; break;
      case 2: out += "<path d=\"M0,-5.5L4.8,3L-4.8,3Z\"" + paint; break;
      case 3: out += "<path d=\"M0,-5.5L5.5,0L0,5.5L-5.5,0Z\"" + paint; break;
      case 4: out += "<path d=\"M0,5.5L4.8,-3L-4.8,-3Z\"" + paint; break;
      default:  // an open circle
        out += std::string("<circle r=\"4\" fill=\"white\" stroke=\"") + color + "\" stroke-width=\"2\"/>";
    }
  }
};

// Which panel a value comes from.
struct Metric {
  double PlotRow::*median;
  double PlotRow::*min;
  double PlotRow::*max;
};
constexpr Metric kPrefill{&PlotRow::prefill_tps, &PlotRow::prefill_min, &PlotRow::prefill_max};
constexpr Metric kDecode{&PlotRow::decode_tps, &PlotRow::decode_min, &PlotRow::decode_max};

// Largest drawable median, min or max of a panel (0 when none).
double panel_max(const std::vector<PlotRow>& rows, const Metric& m) {
  double mx = 0;
  for (const PlotRow& r : rows)
    for (double v : {r.*m.median, r.*m.min, r.*m.max})
      if (drawable(v)) mx = std::max(mx, v);
  return mx;
}

PlotPanel make_panel(const char* title, double left, double top, const std::vector<PlotRow>& rows, const Metric& m,
                     const std::vector<double>& xs, double headroom) {
  PlotPanel p;
  p.title = title;
  p.left = left + kPlotInsetLeft;
  p.top = top;
  p.width = kPanelWidth - kPlotInsetLeft - kPlotInsetRight;
  p.height = kPlotHeight;
  const double pad = kXPadFraction * p.width;
  p.x.p_lo = p.left + pad;
  p.x.p_hi = p.left + p.width - pad;
  if (!xs.empty()) {
    p.x.lo = xs.front();
    p.x.hi = xs.back();
    p.x.log = xs.front() > 0 && xs.back() >= 4 * xs.front();
  }
  const double mx = panel_max(rows, m);
  p.y_ticks = nice_ticks(mx * headroom);
  p.y.lo = 0;
  p.y.hi = std::max(p.y_ticks.values.back(), mx);
  p.y.p_lo = p.top + p.height;
  p.y.p_hi = p.top;
  return p;
}

void draw_series(Svg& svg, const PlotPanel& p, const std::vector<PlotRow>& rows, const PlotSeries& s, size_t index,
                 const Metric& m, PlotParam xp, bool value_labels) {
  const char* color = kColors[index % kNumColors];
  // The line: one polyline per run of drawable points (a gap where a value is missing).
  std::string pts;
  size_t n_pts = 0;
  const auto flush = [&] {
    if (n_pts >= 2)
      svg.out += "<polyline points=\"" + pts + "\" fill=\"none\" stroke=\"" + color +
                 "\" stroke-width=\"2\" stroke-linejoin=\"round\"/>\n";
    pts.clear();
    n_pts = 0;
  };
  for (size_t i : s.rows) {
    const double v = rows[i].*m.median;
    if (!drawable(v)) {
      flush();
      continue;
    }
    pts += (pts.empty() ? "" : " ") + num(p.x.to_pixel(plot_x_value(rows[i], xp)) + s.dx) + "," + num(p.y.to_pixel(v));
    ++n_pts;
  }
  flush();

  for (size_t i : s.rows) {
    const PlotRow& r = rows[i];
    const double v = r.*m.median;
    if (!drawable(v)) continue;
    const double x = p.x.to_pixel(plot_x_value(r, xp)) + s.dx, y = p.y.to_pixel(v);
    double top = y - 5.5, bottom = y + 5.5;  // of the marker and its error bar
    const double lo = r.*m.min, hi = r.*m.max;
    if (drawable(lo) && drawable(hi) && hi >= lo) {
      const double y_lo = p.y.to_pixel(std::min(lo, v)), y_hi = p.y.to_pixel(std::max(hi, v));
      if (y_lo - y_hi >= 1) {
        svg.out += "<path d=\"M" + num(x) + "," + num(y_lo) + "V" + num(y_hi) + "M" + num(x - 4) + "," + num(y_lo) +
                   "H" + num(x + 4) + "M" + num(x - 4) + "," + num(y_hi) + "H" + num(x + 4) + "\" stroke=\"" + color +
                   "\" stroke-width=\"1.3\" fill=\"none\"/>\n";
        top = std::min(top, y_hi);
        bottom = std::max(bottom, y_lo);
      }
    }
    svg.out += "<g class=\"point\" transform=\"translate(" + num(x) + "," + num(y) + ")\">";
    svg.marker(index, color);
    svg.out += "</g>\n";
    if (!value_labels) continue;
    // The median's value above the point, else below it, else to its right.
    const std::string label = format_rate(v);
    if (top - 6 - 11 >= p.top) {
      svg.halo_text(x, top - 6, label, 11, "middle");
    } else if (bottom + 15 <= p.top + p.height - 2) {
      svg.halo_text(x, bottom + 15, label, 11, "middle");
    } else {
      svg.halo_text(x + 8, y + 4, label, 11, "start");
    }
  }
}

void draw_panel(Svg& svg, const BenchPlotLayout& L, const PlotPanel& p, const std::vector<PlotRow>& rows,
                const Metric& m) {
  const double bottom = p.top + p.height, right = p.left + p.width;
  svg.out += "<g>\n";
  svg.text(p.left + p.width / 2, p.top - 10, p.title, 14, "middle", "font-weight=\"bold\"");
  // Gridlines, then the axes over them.
  for (double t : p.y_ticks.values)
    if (t > 0) svg.line(p.left, p.y.to_pixel(t), right, p.y.to_pixel(t), "#e2e2e2", 1);
  for (double x : L.x_values) svg.line(p.x.to_pixel(x), p.top, p.x.to_pixel(x), bottom, "#f0f0f0", 1);
  svg.line(p.left, p.top, p.left, bottom, "#555", 1);
  svg.line(p.left, bottom, right, bottom, "#555", 1);

  const double top_tick = p.y_ticks.values.back();
  for (double t : p.y_ticks.values) {
    const double y = p.y.to_pixel(t);
    svg.line(p.left - 4, y, p.left, y, "#555", 1);
    svg.text(p.left - 7, y + 4, format_tick(t, p.y_ticks.step, top_tick), 11, "end", "fill=\"#333\"");
  }
  // x ticks at the measured values. Labels that would touch a neighbour are left out,
  // keeping the first and the last (the range of the sweep).
  const size_t nx = L.x_values.size();
  std::vector<double> px(nx), half(nx);
  for (size_t i = 0; i < nx; ++i) {
    px[i] = p.x.to_pixel(L.x_values[i]);
    half[i] = 0.5 * text_width(fixed(L.x_values[i], 0), 11);
    svg.line(px[i], bottom, px[i], bottom + 4, "#555", 1);
  }
  const auto apart = [&](size_t a, size_t b) { return px[b] - half[b] >= px[a] + half[a] + 6; };
  for (size_t i = 0, prev = 0; i < nx; ++i) {
    const bool ends = i == 0 || i + 1 == nx;
    if (!ends && (!apart(prev, i) || !apart(i, nx - 1))) continue;
    if (i + 1 == nx && nx > 1 && !apart(prev, i)) continue;  // only when the first touches it
    svg.text(px[i], bottom + 17, fixed(L.x_values[i], 0), 11, "middle", "fill=\"#333\"");
    prev = i;
  }
  std::string x_title = param_axis_title(L.x_param);
  if (p.x.log) x_title += ", log scale";
  svg.text(p.left + p.width / 2, bottom + 38, x_title, 12, "middle");
  svg.text(0, 0, "tokens/s", 12, "middle",
           "transform=\"translate(" + num(p.left - 50) + "," + num(p.top + p.height / 2) + ") rotate(-90)\"");

  bool any = false;
  for (const PlotRow& r : rows) any = any || drawable(r.*m.median);
  if (!any) svg.text(p.left + p.width / 2, p.top + p.height / 2, "no measurements", 13, "middle", "fill=\"#888\"");
  // The medians' values are written next to the points when there is one series (several
  // would collide at equal x) and the points are far enough apart for the labels.
  bool value_labels = L.series.size() == 1;
  double widest = 0;
  for (const PlotRow& r : rows)
    if (drawable(r.*m.median)) widest = std::max(widest, text_width(format_rate(r.*m.median), 11));
  for (size_t i = 1; i < nx; ++i) value_labels = value_labels && px[i] - px[i - 1] >= widest + 6;
  for (size_t i = 0; i < L.series.size(); ++i) draw_series(svg, p, rows, L.series[i], i, m, L.x_param, value_labels);
  svg.out += "</g>\n";
}

}  // namespace

double PlotScale::to_pixel(double v) const {
  const auto f = [this](double u) { return log ? std::log2(u) : u; };
  const double span = f(hi) - f(lo);
  if (!(span > 0)) return 0.5 * (p_lo + p_hi);
  return p_lo + (f(v) - f(lo)) / span * (p_hi - p_lo);
}

PlotTicks nice_ticks(double max, int target) {
  if (!(max > 0) || !std::isfinite(max)) max = 1;
  max = std::min(max, kPlotMaxValue);
  target = std::max(target, 1);
  const double raw = max / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double mult = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10;
  PlotTicks t;
  t.step = mult * mag;
  // The relative 1e-9 keeps max == k x step (up to rounding) from getting an empty extra interval.
  const int n = std::max(1, static_cast<int>(std::ceil(max / t.step * (1 - 1e-9))));
  for (int i = 0; i <= n; ++i) t.values.push_back(i * t.step);
  return t;
}

std::string format_tick(double v, double step, double top) {
  if (v == 0) return "0";
  static const char* const kSi[] = {"k", "M", "G", "T", "P", "E"};
  if (top >= 1e4 && top < 1e21) {
    const int g = std::clamp(static_cast<int>(std::floor(std::log10(top) / 3)), 1, 6);
    const double div = std::pow(10.0, 3 * g);
    return fixed(v / div, decimals_for(step / div)) + kSi[g - 1];
  }
  if (top >= 1e21 || top < 1e-2) {
    const int e = static_cast<int>(std::floor(std::log10(step) + 1e-9));
    const double div = std::pow(10.0, e);
    return fixed(v / div, 0) + "e" + std::to_string(e);
  }
  return fixed(v, decimals_for(step));
}

std::string format_rate(double v) {
  if (!std::isfinite(v)) return "-";
  if (v == 0) return "0";
  if (v >= 1e21) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific, 3);
    return std::string(buf, r.ptr);
  }
  if (v >= 1e6) {
    static const char* const kSi[] = {"M", "G", "T", "P", "E"};
    const int g = std::clamp(static_cast<int>(std::floor(std::log10(v) / 3)), 2, 6);
    const double m = v / std::pow(10.0, 3 * g);
    return fixed(m, m >= 100 ? 1 : m >= 10 ? 2 : 3) + kSi[g - 2];
  }
  return fixed(v, v >= 1000 ? 0 : v >= 100 ? 1 : 2);
}

std::string xml_escape(std::string_view s) { return escape_specials(sanitize_utf8(s)); }

double plot_x_value(const PlotRow& row, PlotParam p) {
  switch (p) {
    case PlotParam::kThreads: return row.threads;
    case PlotParam::kPrompt: return row.n_prompt;
    case PlotParam::kGen: return row.n_gen;
  }
  return 0;
}

BenchPlotLayout layout_bench_plot(const std::vector<PlotRow>& rows, const PlotInfo& info) {
  BenchPlotLayout L;
  L.width = kWidth;
  const auto varies = [&](PlotParam p) {
    for (const PlotRow& r : rows)
      if (plot_x_value(r, p) != plot_x_value(rows.front(), p)) return true;
    return false;
  };
  L.x_param = PlotParam::kThreads;
  if (!rows.empty() && !varies(PlotParam::kThreads)) {
    if (varies(PlotParam::kPrompt)) L.x_param = PlotParam::kPrompt;
    else if (varies(PlotParam::kGen)) L.x_param = PlotParam::kGen;
  }
  for (const PlotRow& r : rows) L.x_values.push_back(plot_x_value(r, L.x_param));
  std::sort(L.x_values.begin(), L.x_values.end());
  L.x_values.erase(std::unique(L.x_values.begin(), L.x_values.end()), L.x_values.end());

  // Series: the rows sharing the parameters other than x, in ascending order of those.
  std::map<std::tuple<int, int, int>, std::vector<size_t>> groups;
  for (size_t i = 0; i < rows.size(); ++i) {
    const PlotRow& r = rows[i];
    groups[{L.x_param == PlotParam::kThreads ? 0 : r.threads, L.x_param == PlotParam::kPrompt ? 0 : r.n_prompt,
            L.x_param == PlotParam::kGen ? 0 : r.n_gen}]
        .push_back(i);
  }
  for (auto& [key, idx] : groups) {
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      return plot_x_value(rows[a], L.x_param) < plot_x_value(rows[b], L.x_param);
    });
    L.series.push_back({series_label(rows[idx.front()], L.x_param), idx});
  }
  const size_t n_series = L.series.size();
  if (n_series > 1) {
    const double d = std::min(kDodge, kDodgeSpread / static_cast<double>(n_series - 1));
    const double mid = 0.5 * static_cast<double>(n_series - 1);
    for (size_t i = 0; i < n_series; ++i) L.series[i].dx = (static_cast<double>(i) - mid) * d;
  }

  // Value labels (one series) need room above the highest point.
  const double headroom = L.series.size() == 1 ? 1.12 : 1.0;
  const double top = kPlotTop + (info.subtitle.empty() ? 0 : kSubtitleHeight);
  L.prefill = make_panel("Prefill (prompt processing)", kMargin, top, rows, kPrefill, L.x_values, headroom);
  L.decode = make_panel("Decode (token generation)", kMargin + kPanelWidth + kPanelGap, top, rows, kDecode,
                        L.x_values, headroom);

  // The legend below both panels, entries left to right, wrapped and centred per row.
  const double first_baseline = top + kPlotHeight + 66;
  const double avail = kWidth - 2 * kMargin;
  std::vector<std::vector<size_t>> legend_rows;
  std::vector<double> row_width;
  for (size_t i = 0; i < L.series.size(); ++i) {
    const double w = kLegendSwatch + text_width(L.series[i].label, kLegendFont);
    if (legend_rows.empty() || row_width.back() + kLegendSpacing + w > avail) {
      legend_rows.push_back({});
      row_width.push_back(-kLegendSpacing);
    }
    legend_rows.back().push_back(i);
    row_width.back() += kLegendSpacing + w;
  }
  for (size_t r = 0; r < legend_rows.size(); ++r) {
    double x = std::max(kMargin, (kWidth - row_width[r]) / 2);
    for (size_t i : legend_rows[r]) {
      L.series[i].legend_x = x;
      L.series[i].legend_y = first_baseline + r * kLegendRow;
      x += kLegendSwatch + text_width(L.series[i].label, kLegendFont) + kLegendSpacing;
    }
  }
  const double legend_end = first_baseline + (legend_rows.empty() ? 0 : (legend_rows.size() - 1) * kLegendRow);
  L.height = legend_end + 24 + 14;  // the footnote line and a margin
  return L;
}

std::string render_bench_svg(const std::vector<PlotRow>& rows, const PlotInfo& info) {
  const BenchPlotLayout L = layout_bench_plot(rows, info);
  Svg svg;
  svg.out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" +
            num(L.width) + "\" height=\"" + num(L.height) + "\" viewBox=\"0 0 " + num(L.width) + " " + num(L.height) +
            "\" font-family=\"sans-serif\">\n";
  const size_t title_chars = static_cast<size_t>((kWidth - 2 * kMargin) / (kBoldCharWidth * kTitleFont));
  const size_t subtitle_chars = static_cast<size_t>((kWidth - 2 * kMargin) / (kCharWidth * kSubtitleFont));
  const std::string title = fit_chars(sanitize_utf8(info.title), title_chars);
  const std::string subtitle = fit_chars(sanitize_utf8(info.subtitle), subtitle_chars);
  svg.out += "<title>" + escape_specials(title.empty() ? "ember bench" : title) + "</title>\n";
  svg.out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!title.empty()) svg.text(kWidth / 2, 30, title, kTitleFont, "middle", "font-weight=\"bold\"");
  if (!subtitle.empty()) svg.text(kWidth / 2, 50, subtitle, kSubtitleFont, "middle", "fill=\"#444\"");

  draw_panel(svg, L, L.prefill, rows, kPrefill);
  draw_panel(svg, L, L.decode, rows, kDecode);

  for (size_t i = 0; i < L.series.size(); ++i) {
    const PlotSeries& s = L.series[i];
    const char* color = kColors[i % kNumColors];
    const double y = s.legend_y - 4;  // the middle of the text's x-height
    svg.line(s.legend_x, y, s.legend_x + 22, y, color, 2);
    svg.out += "<g transform=\"translate(" + num(s.legend_x + 11) + "," + num(y) + ")\">";
    svg.marker(i, color);
    svg.out += "</g>\n";
    svg.text(s.legend_x + kLegendSwatch, s.legend_y, s.label, kLegendFont, "start");
  }
  svg.text(kWidth / 2, L.height - 14, "Markers: median of the timed runs; bars: min to max.", 11, "middle",
           "fill=\"#555\"");
  svg.out += "</svg>\n";
  return svg.out;
}

bool write_bench_svg(const std::string& path, const std::vector<PlotRow>& rows, const PlotInfo& info,
                     std::string* error) {
  const std::string doc = render_bench_svg(rows, info);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    *error = "cannot write '" + path + "': " + std::strerror(errno);
    return false;
  }
  const bool wrote = std::fwrite(doc.data(), 1, doc.size(), f) == doc.size();
  const int err = errno;
  if (std::fclose(f) != 0 || !wrote) {
    *error = "cannot write '" + path + "': " + std::strerror(wrote ? errno : err);
    return false;
  }
  return true;
}

}  // namespace ember::cli
