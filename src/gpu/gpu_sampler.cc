#include "gpu/gpu_sampler.h"

#include <algorithm>
#include <exception>
#include <map>

#include "common/thread_annotations.h"

namespace cw {
namespace {

struct Device {
  int index = 0;
  std::string uuid;
  NvmlDevice handle = nullptr;
  bool failing = false;  // its last round failed (logged once, not every second)
};

// The sums a window keeps; the figures are made from them when it finishes.
struct WindowSums {
  std::vector<std::size_t> devices;  // into State::devices
  std::optional<std::uint64_t> peak_memory;
  double utilization_sum = 0;
  std::uint64_t utilization_samples = 0;
};

std::string Which(const Device& d) {
  return "GPU " + std::to_string(d.index) + " (" + d.uuid + ")";
}

}  // namespace

struct GpuSampler::State {
  NvmlLibrary nvml;
  GpuSamplerOptions options;
  std::vector<Device> devices;  // fixed after Start; `failing` only under round_mu

  // One round at a time: the thread's, or a SampleNow's. Held across the
  // round's NVML calls (a round reads and writes each device's `failing`);
  // it cannot deadlock: a round takes mu only after letting it go, and no
  // NVML call comes back into the sampler.
  Mutex round_mu ACQUIRED_BEFORE(mu);

  mutable Mutex mu;  // guards what follows; never held across an NVML call
  CondVar cv;
  bool stop GUARDED_BY(mu) = false;
  bool exited GUARDED_BY(mu) = false;
  std::vector<GpuReading> latest GUARDED_BY(mu);
  std::map<std::uint64_t, WindowSums> windows GUARDED_BY(mu);
  std::uint64_t next_window GUARDED_BY(mu) = 0;

  void Log(const std::string& line) const {
    if (options.log) options.log(line);
  }

  void Round() {
    std::vector<GpuReading> readings;
    std::vector<std::string> lines;
    {
      MutexLock round(round_mu);
      readings.reserve(devices.size());
      for (Device& d : devices) readings.push_back(Read(d, lines));
    }
    bool stopped = false;
    {
      MutexLock lock(mu);
      latest = readings;
      for (auto& [id, w] : windows) Fold(readings, w);
      stopped = stop;
    }
    // A round that outlived the sampler (a driver call that hung through the
    // stop) must not call into what its owner has since destroyed.
    if (stopped) return;
    for (const std::string& line : lines) Log(line);
    if (options.on_sample) options.on_sample(readings);
  }

  // What `d` reads now; a change between failing and answering adds a line
  // to `lines` (once per spell, not every round).
  GpuReading Read(Device& d, std::vector<std::string>& lines) REQUIRES(round_mu) {
    GpuReading r;
    r.index = d.index;
    r.uuid = d.uuid;
    std::string problem;
    if (nvml.get_memory) {
      NvmlMemory m{};
      if (NvmlReturn rc = nvml.get_memory(d.handle, &m); rc == kNvmlSuccess) {
        r.memory_used_bytes = m.used;
        r.memory_total_bytes = m.total;
      } else {
        problem = "memory: " + NvmlErrorText(nvml, rc);
      }
    }
    if (nvml.get_utilization) {
      NvmlUtilization u{};
      if (NvmlReturn rc = nvml.get_utilization(d.handle, &u); rc == kNvmlSuccess) {
        // A percent; anything above is the driver's glitch, not a busier GPU.
        r.utilization_percent = std::min(u.gpu, 100u);
      } else {
        problem +=
            (problem.empty() ? "" : "; ") + std::string("utilisation: ") + NvmlErrorText(nvml, rc);
      }
    }
    if (!problem.empty() && !d.failing) {
      lines.push_back(Which(d) + ": cannot read its use (" + problem +
                      "); its figures are left out until it answers");
    } else if (problem.empty() && d.failing) {
      lines.push_back(Which(d) + ": its use can be read again");
    }
    d.failing = !problem.empty();
    return r;
  }

  // A window's memory is the sum over its GPUs at one round, so a round in
  // which one of them gave no figure would understate it: such a round adds
  // nothing to the peak. Utilisation is a mean of whatever was read.
  static void Fold(const std::vector<GpuReading>& readings, WindowSums& w) {
    std::uint64_t memory = 0;
    bool all_memory = true;
    for (std::size_t i : w.devices) {
      const GpuReading& r = readings[i];
      if (r.memory_used_bytes) {
        memory += *r.memory_used_bytes;
      } else {
        all_memory = false;
      }
      if (r.utilization_percent) {
        w.utilization_sum += *r.utilization_percent;
        ++w.utilization_samples;
      }
    }
    if (all_memory) w.peak_memory = std::max(w.peak_memory.value_or(0), memory);
  }

  void Loop() {
    try {
      MutexLock lock(mu);
      while (!stop) {
        lock.Unlock();
        Round();
        lock.Lock();
        const auto until = std::chrono::steady_clock::now() + options.interval;
        while (!stop && cv.WaitUntil(lock, until)) {
        }
      }
    } catch (const std::exception& e) {
      Log(std::string("the GPU sampler stopped: ") + e.what());
    }
    MutexLock lock(mu);
    exited = true;
    cv.NotifyAll();
  }
};

namespace {

class SamplerWindow : public GpuWindow {
 public:
  SamplerWindow(std::shared_ptr<GpuSampler::State> state, std::uint64_t id)
      : state_(std::move(state)), id_(id) {}
  ~SamplerWindow() override {
    MutexLock lock(state_->mu);
    state_->windows.erase(id_);
  }

  GpuUsage Finish() override {
    MutexLock lock(state_->mu);
    GpuUsage usage;
    auto it = state_->windows.find(id_);
    if (it == state_->windows.end()) return usage;  // finished before
    const WindowSums& w = it->second;
    usage.peak_memory_bytes = w.peak_memory;
    if (w.utilization_samples > 0) {
      usage.mean_utilization_percent =
          w.utilization_sum / static_cast<double>(w.utilization_samples);
    }
    state_->windows.erase(it);
    return usage;
  }

 private:
  std::shared_ptr<GpuSampler::State> state_;
  std::uint64_t id_;
};

class SamplerMeter : public GpuUsageMeter {
 public:
  SamplerMeter(std::shared_ptr<GpuSampler::State> state, std::vector<std::size_t> devices)
      : state_(std::move(state)), devices_(std::move(devices)) {}

  std::unique_ptr<GpuWindow> Begin() override {
    MutexLock lock(state_->mu);
    const std::uint64_t id = state_->next_window++;
    state_->windows[id].devices = devices_;
    return std::make_unique<SamplerWindow>(state_, id);
  }

  std::string Describe() const override {
    std::string out = devices_.size() == 1 ? "GPU " : "GPUs ";
    for (std::size_t i = 0; i < devices_.size(); ++i) {
      out += (i ? ", " : "") + std::to_string(state_->devices[devices_[i]].index);
    }
    return out;
  }

 private:
  std::shared_ptr<GpuSampler::State> state_;
  std::vector<std::size_t> devices_;
};

}  // namespace

Result<std::unique_ptr<GpuSampler>> GpuSampler::Start(NvmlLibrary nvml, GpuSamplerOptions options) {
  if (!nvml.init || !nvml.shutdown || !nvml.get_count || !nvml.get_handle || !nvml.get_uuid) {
    return Internal("the NVML function table is incomplete");
  }
  if (!nvml.get_memory && !nvml.get_utilization) {
    return Unavailable("this NVML answers neither memory nor utilisation queries");
  }
  if (NvmlReturn rc = nvml.init(); rc != kNvmlSuccess) {
    return Unavailable("NVML could not start: " + NvmlErrorText(nvml, rc));
  }
  auto state = std::make_shared<State>();
  state->nvml = nvml;
  state->options = std::move(options);
  // Until the sampler owns the state, a failure here must undo the init.
  auto fail = [&nvml](Status why) {
    nvml.shutdown();
    return why;
  };
  unsigned int count = 0;
  if (NvmlReturn rc = nvml.get_count(&count); rc != kNvmlSuccess) {
    return fail(Unavailable("NVML could not count the GPUs: " + NvmlErrorText(nvml, rc)));
  }
  for (unsigned int i = 0; i < count; ++i) {
    Device d;
    d.index = static_cast<int>(i);
    char buf[128] = {};
    NvmlReturn rc = nvml.get_handle(i, &d.handle);
    if (rc == kNvmlSuccess) rc = nvml.get_uuid(d.handle, buf, sizeof buf);
    if (rc != kNvmlSuccess) {
      // Jobs get GPUs by UUID: one without is no slot's, so nothing to measure.
      state->Log("GPU " + std::to_string(i) + " is not sampled: " + NvmlErrorText(nvml, rc));
      continue;
    }
    d.uuid = std::string(buf, std::find(buf, buf + sizeof buf, '\0'));
    state->devices.push_back(std::move(d));
  }
  if (state->devices.empty()) return fail(Unavailable("NVML lists no GPU to sample"));
  std::unique_ptr<GpuSampler> sampler(new GpuSampler(state));
  if (state->options.background) {
    sampler->thread_ = std::thread([state] { state->Loop(); });
  }
  return sampler;
}

GpuSampler::GpuSampler(std::shared_ptr<State> state) : state_(std::move(state)) {}

GpuSampler::~GpuSampler() {
  bool exited = true;
  if (thread_.joinable()) {
    MutexLock lock(state_->mu);
    state_->stop = true;
    state_->cv.NotifyAll();
    const auto until = std::chrono::steady_clock::now() + state_->options.stop_wait;
    while (!state_->exited && state_->cv.WaitUntil(lock, until)) {
    }
    exited = state_->exited;
  }
  if (!exited) {
    // The thread is inside a driver call that does not return. It owns a
    // share of the state (and the library stays loaded), so it may go on
    // alone; NVML is not shut down under it.
    state_->Log("the GPU sampler did not stop (an NVML call hangs); it is left behind");
    thread_.detach();
    return;
  }
  if (thread_.joinable()) thread_.join();
  state_->nvml.shutdown();
}

void GpuSampler::SampleNow() { state_->Round(); }

std::vector<GpuReading> GpuSampler::Latest() const {
  MutexLock lock(state_->mu);
  if (!state_->latest.empty()) return state_->latest;
  std::vector<GpuReading> none;
  for (const Device& d : state_->devices) none.push_back({d.index, d.uuid, {}, {}, {}});
  return none;
}

std::shared_ptr<GpuUsageMeter> GpuSampler::MeterFor(const std::vector<std::string>& uuids) {
  std::vector<std::size_t> devices;
  for (const std::string& uuid : uuids) {
    auto it = std::find_if(state_->devices.begin(), state_->devices.end(),
                           [&uuid](const Device& d) { return d.uuid == uuid; });
    if (it == state_->devices.end()) {
      state_->Log(uuid + " is not among the GPUs NVML lists: its use is not measured");
      continue;
    }
    devices.push_back(static_cast<std::size_t>(it - state_->devices.begin()));
  }
  if (devices.empty()) return nullptr;
  return std::make_shared<SamplerMeter>(state_, std::move(devices));
}

}  // namespace cw
