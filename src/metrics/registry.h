// A small Prometheus metrics registry: counters, gauges and histograms (fixed
// buckets), each a family of series told apart by label values, rendered in
// the text exposition format 0.0.4. Thread-safe: every method may be called
// from any thread (jobs record from their slot threads while the metrics
// server renders on its own). mu_ guards the families and their series; a
// GaugeFn's reader is called without it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/thread_annotations.h"

namespace cw::metrics {

using LabelValues = std::vector<std::string>;

enum class Kind { kCounter, kGauge, kHistogram };

// Histogram bucket upper bounds for durations in seconds, from a fast step
// (0.1 s) to a long job (2 h).
std::vector<double> DurationBuckets();

class Registry {
 public:
  // Each returns the family's index for Inc/Set/Observe. Names and label
  // names are the caller's constants (not checked beyond the obvious).
  int Counter(std::string name, std::string help, std::vector<std::string> labels = {});
  int Gauge(std::string name, std::string help, std::vector<std::string> labels = {});
  int Histogram(std::string name, std::string help, std::vector<std::string> labels,
                std::vector<double> buckets);
  // A gauge whose value is read when scraped (e.g. memory, busy slots).
  void GaugeFn(std::string name, std::string help, std::function<double()> read);

  // A series must be given as many label values as its family has labels;
  // calls that do not are ignored.
  void Inc(int family, const LabelValues& values = {}, double by = 1);
  void Set(int family, const LabelValues& values, double value);
  void Set(int family, double value) { Set(family, {}, value); }
  void Observe(int family, const LabelValues& values, double value);

  // The value of one counter or gauge series (0 when it does not exist): for
  // tests.
  double Value(int family, const LabelValues& values = {}) const;

  // The whole registry in the text format, families in registration order,
  // series sorted by label values.
  std::string Render() const;

 private:
  struct Series {
    double value = 0;                   // counter, gauge
    std::vector<unsigned long long> counts;  // histogram: per bucket (not cumulative)
    double sum = 0;
    unsigned long long count = 0;
  };
  struct Family {
    std::string name, help;
    Kind kind = Kind::kCounter;
    std::vector<std::string> labels;
    std::vector<double> buckets;
    std::function<double()> read;  // GaugeFn
    std::map<LabelValues, Series> series;
  };
  int Add(std::string name, std::string help, Kind kind, std::vector<std::string> labels = {},
          std::vector<double> buckets = {}, std::function<double()> read = {}) EXCLUDES(mu_);
  Series* Find(int family, const LabelValues& values, Kind kind) REQUIRES(mu_);

  mutable Mutex mu_;
  std::vector<Family> families_ GUARDED_BY(mu_);
};

// Escaping of the text format: label values escape \ " and newline; HELP
// text escapes \ and newline.
std::string EscapeLabelValue(const std::string& value);
std::string EscapeHelp(const std::string& help);
// A sample value as the format writes it: Go's float syntax, +Inf, -Inf, NaN.
std::string FormatValue(double value);

// This process's resident memory in bytes, from /proc/self/statm (0 when it
// cannot be read).
double ResidentMemoryBytes();

}  // namespace cw::metrics
