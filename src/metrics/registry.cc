#include "metrics/registry.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include <fmt/format.h>

namespace cw::metrics {

std::vector<double> DurationBuckets() {
  return {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200};
}

int Registry::Add(std::string name, std::string help, Kind kind, std::vector<std::string> labels,
                  std::vector<double> buckets, std::function<double()> read) {
  Family f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.kind = kind;
  f.labels = std::move(labels);
  std::sort(buckets.begin(), buckets.end());
  f.buckets = std::move(buckets);
  f.read = std::move(read);
  MutexLock lock(mu_);
  families_.push_back(std::move(f));
  return static_cast<int>(families_.size()) - 1;
}

int Registry::Counter(std::string name, std::string help, std::vector<std::string> labels) {
  return Add(std::move(name), std::move(help), Kind::kCounter, std::move(labels));
}

int Registry::Gauge(std::string name, std::string help, std::vector<std::string> labels) {
  return Add(std::move(name), std::move(help), Kind::kGauge, std::move(labels));
}

int Registry::Histogram(std::string name, std::string help, std::vector<std::string> labels,
                        std::vector<double> buckets) {
  return Add(std::move(name), std::move(help), Kind::kHistogram, std::move(labels),
             std::move(buckets));
}

void Registry::GaugeFn(std::string name, std::string help, std::function<double()> read) {
  Add(std::move(name), std::move(help), Kind::kGauge, {}, {}, std::move(read));
}

Registry::Series* Registry::Find(int family, const LabelValues& values, Kind kind) {
  if (family < 0 || static_cast<std::size_t>(family) >= families_.size()) return nullptr;
  Family& f = families_[static_cast<std::size_t>(family)];
  if (f.kind != kind || f.read || values.size() != f.labels.size()) return nullptr;
  Series& s = f.series[values];
  if (kind == Kind::kHistogram && s.counts.empty()) s.counts.assign(f.buckets.size(), 0);
  return &s;
}

void Registry::Inc(int family, const LabelValues& values, double by) {
  MutexLock lock(mu_);
  if (Series* s = Find(family, values, Kind::kCounter)) {
    if (by >= 0) s->value += by;  // counters only go up
  } else if (Series* g = Find(family, values, Kind::kGauge)) {
    g->value += by;
  }
}

void Registry::Set(int family, const LabelValues& values, double value) {
  MutexLock lock(mu_);
  if (Series* s = Find(family, values, Kind::kGauge)) s->value = value;
}

void Registry::Observe(int family, const LabelValues& values, double value) {
  MutexLock lock(mu_);
  Series* s = Find(family, values, Kind::kHistogram);
  if (!s) return;
  const auto& buckets = families_[static_cast<std::size_t>(family)].buckets;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    if (value <= buckets[i]) {
      ++s->counts[i];
      break;
    }
  }
  s->sum += value;
  ++s->count;
}

double Registry::Value(int family, const LabelValues& values) const {
  MutexLock lock(mu_);
  if (family < 0 || static_cast<std::size_t>(family) >= families_.size()) return 0;
  const Family& f = families_[static_cast<std::size_t>(family)];
  auto it = f.series.find(values);
  return it == f.series.end() ? 0 : it->second.value;
}

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

std::string EscapeHelp(const std::string& help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

namespace {

// {a="x",b="y"}, with `extra` (e.g. le="0.5") last; "" when there are none.
std::string LabelSet(const std::vector<std::string>& names, const LabelValues& values,
                     const std::string& extra = "") {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += (out.empty() ? "" : ",") + names[i] + "=\"" + EscapeLabelValue(values[i]) + "\"";
  }
  if (!extra.empty()) out += (out.empty() ? "" : ",") + extra;
  return out.empty() ? "" : "{" + out + "}";
}

const char* TypeName(Kind kind) {
  switch (kind) {
    case Kind::kCounter: return "counter";
    case Kind::kGauge: return "gauge";
    case Kind::kHistogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

std::string Registry::Render() const {
  // Read the scrape-time gauges first, outside the lock: they may take locks
  // of their own.
  std::vector<std::function<double()>> readers;
  {
    MutexLock lock(mu_);
    for (const Family& f : families_) readers.push_back(f.read);
  }
  std::vector<double> read_values;
  for (const auto& read : readers) read_values.push_back(read ? read() : 0);

  MutexLock lock(mu_);
  std::string out;
  for (std::size_t i = 0; i < families_.size(); ++i) {
    const Family& f = families_[i];
    out += "# HELP " + f.name + " " + EscapeHelp(f.help) + "\n";
    out += "# TYPE " + f.name + " " + TypeName(f.kind) + "\n";
    if (f.read) {
      out += f.name + " " + FormatValue(i < read_values.size() ? read_values[i] : 0) + "\n";
      continue;
    }
    for (const auto& [values, s] : f.series) {
      if (f.kind != Kind::kHistogram) {
        out += f.name + LabelSet(f.labels, values) + " " + FormatValue(s.value) + "\n";
        continue;
      }
      unsigned long long cumulative = 0;
      for (std::size_t b = 0; b < f.buckets.size(); ++b) {
        cumulative += s.counts[b];
        out += f.name + "_bucket" +
               LabelSet(f.labels, values, "le=\"" + FormatValue(f.buckets[b]) + "\"") + " " +
               std::to_string(cumulative) + "\n";
      }
      out += f.name + "_bucket" + LabelSet(f.labels, values, "le=\"+Inf\"") + " " +
             std::to_string(s.count) + "\n";
      out += f.name + "_sum" + LabelSet(f.labels, values) + " " + FormatValue(s.sum) + "\n";
      out += f.name + "_count" + LabelSet(f.labels, values) + " " + std::to_string(s.count) +
             "\n";
    }
  }
  return out;
}

double ResidentMemoryBytes() {
  std::ifstream statm("/proc/self/statm");
  long long size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  const long page = sysconf(_SC_PAGESIZE);
  return static_cast<double>(resident) * static_cast<double>(page > 0 ? page : 4096);
}

}  // namespace cw::metrics
