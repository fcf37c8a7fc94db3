// The `ember bench --plot` SVG (tools/plot_svg.h): nice tick values, the axis mapping,
// that every drawable point is drawn where the mapping puts it, the choice of x axis and
// series, legend entries, XML escaping and well-formedness, and the edge cases (one row,
// no rows, all zeros, NaN / inf / huge values). Pure computation: no fixtures.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <clocale>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tools/plot_svg.h"

namespace ember {
namespace {

using cli::BenchPlotLayout;
using cli::PlotInfo;
using cli::PlotPanel;
using cli::PlotParam;
using cli::PlotRow;

// ---- a minimal XML reader: enough to check well-formedness and find elements --------
struct Element {
  std::string name;
  std::map<std::string, std::string> attrs;  // values with entities decoded
  std::string text;                          // direct text content, entities decoded
};

// Decodes the five predefined entities and numeric references; false on a bare '&' or
// an unknown entity.
bool decode_entities(const std::string& s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      *out += s[i];
      continue;
    }
    const size_t semi = s.find(';', i);
    if (semi == std::string::npos) return false;
    const std::string ent = s.substr(i + 1, semi - i - 1);
    static const std::map<std::string, std::string> kNamed = {
        {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}};
    if (auto it = kNamed.find(ent); it != kNamed.end()) {
      *out += it->second;
    } else if (ent.size() > 1 && ent[0] == '#') {
      *out += '?';  // numeric reference: its value does not matter here
    } else {
      return false;
    }
    i = semi;
  }
  return true;
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' || c == '.';
}

// Parses doc (after an optional <?xml ...?> prolog): every tag closed in order, one root,
// attributes quoted, no raw '<' or bare '&' in text or attribute values. Fills elements
// in document order. Returns "" when well-formed, else what is wrong.
std::string parse_xml(const std::string& doc, std::vector<Element>* elements) {
  size_t i = 0;
  if (doc.rfind("<?xml", 0) == 0) {
    i = doc.find("?>");
    if (i == std::string::npos) return "unterminated prolog";
    i += 2;
  }
  std::vector<size_t> open;  // indices into elements
  int roots = 0;
  while (i < doc.size()) {
    if (doc[i] != '<') {
      const size_t end = doc.find('<', i);
      const std::string raw = doc.substr(i, end == std::string::npos ? std::string::npos : end - i);
      std::string text;
      if (!decode_entities(raw, &text)) return "bad entity in text '" + raw + "'";
      if (open.empty()) {
        if (raw.find_first_not_of(" \n\r\t") != std::string::npos) return "text outside the root: '" + raw + "'";
      } else {
        (*elements)[open.back()].text += text;
      }
      if (end == std::string::npos) break;
      i = end;
      continue;
    }
    if (doc.compare(i, 2, "</") == 0) {
      size_t j = i + 2;
      while (j < doc.size() && is_name_char(doc[j])) ++j;
      const std::string name = doc.substr(i + 2, j - i - 2);
      if (j >= doc.size() || doc[j] != '>') return "bad end tag </" + name;
      if (open.empty() || (*elements)[open.back()].name != name) return "unbalanced </" + name + ">";
      open.pop_back();
      i = j + 1;
      continue;
    }
    Element e;
    size_t j = i + 1;
    while (j < doc.size() && is_name_char(doc[j])) ++j;
    e.name = doc.substr(i + 1, j - i - 1);
    if (e.name.empty()) return "empty tag name at " + std::to_string(i);
    bool self_closing = false;
    for (;;) {
      while (j < doc.size() && std::isspace(static_cast<unsigned char>(doc[j]))) ++j;
      if (j >= doc.size()) return "unterminated <" + e.name;
      if (doc[j] == '>') {
        ++j;
        break;
      }
      if (doc.compare(j, 2, "/>") == 0) {
        self_closing = true;
        j += 2;
        break;
      }
      const size_t k = j;
      while (j < doc.size() && is_name_char(doc[j])) ++j;
      const std::string attr = doc.substr(k, j - k);
      if (attr.empty() || j + 1 >= doc.size() || doc[j] != '=' || doc[j + 1] != '"')
        return "unquoted or malformed attribute in <" + e.name;
      const size_t close = doc.find('"', j + 2);
      if (close == std::string::npos) return "unterminated attribute " + attr;
      const std::string raw = doc.substr(j + 2, close - j - 2);
      if (raw.find('<') != std::string::npos) return "'<' in attribute " + attr;
      std::string value;
      if (!decode_entities(raw, &value)) return "bad entity in attribute " + attr;
      if (!e.attrs.emplace(attr, value).second) return "duplicate attribute " + attr;
      j = close + 1;
    }
    if (open.empty() && ++roots > 1) return "more than one root element";
    elements->push_back(std::move(e));
    if (!self_closing) open.push_back(elements->size() - 1);
    i = j;
  }
  if (!open.empty()) return "unclosed <" + (*elements)[open.back()].name + ">";
  if (roots != 1) return "no root element";
  return "";
}

std::vector<Element> parse_ok(const std::string& doc) {
  std::vector<Element> els;
  const std::string err = parse_xml(doc, &els);
  EXPECT_EQ(err, "") << doc.substr(0, 2000);
  return els;
}

struct Point {
  double x, y;
};

// The centres of the drawn points: <g class="point" transform="translate(X,Y)">.
std::vector<Point> points_of(const std::vector<Element>& els) {
  std::vector<Point> pts;
  for (const Element& e : els) {
    auto c = e.attrs.find("class");
    if (e.name != "g" || c == e.attrs.end() || c->second != "point") continue;
    const std::string& t = e.attrs.at("transform");
    Point p{};
    EXPECT_EQ(std::sscanf(t.c_str(), "translate(%lf,%lf)", &p.x, &p.y), 2) << t;
    pts.push_back(p);
  }
  return pts;
}

std::vector<std::string> texts_of(const std::vector<Element>& els) {
  std::vector<std::string> v;
  for (const Element& e : els)
    if (e.name == "text") v.push_back(e.text);
  return v;
}

bool has_text(const std::vector<Element>& els, const std::string& s) {
  const auto t = texts_of(els);
  return std::find(t.begin(), t.end(), s) != t.end();
}

// Coordinates are written with two decimals: off by at most half a unit of the last
// place, plus a little for the binary value the decimal came from.
constexpr double kCoordTol = 0.005 + 1e-9;

PlotRow make_row(int t, int p, int n, double pre, double dec) {
  // Error bars at -7%/+4% and -5%/+3% of the medians: asymmetric, like real runs.
  return {t, p, n, pre, pre * 0.93, pre * 1.04, dec, dec * 0.95, dec * 1.03};
}

bool drawable(double v) { return std::isfinite(v) && v >= 0 && v <= cli::kPlotMaxValue; }

// Every drawable median of every row has a point at the mapped coordinates of its panel,
// inside the plot area, and there is no other point.
void expect_points_at_mapping(const std::vector<PlotRow>& rows, const PlotInfo& info) {
  const BenchPlotLayout L = cli::layout_bench_plot(rows, info);
  const auto els = parse_ok(cli::render_bench_svg(rows, info));
  std::vector<Point> pts = points_of(els);
  size_t expected = 0;
  for (const auto& s : L.series) {
    for (size_t i : s.rows) {
      const PlotRow& r = rows[i];
      using PanelValue = std::pair<const PlotPanel*, double>;
      for (auto [panel, v] : {PanelValue{&L.prefill, r.prefill_tps}, PanelValue{&L.decode, r.decode_tps}}) {
        if (!drawable(v)) continue;
        ++expected;
        const double x = panel->x.to_pixel(cli::plot_x_value(r, L.x_param)) + s.dx;
        const double y = panel->y.to_pixel(v);
        EXPECT_GE(x, panel->left);
        EXPECT_LE(x, panel->left + panel->width);
        EXPECT_GE(y, panel->top - kCoordTol);
        EXPECT_LE(y, panel->top + panel->height + kCoordTol);
        const bool found = std::any_of(pts.begin(), pts.end(), [&](const Point& p) {
          return std::fabs(p.x - x) <= kCoordTol && std::fabs(p.y - y) <= kCoordTol;
        });
        EXPECT_TRUE(found) << "no point at (" << x << ", " << y << ") for threads " << r.threads << " prompt "
                           << r.n_prompt << " gen " << r.n_gen << " value " << v;
      }
    }
  }
  EXPECT_EQ(pts.size(), expected);
  // The lines join drawn points: every vertex is one.
  for (const Element& e : els) {
    if (e.name != "polyline") continue;
    const std::string& list = e.attrs.at("points");
    size_t pos = 0;
    Point v{};
    int used = 0;
    while (std::sscanf(list.c_str() + pos, "%lf,%lf%n", &v.x, &v.y, &used) == 2) {
      pos += static_cast<size_t>(used);
      EXPECT_TRUE(std::any_of(pts.begin(), pts.end(), [&](const Point& p) {
        return std::fabs(p.x - v.x) <= kCoordTol && std::fabs(p.y - v.y) <= kCoordTol;
      })) << "line vertex (" << v.x << ", " << v.y << ") is not a point";
    }
    EXPECT_EQ(pos, list.size()) << list;
  }
}

// ---- ticks -------------------------------------------------------------------------

// Maxima over many magnitudes and mantissas, including exact multiples of 1, 2 and 5.
std::vector<double> sample_maxima() {
  std::vector<double> v;
  for (int k = -3; k <= 15; ++k)
    for (double m : {0.7, 1.0, 1.3, 2.0, 2.5, 3.7, 5.0, 7.1, 9.99}) v.push_back(m * std::pow(10.0, k));
  v.push_back(1e300);
  return v;
}

TEST(Plot, TicksAreNiceAndCoverTheMax) {
  for (double max : sample_maxima()) {
    const cli::PlotTicks t = cli::nice_ticks(max);
    ASSERT_GE(t.values.size(), 2u) << max;
    // step = m x 10^k with m in {1, 2, 5} (to rounding of the power of ten).
    const double mant = t.step / std::pow(10.0, std::floor(std::log10(t.step) + 1e-9));
    EXPECT_TRUE(std::fabs(mant - 1) < 1e-9 || std::fabs(mant - 2) < 1e-9 || std::fabs(mant - 5) < 1e-9)
        << "step " << t.step << " for max " << max;
    EXPECT_EQ(t.values.front(), 0.0);
    for (size_t i = 0; i < t.values.size(); ++i) EXPECT_NEAR(t.values[i], i * t.step, 1e-12 * t.step * i);
    // Covers the max (to the relative 1e-9 of the contract), with no empty interval on top.
    EXPECT_GE(t.values.back(), max * (1 - 1e-9)) << max;
    EXPECT_LT(t.values[t.values.size() - 2], max) << max;
    // Target 5 intervals: step >= max/5 gives at most 5; the next nice step is at most
    // 2.5x the raw one (2 -> 5), so at least 2.
    const size_t intervals = t.values.size() - 1;
    EXPECT_GE(intervals, 2u) << max;
    EXPECT_LE(intervals, 5u) << max;
  }
}

TEST(Plot, TicksForNoData) {
  // Zero, negative or non-finite maxima give the axis of max 1.
  for (double max : {0.0, -3.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    const cli::PlotTicks t = cli::nice_ticks(max);
    const cli::PlotTicks one = cli::nice_ticks(1.0);
    EXPECT_EQ(t.values, one.values) << max;
    EXPECT_GE(t.values.back(), 1.0);
  }
}

// Reads a tick label back: a number, then an SI suffix or "eN".
double parse_tick(const std::string& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  const std::string rest(end);
  static const std::map<std::string, double> kSi = {{"k", 1e3}, {"M", 1e6}, {"G", 1e9},
                                                    {"T", 1e12}, {"P", 1e15}, {"E", 1e18}};
  if (rest.empty()) return v;
  if (auto it = kSi.find(rest); it != kSi.end()) return v * it->second;
  if (rest[0] == 'e') return v * std::pow(10.0, std::atoi(rest.c_str() + 1));
  ADD_FAILURE() << "unexpected tick label " << s;
  return std::nan("");
}

TEST(Plot, TickLabelsReadBackDistinctAndShort) {
  std::vector<double> maxima = sample_maxima();
  maxima.push_back(1e-5);  // below 0.01: powers of ten
  for (double max : maxima) {
    const cli::PlotTicks t = cli::nice_ticks(max);
    std::set<std::string> seen;
    for (double v : t.values) {
      const std::string label = cli::format_tick(v, t.step, t.values.back());
      EXPECT_TRUE(seen.insert(label).second) << "duplicate label " << label << " for max " << max;
      // A label names its tick to well within a step (the decimals follow the step).
      EXPECT_NEAR(parse_tick(label), v, 1e-6 * t.step) << label << " for max " << max;
      // Fits the 60 px left of the plot at 11 px (~6.6 px per character).
      EXPECT_LE(label.size(), 8u) << label;
    }
  }
  EXPECT_EQ(cli::format_tick(0, 500, 2000), "0");
  EXPECT_EQ(cli::format_tick(2500, 500, 20000), "2.5k");
  EXPECT_EQ(cli::format_tick(0.05, 0.05, 0.2), "0.05");
}

TEST(Plot, RateLabels) {
  // About four significant digits, no exponent below 1e21, nothing for a missing value.
  for (double v : {0.0123, 1.5, 12.345, 567.89, 12345.6, 2.5e6, 7.77e13, 3e20}) {
    const std::string s = cli::format_rate(v);
    EXPECT_NEAR(parse_tick(s), v, v * 5e-4 + 0.005) << s;
    EXPECT_LE(s.size(), 8u) << s;
  }
  EXPECT_EQ(cli::format_rate(std::nan("")), "-");
}

// ---- mapping -----------------------------------------------------------------------

TEST(Plot, LinearScaleMapsEndsAndMiddle) {
  cli::PlotScale y;
  y.lo = 0, y.hi = 250, y.p_lo = 400, y.p_hi = 100;  // pixels grow downwards
  EXPECT_DOUBLE_EQ(y.to_pixel(0), 400);
  EXPECT_DOUBLE_EQ(y.to_pixel(250), 100);
  EXPECT_DOUBLE_EQ(y.to_pixel(125), 250);
  EXPECT_DOUBLE_EQ(y.to_pixel(50), 400 - 300 * 50.0 / 250);
}

TEST(Plot, LogScaleMapsGeometricMiddleToTheMiddle) {
  cli::PlotScale x;
  x.lo = 1, x.hi = 16, x.p_lo = 100, x.p_hi = 500, x.log = true;
  EXPECT_DOUBLE_EQ(x.to_pixel(1), 100);
  EXPECT_DOUBLE_EQ(x.to_pixel(16), 500);
  EXPECT_DOUBLE_EQ(x.to_pixel(4), 300);  // log2: 2 of 4 doublings
  EXPECT_DOUBLE_EQ(x.to_pixel(2), 200);
}

TEST(Plot, DegenerateScaleMapsToTheCentre) {
  cli::PlotScale x;
  x.lo = x.hi = 8, x.p_lo = 100, x.p_hi = 300;
  EXPECT_DOUBLE_EQ(x.to_pixel(8), 200);
}

TEST(Plot, YAxisStartsAtZeroAndCoversTheData) {
  const std::vector<PlotRow> rows = {make_row(1, 128, 32, 812.4, 98.2), make_row(2, 128, 32, 1544, 171.5)};
  const BenchPlotLayout L = cli::layout_bench_plot(rows, {});
  for (const PlotPanel* p : {&L.prefill, &L.decode}) {
    EXPECT_EQ(p->y.lo, 0.0);
    EXPECT_DOUBLE_EQ(p->y.to_pixel(0), p->top + p->height);
    EXPECT_EQ(p->y_ticks.values.front(), 0.0);
    // The top tick is the top of the plot area (the ticks cover the max to 1e-9).
    EXPECT_NEAR(p->y.to_pixel(p->y_ticks.values.back()), p->top, 1e-6 * p->height);
  }
  // The tops cover the largest error-bar end of each panel.
  EXPECT_GE(L.prefill.y.hi, 1544 * 1.04);
  EXPECT_GE(L.decode.y.hi, 171.5 * 1.03);
  EXPECT_DOUBLE_EQ(L.prefill.y.to_pixel(L.prefill.y.hi), L.prefill.top);
  // Separate axes: decode's top is not prefill's (they differ ~9x here).
  EXPECT_LT(L.decode.y.hi, L.prefill.y.hi / 2);
}

// ---- axis and series choice; points where the mapping puts them -------------------

TEST(Plot, ThreadsSweep) {
  const std::vector<PlotRow> rows = {make_row(1, 128, 32, 812.4, 98.2), make_row(2, 128, 32, 1544, 171.5),
                                     make_row(4, 128, 32, 2630.1, 240.7)};
  const BenchPlotLayout L = cli::layout_bench_plot(rows, {});
  EXPECT_EQ(L.x_param, PlotParam::kThreads);
  EXPECT_EQ(L.x_values, (std::vector<double>{1, 2, 4}));
  EXPECT_TRUE(L.prefill.x.log);  // 1..4 spans two doublings
  ASSERT_EQ(L.series.size(), 1u);
  EXPECT_EQ(L.series[0].label, "prompt 128, gen 32");
  expect_points_at_mapping(rows, {"m", "s"});
  // One series: each median is written next to its point.
  const auto els = parse_ok(cli::render_bench_svg(rows, {}));
  for (const PlotRow& r : rows) {
    EXPECT_TRUE(has_text(els, cli::format_rate(r.prefill_tps))) << r.prefill_tps;
    EXPECT_TRUE(has_text(els, cli::format_rate(r.decode_tps))) << r.decode_tps;
  }
  // Tick labels at the measured thread counts, and axis titles with units.
  for (const char* s : {"1", "2", "4", "tokens/s", "threads, log scale"}) EXPECT_TRUE(has_text(els, s)) << s;
}

TEST(Plot, PromptSweep) {
  const std::vector<PlotRow> rows = {make_row(2, 32, 64, 1400, 175), make_row(2, 64, 64, 1530, 172),
                                     make_row(2, 128, 64, 1580, 169), make_row(2, 256, 64, 1490, 161)};
  const BenchPlotLayout L = cli::layout_bench_plot(rows, {});
  EXPECT_EQ(L.x_param, PlotParam::kPrompt);
  EXPECT_EQ(L.x_values, (std::vector<double>{32, 64, 128, 256}));
  ASSERT_EQ(L.series.size(), 1u);
  EXPECT_EQ(L.series[0].label, "2 threads, gen 64");
  expect_points_at_mapping(rows, {});
  // Doublings are evenly spaced on the log axis.
  const cli::PlotScale& x = L.prefill.x;
  EXPECT_NEAR(x.to_pixel(64) - x.to_pixel(32), x.to_pixel(256) - x.to_pixel(128), 1e-9);
  EXPECT_TRUE(has_text(parse_ok(cli::render_bench_svg(rows, {})), "prompt length (tokens), log scale"));
}

TEST(Plot, GenSweepIsLinearWhenNarrow) {
  const std::vector<PlotRow> rows = {make_row(2, 64, 32, 1500, 170), make_row(2, 64, 48, 1500, 168),
                                     make_row(2, 64, 64, 1500, 165)};
  const BenchPlotLayout L = cli::layout_bench_plot(rows, {});
  EXPECT_EQ(L.x_param, PlotParam::kGen);
  EXPECT_FALSE(L.prefill.x.log);  // 32..64 is one doubling
  EXPECT_NEAR(L.prefill.x.to_pixel(48), 0.5 * (L.prefill.x.to_pixel(32) + L.prefill.x.to_pixel(64)), 1e-9);
  expect_points_at_mapping(rows, {});
}

TEST(Plot, ThreadsTimesPromptsMakesSeriesAndLegend) {
  const std::vector<PlotRow> rows = {make_row(1, 64, 32, 790, 99), make_row(1, 128, 32, 812, 97),
                                     make_row(2, 64, 32, 1490, 172), make_row(2, 128, 32, 1544, 170)};
  const BenchPlotLayout L = cli::layout_bench_plot(rows, {});
  EXPECT_EQ(L.x_param, PlotParam::kThreads);
  ASSERT_EQ(L.series.size(), 2u);
  EXPECT_EQ(L.series[0].label, "prompt 64, gen 32");
  EXPECT_EQ(L.series[1].label, "prompt 128, gen 32");
  for (const auto& s : L.series) {
    ASSERT_EQ(s.rows.size(), 2u);
    EXPECT_EQ(rows[s.rows[0]].threads, 1);
    EXPECT_EQ(rows[s.rows[1]].threads, 2);
  }
  // Side by side at the same x, in the order of the legend.
  EXPECT_LT(L.series[0].dx, L.series[1].dx);
  expect_points_at_mapping(rows, {});

  const auto els = parse_ok(cli::render_bench_svg(rows, {}));
  const double plots_bottom = L.prefill.top + L.prefill.height;
  for (const auto& s : L.series) {
    EXPECT_TRUE(has_text(els, s.label)) << s.label;
    // The legend sits below the panels (and their x axis titles), inside the document.
    EXPECT_GT(s.legend_y, plots_bottom + 40);
    EXPECT_LT(s.legend_y, L.height);
    EXPECT_GE(s.legend_x, 0);
    EXPECT_LT(s.legend_x, L.width);
  }
  // Several series: no value labels (they would collide at equal x).
  EXPECT_FALSE(has_text(els, cli::format_rate(1544)));
}

TEST(Plot, ManySeriesWrapTheLegendInsideTheDocument) {
  std::vector<PlotRow> rows;
  for (int t : {1, 2, 4})
    for (int p : {32, 64, 128, 256, 512})
      for (int n : {16, 32}) rows.push_back(make_row(t, p, n, 400.0 * t, 50.0 * t));
  const BenchPlotLayout L = cli::layout_bench_plot(rows, {});
  EXPECT_EQ(L.series.size(), 10u);
  std::set<double> legend_rows;
  for (const auto& s : L.series) {
    legend_rows.insert(s.legend_y);
    EXPECT_LT(s.legend_y, L.height);
  }
  EXPECT_GT(legend_rows.size(), 1u);
  expect_points_at_mapping(rows, {});
}

TEST(Plot, CrowdedXTickLabelsDoNotOverlap) {
  // Threads 1..16 on a log axis: 13..16 are only a few pixels apart.
  std::vector<PlotRow> rows;
  for (int t = 1; t <= 16; ++t) rows.push_back(make_row(t, 64, 16, 300.0 * t, 40.0 * t));
  const BenchPlotLayout L = cli::layout_bench_plot(rows, {});
  const auto els = parse_ok(cli::render_bench_svg(rows, {}));
  const double bottom = L.prefill.top + L.prefill.height;
  // The x tick labels of the prefill panel: numbers below the axis (the y tick label "0"
  // sits a few px below it, the axis title ~40 px).
  std::vector<std::pair<double, std::string>> labels;
  for (const Element& e : els) {
    if (e.name != "text" || e.text.empty() || e.text.find_first_not_of("0123456789") != std::string::npos) continue;
    const double x = std::atof(e.attrs.at("x").c_str()), y = std::atof(e.attrs.at("y").c_str());
    if (y > bottom + 8 && y < bottom + 30 && x < L.prefill.left + L.prefill.width) labels.push_back({x, e.text});
  }
  ASSERT_GE(labels.size(), 5u);
  EXPECT_EQ(labels.front().second, "1");  // the range of the sweep stays readable
  EXPECT_EQ(labels.back().second, "16");
  // Digits of sans-serif fonts are ~0.64 em wide (DejaVu Sans: 0.636): at 11 px, 7.04 px.
  const double digit = 0.64 * 11;
  for (size_t i = 1; i < labels.size(); ++i) {
    const double need = digit * 0.5 * static_cast<double>(labels[i - 1].second.size() + labels[i].second.size());
    EXPECT_GE(labels[i].first - labels[i - 1].first, need) << labels[i - 1].second << " / " << labels[i].second;
  }
  // The medians' values would collide too: not written.
  for (const PlotRow& r : rows) EXPECT_FALSE(has_text(els, cli::format_rate(r.decode_tps))) << r.decode_tps;
}

TEST(Plot, SingleRow) {
  const std::vector<PlotRow> rows = {make_row(2, 128, 64, 1544.2, 171.5)};
  const BenchPlotLayout L = cli::layout_bench_plot(rows, {});
  EXPECT_EQ(L.x_param, PlotParam::kThreads);
  EXPECT_EQ(L.x_values, std::vector<double>{2});
  ASSERT_EQ(L.series.size(), 1u);
  EXPECT_EQ(L.series[0].label, "prompt 128, gen 64");
  expect_points_at_mapping(rows, {});
  // The one point is centred horizontally in its panel.
  for (const PlotPanel* p : {&L.prefill, &L.decode})
    EXPECT_NEAR(p->x.to_pixel(2), p->left + p->width / 2, 1e-9);
}

TEST(Plot, NoRows) {
  const auto els = parse_ok(cli::render_bench_svg({}, {"empty", ""}));
  EXPECT_TRUE(points_of(els).empty());
  EXPECT_TRUE(has_text(els, "no measurements"));
}

// ---- bad values --------------------------------------------------------------------

TEST(Plot, NonFiniteNegativeAndHugeValuesAreSkipped) {
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  std::vector<PlotRow> rows = {make_row(1, 64, 16, 800, 100), make_row(2, 64, 16, 1500, 170),
                               make_row(3, 64, 16, 2100, 200), make_row(4, 64, 16, 2600, 230)};
  rows[1].prefill_tps = nan;
  rows[2].decode_tps = inf;
  rows[3].prefill_tps = -5;
  rows[3].decode_tps = std::numeric_limits<double>::max();
  rows[0].prefill_max = nan;  // no error bar, the point stays
  const std::string doc = cli::render_bench_svg(rows, {});
  for (const char* bad : {"nan", "inf", "NaN", "e+"}) EXPECT_EQ(doc.find(bad), std::string::npos) << bad;
  const auto els = parse_ok(doc);
  EXPECT_EQ(points_of(els).size(), 4u);  // 8 medians, 4 not drawable
  expect_points_at_mapping(rows, {});
  // The axis ignores what is not drawn: decode's top follows 200 (x1.03), not DBL_MAX.
  const BenchPlotLayout L = cli::layout_bench_plot(rows, {});
  EXPECT_LT(L.decode.y.hi, 1000);
  // A missing point breaks the line: prefill's drawable points are t=1 and t=3, not
  // neighbours, so no prefill polyline; decode has t=1,2 then nothing: one polyline.
  size_t polylines = 0;
  for (const Element& e : els) polylines += e.name == "polyline";
  EXPECT_EQ(polylines, 1u);
}

TEST(Plot, AllZero) {
  const std::vector<PlotRow> rows = {make_row(1, 8, 4, 0, 0), make_row(2, 8, 4, 0, 0)};
  const BenchPlotLayout L = cli::layout_bench_plot(rows, {});
  EXPECT_EQ(L.prefill.y_ticks.values, cli::nice_ticks(1).values);
  for (const PlotPanel* p : {&L.prefill, &L.decode}) EXPECT_DOUBLE_EQ(p->y.to_pixel(0), p->top + p->height);
  expect_points_at_mapping(rows, {});
}

TEST(Plot, HugeValuesGetShortLabels) {
  const std::vector<PlotRow> rows = {make_row(1, 8, 4, 3e12, 2e7), make_row(2, 8, 4, 5.5e12, 2.5e7)};
  expect_points_at_mapping(rows, {});
  const auto els = parse_ok(cli::render_bench_svg(rows, {}));
  for (const std::string& t : texts_of(els))
    if (!t.empty() && std::isdigit(static_cast<unsigned char>(t[0]))) {
      EXPECT_LE(t.size(), 8u) << t;
    }
}

// ---- text --------------------------------------------------------------------------

TEST(Plot, XmlEscape) {
  EXPECT_EQ(cli::xml_escape("a & b <c> \"d\" 'e'"), "a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;");
  EXPECT_EQ(cli::xml_escape("caf\xC3\xA9 \xE2\x80\x94 \xF0\x9F\x99\x82"), "caf\xC3\xA9 \xE2\x80\x94 \xF0\x9F\x99\x82");
  EXPECT_EQ(cli::xml_escape("a\tb\nc\x01\x7f"), "a b c");
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(cli::xml_escape("\xFF"), fffd);
  EXPECT_EQ(cli::xml_escape("\xC3"), fffd);                          // cut short
  EXPECT_EQ(cli::xml_escape("\xC0\xAF"), fffd + fffd);               // overlong '/'
  EXPECT_EQ(cli::xml_escape("\xED\xA0\x80"), fffd + fffd + fffd);    // a surrogate
  EXPECT_EQ(cli::xml_escape("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // above U+10FFFF
}

TEST(Plot, TitleIsEscapedAndTheDocumentWellFormed) {
  const std::vector<PlotRow> rows = {make_row(1, 128, 32, 812.4, 98.2), make_row(2, 128, 32, 1544, 171.5)};
  const PlotInfo info{"Q&A <model> \"x\"", "kernels a<b & c>d\x01\xFF"};
  const std::string doc = cli::render_bench_svg(rows, info);
  EXPECT_NE(doc.find("Q&amp;A &lt;model&gt; &quot;x&quot;"), std::string::npos);
  EXPECT_EQ(doc.find("<model>"), std::string::npos);
  const auto els = parse_ok(doc);
  EXPECT_TRUE(has_text(els, info.title));
  EXPECT_TRUE(has_text(els, "kernels a<b & c>d\xEF\xBF\xBD"));
  ASSERT_FALSE(els.empty());
  EXPECT_EQ(els[0].name, "svg");
  EXPECT_EQ(els[0].attrs.at("xmlns"), "http://www.w3.org/2000/svg");
  EXPECT_EQ(els[0].attrs.at("font-family"), "sans-serif");
  // No style sheets, scripts or external references.
  for (const Element& e : els) {
    EXPECT_NE(e.name, "style");
    EXPECT_NE(e.name, "script");
    EXPECT_EQ(e.attrs.count("href"), 0u);
    EXPECT_EQ(e.attrs.count("xlink:href"), 0u);
  }
}

TEST(Plot, LongTitleIsCut) {
  const std::string title(300, 'W');
  const auto els = parse_ok(cli::render_bench_svg({make_row(1, 8, 4, 10, 1)}, {title, ""}));
  bool found = false;
  for (const std::string& t : texts_of(els)) {
    if (t.rfind("WWW", 0) != 0) continue;
    found = true;
    EXPECT_LT(t.size(), title.size());
    EXPECT_EQ(t.substr(t.size() - 3), "...");
  }
  EXPECT_TRUE(found);
}

// ---- determinism and the file ------------------------------------------------------

TEST(Plot, SameRowsSameBytesWhateverTheLocale) {
  const std::vector<PlotRow> rows = {make_row(1, 64, 32, 790.25, 99.5), make_row(2, 64, 32, 1490.75, 172.125)};
  const std::string a = cli::render_bench_svg(rows, {"m", "s"});
  EXPECT_EQ(a, cli::render_bench_svg(rows, {"m", "s"}));
  // A locale with a decimal comma, where the machine has one (numbers go through
  // std::to_chars, which ignores the locale).
  for (const char* name : {"de_DE.UTF-8", "fr_FR.UTF-8", "de_DE", "C.UTF-8"}) {
    if (!std::setlocale(LC_NUMERIC, name)) continue;
    EXPECT_EQ(a, cli::render_bench_svg(rows, {"m", "s"})) << name;
    break;
  }
  std::setlocale(LC_NUMERIC, "C");
}

TEST(Plot, WriteFile) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("ember_plot_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::vector<PlotRow> rows = {make_row(1, 64, 32, 790, 99)};
  std::string error;
  const std::string path = (dir / "bench.svg").string();
  ASSERT_TRUE(cli::write_bench_svg(path, rows, {"m", ""}, &error)) << error;
  std::ifstream f(path, std::ios::binary);
  const std::string got((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, cli::render_bench_svg(rows, {"m", ""}));

  const std::string bad = (dir / "no-such-dir" / "bench.svg").string();
  EXPECT_FALSE(cli::write_bench_svg(bad, rows, {}, &error));
  EXPECT_NE(error.find(bad), std::string::npos) << error;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ember
