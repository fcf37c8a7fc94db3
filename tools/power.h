// Energy measurement for `ember bench`: a small interface over the power sensors that
// small machines expose, with automatic detection. Each source either reads real
// counters or says why it cannot ("n/a (REASON)"); nothing here throws or exits.
//
// Sources, in the order auto-detection tries them:
//   rapl   Linux powercap RAPL: SYSFS/class/powercap/intel-rapl:N/energy_uj, cumulative
//          micro-joules per package (also used by AMD Zen). Only the top-level package
//          zones are summed: their subzones (intel-rapl:N:M, core/uncore/dram) are parts
//          of the package, "psys" (whole platform) contains the packages, and
//          intel-rapl-mmio:N is a second interface to the same package counter; counting
//          any of them too would count energy twice. A counter that decreased between two
//          marks wrapped at max_energy_range_uj (at most one wrap per interval: ~40 min
//          at 100 W for a 2^38 uJ range). energy_uj is root-only on kernels >= 5.10.
//   hwmon  SYSFS/class/hwmon/hwmon*: per device, powerN_input (uW) if it has any, else
//          inN_input (mV) x currN_input (mA) for every N that has both (INA3221 on Jetson:
//          in1..3 bus voltages pair with curr1..3; in4..7 shunt voltages have no current).
//          Summed over devices, except that when channel labels (powerN_label / inN_label)
//          name a board input (ending in "_IN": Jetson's VDD_IN, POM_5V_IN), only those
//          are kept: the other rails are parts of that input.
//   pmic   Raspberry Pi 5: `vcgencmd pmic_read_adc` (vcgencmd found on PATH), lines such as
//              "  VDD_CORE_A current(7)=1.42880000A" and "  VDD_CORE_V volt(15)=0.90659250V";
//          the sum over rails of V x I for every rail with both. This is what the PMIC
//          delivers on its rails: conversion losses and the 5 V peripherals (USB, fan)
//          are not in it, so it is below wall power; no empirical correction is applied.
//
// rapl is a counter source: energy = counter at the end - counter at the start. hwmon and
// pmic are instantaneous: a background thread samples the power at a fixed period
// (hwmon 20 ms, pmic 200 ms: one vcgencmd takes 10-50 ms) and the energy of an interval
// is the integral of the piecewise-linear curve through the samples (trapezoids), held
// constant before the first and after the last sample. A constant power P therefore gives
// exactly P x duration, however short the interval. energy() waits for the first sample
// after the interval (up to about one period) so both ends are interpolated.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ember::cli {

// A boundary of a measured interval: when (seconds on the steady clock) and, for counter
// sources, the raw counters then. error: the counters could not be read.
struct PowerMark {
  double t = 0;
  std::vector<uint64_t> counters;
  std::string error;
};

struct EnergyReading {
  double joules = 0;
  double seconds = 0;  // length of the interval
  std::string error;   // "" when joules is valid
  bool ok() const { return error.empty(); }
};

class PowerSource {
 public:
  virtual ~PowerSource() = default;
  // "rapl", "hwmon" or "pmic".
  virtual const char* name() const = 0;
  // What is summed, for the report: "intel-rapl:0 package-0, intel-rapl:1 package-1".
  virtual std::string detail() const = 0;
  // Marks an interval boundary now. Cheap (a clock read, or one file read per zone).
  virtual PowerMark mark() = 0;
  // Energy between two marks of this source, a before b. Thread-compatible: call from one
  // thread (the sampler of instantaneous sources is internal).
  virtual EnergyReading energy(const PowerMark& a, const PowerMark& b) = 0;
};

// Reads a whole (small) file; false with *error = "PATH: reason" on failure.
using FileReader = std::function<bool(const std::string& path, std::string* out, std::string* error)>;
// The real one (fopen/fread). Errors name the path and say e.g. "permission denied".
bool read_small_file(const std::string& path, std::string* out, std::string* error);

struct PowerOptions {
  std::string sysfs_root = "/sys";  // tests point this at a fake tree
  std::string path;                 // directories searched for vcgencmd, ':'-separated
  FileReader read = read_small_file;
  std::chrono::milliseconds hwmon_period{20};
  std::chrono::milliseconds pmic_period{200};
};

// sysfs_root from $EMBER_SYSFS_ROOT (default "/sys"), path from $PATH.
PowerOptions power_options_from_env();

struct PowerDetection {
  std::unique_ptr<PowerSource> source;  // null: energy is n/a
  std::string reason;                   // why it is n/a, e.g. "rapl: /sys/.../energy_uj: permission denied"
};

// kind: "auto" (rapl, then hwmon, then pmic: the first that can be read), "rapl", "hwmon",
// "pmic", or "none". A source is only returned after one successful reading.
PowerDetection detect_power_source(std::string_view kind, const PowerOptions& options);

// True for the kinds detect_power_source accepts.
bool is_power_source_kind(std::string_view kind);

// ---- pieces, exposed for the tests -------------------------------------------------

// Counter increase from `before` to `after`; a smaller `after` means the counter wrapped
// once at `range` (max_energy_range_uj). false when it went backwards with no range known
// (or beyond it).
bool counter_delta(uint64_t before, uint64_t after, uint64_t range, uint64_t* delta);

// Sum of V x I (watts) over the rails of `vcgencmd pmic_read_adc` output that have both a
// current (NAME_A current(N)=xA) and a voltage (NAME_V volt(N)=xV); *rails: how many.
// false when no rail has both.
bool parse_pmic_adc(std::string_view text, double* watts, int* rails);

struct PowerSample {
  double t = 0;      // seconds, steady clock
  double watts = 0;
};

// Integral over [t0, t1] of the piecewise-linear curve through `samples` (sorted by t,
// non-empty), constant before the first and after the last sample; joules.
double integrate_power(const std::vector<PowerSample>& samples, double t0, double t1);

}  // namespace ember::cli
