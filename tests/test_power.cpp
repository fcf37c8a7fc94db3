// tools/power.h: energy sources of `ember bench`, on fake sysfs trees and a fake
// vcgencmd written by each test into its own temporary directory.
//
// Timing-independent checks: sampled sources (hwmon, pmic) are given a constant fake
// power P, for which the integral of the interpolated samples is exactly P x duration
// whatever the sampling times, so the only tolerance is floating-point rounding (1e-9
// relative). RAPL counters are rewritten by the test between two marks, so the expected
// joules are exact.
//
// Unreadable counters: the tests may run as root (here, and in CI containers), where
// chmod 000 does not stop a read. The error path is therefore tested in two root-proof
// ways: energy_uj made a directory (open succeeds, read fails with EISDIR), and an
// injected FileReader that refuses energy_uj with "permission denied" as the kernel does.
// The chmod 000 case runs too when the tests are not root.
#include "tools/power.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace ember::cli {
namespace {

namespace fs = std::filesystem;

// Output of `vcgencmd pmic_read_adc` on a Raspberry Pi 5 (format as printed by the
// firmware: right-aligned names, 8 decimals; EXT5V_V and BATT_V have no current).
struct Rail {
  const char* name;
  int ia, iv;
  double amps, volts;
};
const Rail kPi5Rails[] = {
    {"3V7_WL_SW", 0, 8, 0.10247270, 3.71091200}, {"3V3_SYS", 1, 9, 0.10832820, 3.30910500},
    {"1V8_SYS", 2, 10, 0.15712470, 1.80073100},  {"DDR_VDD2", 3, 11, 0.00585558, 1.10439400},
    {"DDR_VDDQ", 4, 12, 0.00000000, 0.60439500}, {"1V1_SYS", 5, 13, 0.24105470, 1.10805800},
    {"0V8_SW", 6, 14, 0.31424950, 0.80402850},   {"VDD_CORE", 7, 15, 1.42880000, 0.90659250},
    {"3V3_DAC", 17, 20, 0.00000000, 3.31135200}, {"3V3_ADC", 18, 21, 0.00006105, 3.31867800},
    {"0V8_AON", 16, 19, 0.00354090, 0.79882700}, {"HDMI", 22, 23, 0.02002440, 5.07860000},
};

std::string pi5_output() {
  std::string s;
  char line[128];
  for (const Rail& r : kPi5Rails) {
    std::snprintf(line, sizeof line, "%12s_A current(%d)=%.8fA\n", r.name, r.ia, r.amps);
    s += line;
  }
  for (const Rail& r : kPi5Rails) {
    std::snprintf(line, sizeof line, "%12s_V volt(%d)=%.8fV\n", r.name, r.iv, r.volts);
    s += line;
  }
  return s + "     EXT5V_V volt(24)=5.05716000V\n      BATT_V volt(25)=0.00000000V\n";
}

double pi5_watts() {
  double w = 0;
  for (const Rail& r : kPi5Rails) w += r.amps * r.volts;
  return w;
}

class Power : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "ember-power-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    sys_ = dir_ + "/sys";
    bin_ = dir_ + "/bin";
    fs::create_directories(sys_);
    fs::create_directories(bin_);
    opt_.sysfs_root = sys_;
    opt_.path = bin_;  // no vcgencmd unless a test writes one
    opt_.hwmon_period = std::chrono::milliseconds(5);
    opt_.pmic_period = std::chrono::milliseconds(100);
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // Writes `text` to sys_/rel atomically (rename): the sampler never sees half a file.
  void put(const std::string& rel, const std::string& text) {
    const fs::path p = sys_ + "/" + rel;
    fs::create_directories(p.parent_path());
    const std::string tmp = p.string() + ".tmp";
    {
      std::ofstream f(tmp);
      f << text;
    }
    fs::rename(tmp, p);
  }

  void rapl_zone(const std::string& zone, const std::string& name, uint64_t energy, uint64_t range) {
    put("class/powercap/" + zone + "/name", name + "\n");
    put("class/powercap/" + zone + "/energy_uj", std::to_string(energy) + "\n");
    put("class/powercap/" + zone + "/max_energy_range_uj", std::to_string(range) + "\n");
  }

  // Jetson's INA3221: in1..3 (mV) x curr1..3 (mA) at 5 V; in4..7 are shunt voltages
  // without a current.
  void ina3221(bool labels) {
    const char* names[] = {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"};
    const int ma[] = {1200, 400, 300};
    put("class/hwmon/hwmon3/name", "ina3221\n");
    for (int i = 1; i <= 3; ++i) {
      const std::string n = std::to_string(i);
      put("class/hwmon/hwmon3/in" + n + "_input", "5000\n");
      put("class/hwmon/hwmon3/curr" + n + "_input", std::to_string(ma[i - 1]) + "\n");
      if (labels) put("class/hwmon/hwmon3/in" + n + "_label", std::string(names[i - 1]) + "\n");
    }
    put("class/hwmon/hwmon3/in4_input", "12\n");
    put("class/hwmon/hwmon3/in7_input", "30\n");
  }

  void fake_vcgencmd(const std::string& body) {
    const std::string p = bin_ + "/vcgencmd";
    {
      std::ofstream f(p);
      f << "#!/bin/sh\n" << body;
    }
    ASSERT_EQ(::chmod(p.c_str(), 0755), 0);
  }

  static void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

  // Energy of an interval of about `ms` milliseconds measured by `src`.
  static EnergyReading measure(PowerSource& src, int ms) {
    const PowerMark a = src.mark();
    sleep_ms(ms);
    const PowerMark b = src.mark();
    return src.energy(a, b);
  }

  // Constant power P: joules = P x seconds up to rounding.
  static void expect_constant_power(PowerSource& src, double watts) {
    const EnergyReading e = measure(src, 30);
    ASSERT_TRUE(e.ok()) << e.error;
    EXPECT_GE(e.seconds, 0.030);
    EXPECT_NEAR(e.joules, watts * e.seconds, 1e-9 * watts * e.seconds);
  }

  std::string dir_, sys_, bin_;
  PowerOptions opt_;
};

TEST(PowerPieces, CounterDeltaHandlesOneWrap) {
  uint64_t d = 0;
  ASSERT_TRUE(counter_delta(100, 350, 1000, &d));
  EXPECT_EQ(d, 250u);
  ASSERT_TRUE(counter_delta(900, 50, 1000, &d));  // 900 -> 1000 (= 0) -> 50
  EXPECT_EQ(d, 150u);
  EXPECT_FALSE(counter_delta(900, 50, 0, &d));     // backwards, range unknown
  EXPECT_FALSE(counter_delta(2000, 50, 1000, &d));  // beyond the range: not a wrap
}

TEST(PowerPieces, ParsePmicAdcSumsRailsWithVoltageAndCurrent) {
  double w = 0;
  int rails = 0;
  ASSERT_TRUE(parse_pmic_adc(pi5_output(), &w, &rails));
  EXPECT_EQ(rails, 12);  // EXT5V and BATT have a voltage only
  EXPECT_NEAR(w, pi5_watts(), 1e-12);
  // A rail given in either order, garbage ignored.
  ASSERT_TRUE(parse_pmic_adc("junk\n X_V volt(1)=2.0V\n X_A current(0)=1.5A\nY_A current(3)=9A\n", &w, &rails));
  EXPECT_EQ(rails, 1);
  EXPECT_DOUBLE_EQ(w, 3.0);
  // A firmware without the command.
  EXPECT_FALSE(parse_pmic_adc("error=2 error_msg=\"Invalid arguments\"\n", &w, &rails));
  EXPECT_FALSE(parse_pmic_adc("", &w, &rails));
}

TEST(PowerPieces, IntegratePowerIsTrapezoidsHeldAtTheEnds) {
  const std::vector<PowerSample> s = {{0, 2}, {1, 4}, {3, 0}};
  EXPECT_DOUBLE_EQ(integrate_power(s, 0, 3), 3.0 + 4.0);  // (2+4)/2*1 + (4+0)/2*2
  // [0.5, 2]: P(0.5) = 3, P(2) = 2: (3+4)/2*0.5 + (4+2)/2*1.
  EXPECT_DOUBLE_EQ(integrate_power(s, 0.5, 2), 1.75 + 3.0);
  EXPECT_DOUBLE_EQ(integrate_power(s, -1, 0), 2.0);  // before the first sample: held
  EXPECT_DOUBLE_EQ(integrate_power(s, 3, 5), 0.0);   // after the last: held (0 W)
  EXPECT_DOUBLE_EQ(integrate_power(s, 5, 7), 0.0);
  EXPECT_DOUBLE_EQ(integrate_power({{10, 5}}, 1, 3), 10.0);
  EXPECT_DOUBLE_EQ(integrate_power(s, 2, 2), 0.0);
}

TEST_F(Power, RaplSumsPackageZonesAcrossAWrap) {
  const uint64_t range = 262143328850;
  rapl_zone("intel-rapl:0", "package-0", range - 1000, range);
  rapl_zone("intel-rapl:0:0", "core", 5, range);         // part of package 0
  rapl_zone("intel-rapl:1", "package-1", 1000000, range);
  rapl_zone("intel-rapl:2", "psys", 7, range);           // contains the packages
  rapl_zone("intel-rapl-mmio:0", "package-0", 9, range);  // package 0 again
  fs::create_directories(sys_ + "/class/powercap/intel-rapl");  // the control type: no counter

  PowerDetection d = detect_power_source("auto", opt_);
  ASSERT_TRUE(d.source) << d.reason;
  EXPECT_STREQ(d.source->name(), "rapl");
  EXPECT_EQ(d.source->detail(), "intel-rapl:0 (package-0), intel-rapl:1 (package-1)");

  const PowerMark a = d.source->mark();
  ASSERT_EQ(a.error, "");
  put("class/powercap/intel-rapl:0/energy_uj", "500\n");  // wrapped: 1000 + 500 uJ
  put("class/powercap/intel-rapl:1/energy_uj", "3500000\n");  // +2500000 uJ
  put("class/powercap/intel-rapl:0:0/energy_uj", "99999999\n");
  put("class/powercap/intel-rapl:2/energy_uj", "99999999\n");
  put("class/powercap/intel-rapl-mmio:0/energy_uj", "99999999\n");
  const PowerMark b = d.source->mark();
  const EnergyReading e = d.source->energy(a, b);
  ASSERT_TRUE(e.ok()) << e.error;
  EXPECT_DOUBLE_EQ(e.joules, (1000 + 500 + 2500000) * 1e-6);
  EXPECT_GE(e.seconds, 0);
}

TEST_F(Power, RaplCounterThatCannotBeReadIsNotAvailable) {
  // energy_uj a directory: opens, then fails to read, even as root.
  put("class/powercap/intel-rapl:0/name", "package-0\n");
  fs::create_directories(sys_ + "/class/powercap/intel-rapl:0/energy_uj");
  PowerDetection d = detect_power_source("auto", opt_);
  EXPECT_FALSE(d.source);
  const std::string path = sys_ + "/class/powercap/intel-rapl:0/energy_uj";
  EXPECT_EQ(d.reason, "rapl: " + path + ": is a directory");

  // Permission denied, as a non-root user gets on kernels >= 5.10.
  fs::remove_all(path);
  put("class/powercap/intel-rapl:0/energy_uj", "123\n");
  opt_.read = [](const std::string& p, std::string* out, std::string* error) {
    if (p.size() >= 10 && p.compare(p.size() - 10, 10, "/energy_uj") == 0) {
      *error = p + ": permission denied";
      return false;
    }
    return read_small_file(p, out, error);
  };
  d = detect_power_source("rapl", opt_);
  EXPECT_FALSE(d.source);
  EXPECT_EQ(d.reason, "rapl: " + path + ": permission denied");
  // auto: a sensor that exists but cannot be read is the reason given.
  d = detect_power_source("auto", opt_);
  EXPECT_FALSE(d.source);
  EXPECT_EQ(d.reason, "rapl: " + path + ": permission denied");
}

TEST_F(Power, RaplChmod000IsPermissionDenied) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads mode-000 files (covered by the injected reader above)";
  rapl_zone("intel-rapl:0", "package-0", 123, 1000);
  const std::string path = sys_ + "/class/powercap/intel-rapl:0/energy_uj";
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  PowerDetection d = detect_power_source("auto", opt_);
  EXPECT_FALSE(d.source);
  EXPECT_EQ(d.reason, "rapl: " + path + ": permission denied");
}

TEST_F(Power, RaplFailingAfterDetectionIsAnErrorNotACrash) {
  rapl_zone("intel-rapl:0", "package-0", 5000, 0);  // range unknown
  PowerDetection d = detect_power_source("rapl", opt_);
  ASSERT_TRUE(d.source) << d.reason;
  const PowerMark a = d.source->mark();
  put("class/powercap/intel-rapl:0/energy_uj", "10\n");  // backwards, no range to wrap at
  EnergyReading e = d.source->energy(a, d.source->mark());
  EXPECT_FALSE(e.ok());
  EXPECT_NE(e.error.find("went from 5000 down to 10"), std::string::npos) << e.error;

  const std::string path = sys_ + "/class/powercap/intel-rapl:0/energy_uj";
  fs::remove(path);
  fs::create_directories(path);
  e = d.source->energy(a, d.source->mark());
  EXPECT_EQ(e.error, path + ": is a directory");
}

TEST_F(Power, HwmonPowerInputIsIntegrated) {
  put("class/hwmon/hwmon0/name", "acpitz\n");
  put("class/hwmon/hwmon0/temp1_input", "45000\n");
  put("class/hwmon/hwmon1/name", "power_meter\n");
  put("class/hwmon/hwmon1/power1_input", "5000000\n");  // uW: 5 W
  PowerDetection d = detect_power_source("auto", opt_);
  ASSERT_TRUE(d.source) << d.reason;
  EXPECT_STREQ(d.source->name(), "hwmon");
  EXPECT_EQ(d.source->detail(), "hwmon1/power_meter power1");
  expect_constant_power(*d.source, 5.0);
}

TEST_F(Power, HwmonPrefersPowerChannelsOverVoltageTimesCurrent) {
  put("class/hwmon/hwmon0/name", "ina219\n");
  put("class/hwmon/hwmon0/in1_input", "5000\n");
  put("class/hwmon/hwmon0/curr1_input", "400\n");
  put("class/hwmon/hwmon0/power1_input", "2000000\n");  // the same channel, computed by the driver
  PowerDetection d = detect_power_source("hwmon", opt_);
  ASSERT_TRUE(d.source) << d.reason;
  expect_constant_power(*d.source, 2.0);
}

TEST_F(Power, HwmonIna3221UsesTheBoardInputWhenLabelled) {
  ina3221(true);
  PowerDetection d = detect_power_source("auto", opt_);
  ASSERT_TRUE(d.source) << d.reason;
  EXPECT_EQ(d.source->detail(), "hwmon3/ina3221 in1*curr1 (VDD_IN)");  // the rails are parts of it
  expect_constant_power(*d.source, 5.0 * 1.2);
}

TEST_F(Power, HwmonIna3221SumsChannelsWithoutLabels) {
  ina3221(false);
  PowerDetection d = detect_power_source("auto", opt_);
  ASSERT_TRUE(d.source) << d.reason;
  EXPECT_EQ(d.source->detail(), "hwmon3/ina3221 in1*curr1, hwmon3/ina3221 in2*curr2, hwmon3/ina3221 in3*curr3");
  expect_constant_power(*d.source, 5.0 * (1.2 + 0.4 + 0.3));
}

TEST_F(Power, HwmonChangingPowerStaysBetweenItsLevels) {
  put("class/hwmon/hwmon0/power1_input", "2000000\n");
  PowerDetection d = detect_power_source("hwmon", opt_);
  ASSERT_TRUE(d.source) << d.reason;
  const PowerMark a = d.source->mark();
  sleep_ms(30);
  put("class/hwmon/hwmon0/power1_input", "6000000\n");
  sleep_ms(30);
  const EnergyReading e = d.source->energy(a, d.source->mark());
  ASSERT_TRUE(e.ok()) << e.error;
  // The interpolated curve lies between 2 W and 6 W wherever the samples fell.
  EXPECT_GE(e.joules, 2.0 * e.seconds * (1 - 1e-9));
  EXPECT_LE(e.joules, 6.0 * e.seconds * (1 + 1e-9));
}

TEST_F(Power, HwmonSensorVanishingIsAnErrorAndStopsCleanly) {
  put("class/hwmon/hwmon0/power1_input", "1000000\n");
  PowerDetection d = detect_power_source("hwmon", opt_);
  ASSERT_TRUE(d.source) << d.reason;
  const PowerMark a = d.source->mark();
  fs::remove(sys_ + "/class/hwmon/hwmon0/power1_input");
  sleep_ms(10);
  const EnergyReading e = d.source->energy(a, d.source->mark());
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.error, sys_ + "/class/hwmon/hwmon0/power1_input: no such file or directory");
  d.source.reset();  // joins the sampler, which is failing every 5 ms
}

TEST_F(Power, SamplerStartsAndStopsRepeatedly) {
  put("class/hwmon/hwmon0/power1_input", "1000000\n");
  opt_.hwmon_period = std::chrono::milliseconds(1);
  for (int i = 0; i < 20; ++i) {
    PowerDetection d = detect_power_source("hwmon", opt_);
    ASSERT_TRUE(d.source) << d.reason;
    if (i % 2) sleep_ms(2);
  }
}

TEST_F(Power, PmicFakeVcgencmdOnPath) {
  fake_vcgencmd("[ \"$1\" = pmic_read_adc ] || exit 2\necho 'stray stderr' >&2\n"
                "cat <<'EOF'\n" + pi5_output() + "EOF\n");
  PowerDetection d = detect_power_source("auto", opt_);
  ASSERT_TRUE(d.source) << d.reason;
  EXPECT_STREQ(d.source->name(), "pmic");
  EXPECT_NE(d.source->detail().find(bin_ + "/vcgencmd"), std::string::npos) << d.source->detail();
  expect_constant_power(*d.source, pi5_watts());
  // Two intervals back to back, as bench measures prefill then decode.
  const PowerMark a = d.source->mark(), b = d.source->mark(), c = d.source->mark();
  const EnergyReading e1 = d.source->energy(a, b), e2 = d.source->energy(b, c);
  ASSERT_TRUE(e1.ok() && e2.ok()) << e1.error << e2.error;
  EXPECT_NEAR(e1.joules + e2.joules, pi5_watts() * (c.t - a.t), 1e-9);
}

TEST_F(Power, PmicCommandFailingIsNotAvailable) {
  fake_vcgencmd("echo 'error=1 error_msg=\"Command not registered\"'\n");
  PowerDetection d = detect_power_source("pmic", opt_);
  EXPECT_FALSE(d.source);
  EXPECT_EQ(d.reason, "pmic: " + bin_ +
                          "/vcgencmd pmic_read_adc: no rail with both a current and a voltage (not a Raspberry Pi 5?)");
  fake_vcgencmd("exit 3\n");
  d = detect_power_source("auto", opt_);
  EXPECT_FALSE(d.source);
  EXPECT_EQ(d.reason, "pmic: " + bin_ + "/vcgencmd pmic_read_adc: exited with status 3");
}

TEST_F(Power, AutoTakesRaplThenHwmonThenPmic) {
  fake_vcgencmd("cat <<'EOF'\n" + pi5_output() + "EOF\n");
  put("class/hwmon/hwmon0/power1_input", "1000000\n");
  rapl_zone("intel-rapl:0", "package-0", 1, 100);
  PowerDetection d = detect_power_source("auto", opt_);
  ASSERT_TRUE(d.source) << d.reason;
  EXPECT_STREQ(d.source->name(), "rapl");
  fs::remove_all(sys_ + "/class/powercap");
  d = detect_power_source("auto", opt_);
  ASSERT_TRUE(d.source) << d.reason;
  EXPECT_STREQ(d.source->name(), "hwmon");
  d = detect_power_source("pmic", opt_);
  ASSERT_TRUE(d.source) << d.reason;
  EXPECT_STREQ(d.source->name(), "pmic");
}

TEST_F(Power, NothingPresentIsNotAvailable) {
  PowerDetection d = detect_power_source("auto", opt_);
  EXPECT_FALSE(d.source);
  EXPECT_EQ(d.reason, "no power sensor: rapl: no intel-rapl:N zone in " + sys_ +
                          "/class/powercap; hwmon: no powerN_input or inN_input+currN_input in " + sys_ +
                          "/class/hwmon; pmic: no vcgencmd on PATH");
  d = detect_power_source("hwmon", opt_);
  EXPECT_FALSE(d.source);
  EXPECT_EQ(d.reason, "hwmon: no powerN_input or inN_input+currN_input in " + sys_ + "/class/hwmon");
  rapl_zone("intel-rapl:0", "package-0", 1, 100);
  d = detect_power_source("none", opt_);
  EXPECT_FALSE(d.source);
  EXPECT_EQ(d.reason, "disabled (--energy none)");
  EXPECT_TRUE(is_power_source_kind("pmic"));
  EXPECT_FALSE(is_power_source_kind("ina"));
}

TEST_F(Power, OptionsFromEnvironment) {
  ASSERT_EQ(::setenv("EMBER_SYSFS_ROOT", sys_.c_str(), 1), 0);
  EXPECT_EQ(power_options_from_env().sysfs_root, sys_);
  ASSERT_EQ(::unsetenv("EMBER_SYSFS_ROOT"), 0);
  EXPECT_EQ(power_options_from_env().sysfs_root, "/sys");
  const char* path = std::getenv("PATH");
  EXPECT_EQ(power_options_from_env().path, path ? path : "");
}

}  // namespace
}  // namespace ember::cli
