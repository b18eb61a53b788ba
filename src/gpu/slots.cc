#include "gpu/slots.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>

#include "gpu/text.h"

namespace cw {
namespace {

using gpu_text::IsDigits;
using gpu_text::Join;
using gpu_text::Lower;
using gpu_text::Split;
using gpu_text::Trim;

std::string Plural(std::size_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string CpuRange(int first, int last) {
  return first == last ? std::to_string(first) : std::to_string(first) + "-" + std::to_string(last);
}

// "GPUs 0-7", "GPU 3", "GPUs 0, 2, 5": how an admin would say it.
std::string IndexList(const std::vector<GpuInfo>& gpus) {
  if (gpus.empty()) return "no GPUs";
  if (gpus.size() == 1) return "GPU " + std::to_string(gpus[0].index);
  bool contiguous = true;
  for (std::size_t i = 1; i < gpus.size(); ++i) {
    contiguous = contiguous && gpus[i].index == gpus[i - 1].index + 1;
  }
  if (contiguous) return "GPUs " + CpuRange(gpus.front().index, gpus.back().index);
  std::vector<std::string> indexes;
  for (const GpuInfo& g : gpus) indexes.push_back(std::to_string(g.index));
  return "GPUs " + Join(indexes, ", ");
}

std::vector<GpuInfo> Unused(const std::vector<GpuInfo>& gpus, const std::vector<SlotPlan>& slots) {
  std::vector<GpuInfo> unused;
  for (const GpuInfo& g : gpus) {
    bool used = std::any_of(slots.begin(), slots.end(), [&](const SlotPlan& s) {
      return std::any_of(s.gpus.begin(), s.gpus.end(),
                         [&](const GpuInfo& h) { return h.index == g.index; });
    });
    if (!used) unused.push_back(g);
  }
  return unused;
}

// An all-digit name is an index ("03" is GPU 3), anything else a UUID,
// compared without case since admins copy them from different tools.
std::optional<GpuInfo> FindGpu(const std::vector<GpuInfo>& gpus, std::string_view name) {
  if (IsDigits(name)) {
    int index = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), index);
    if (ec != std::errc() || end != name.data() + name.size()) return std::nullopt;
    for (const GpuInfo& g : gpus) {
      if (g.index == index) return g;
    }
    return std::nullopt;
  }
  for (const GpuInfo& g : gpus) {
    if (!g.uuid.empty() && Lower(g.uuid) == Lower(name)) return g;
  }
  return std::nullopt;
}

Status UnknownGpu(const std::vector<GpuInfo>& gpus, std::string_view name) {
  std::string has =
      gpus.empty() ? "this machine has no GPUs" : "this machine has " + IndexList(gpus);
  if (IsDigits(name)) {
    return InvalidInput("--gpu-map names GPU " + std::string(name) + " but " + has);
  }
  std::vector<std::string> known;
  for (const GpuInfo& g : gpus) known.push_back(std::to_string(g.index) + " " + g.uuid);
  return InvalidInput(
      "--gpu-map names " + std::string(name) + " but no GPU of this machine has that UUID" +
      (gpus.empty() ? " (it has no GPUs)" : " (its GPUs: " + Join(known, ", ") + ")"));
}

constexpr const char* kMapSyntax =
    "write GPU indexes or UUIDs separated by ',' within a slot and ';' between slots, e.g. "
    "\"0,1;2,3\"";

Result<std::vector<SlotPlan>> FromMap(const std::vector<GpuInfo>& gpus, const std::string& map) {
  std::vector<SlotPlan> slots;
  std::map<int, int> slot_of;  // GPU index -> slot that has it
  std::vector<std::string_view> groups = Split(map, ';');
  for (std::size_t s = 0; s < groups.size(); ++s) {
    SlotPlan slot;
    slot.index = static_cast<int>(s);
    std::string where = "--gpu-map \"" + map + "\": slot " + std::to_string(s);
    if (Trim(groups[s]).empty()) return InvalidInput(where + " names no GPU (" + kMapSyntax + ")");
    for (std::string_view raw : Split(groups[s], ',')) {
      std::string_view name = Trim(raw);
      if (name.empty()) return InvalidInput(where + " has an empty entry (" + kMapSyntax + ")");
      std::optional<GpuInfo> gpu = FindGpu(gpus, name);
      if (!gpu) return UnknownGpu(gpus, name);
      auto [it, inserted] = slot_of.emplace(gpu->index, slot.index);
      if (!inserted) {
        std::string gpu_name = "GPU " + std::to_string(gpu->index);
        if (it->second == slot.index) {
          return InvalidInput("--gpu-map names " + gpu_name + " twice in slot " +
                              std::to_string(s));
        }
        return InvalidInput("--gpu-map puts " + gpu_name + " in slot " +
                            std::to_string(it->second) + " and slot " + std::to_string(s) +
                            "; a GPU can serve only one slot");
      }
      slot.gpus.push_back(*gpu);
    }
    slots.push_back(std::move(slot));
  }
  return slots;
}

std::vector<SlotPlan> Chunks(const std::vector<GpuInfo>& gpus, const std::vector<int>& sizes) {
  std::vector<SlotPlan> slots;
  std::size_t next = 0;
  for (std::size_t s = 0; s < sizes.size(); ++s) {
    SlotPlan slot;
    slot.index = static_cast<int>(s);
    for (int i = 0; i < sizes[s]; ++i) slot.gpus.push_back(gpus[next++]);
    slots.push_back(std::move(slot));
  }
  return slots;
}

// Sizes that add up to `total` over `parts`, the first ones larger by one
// when it does not divide.
std::vector<int> EvenSizes(int total, int parts) {
  std::vector<int> sizes(parts, total / parts);
  for (int i = 0; i < total % parts; ++i) ++sizes[i];
  return sizes;
}

Result<std::vector<SlotPlan>> GpuSlots(const std::vector<GpuInfo>& gpus, const SlotRequest& req,
                                       std::vector<std::string>& warnings) {
  const int count = static_cast<int>(gpus.size());
  std::string has = gpus.empty() ? "no GPUs were found on this machine"
                                 : "this machine has " + Plural(gpus.size(), "GPU", "GPUs");
  if (!Trim(req.gpu_map).empty()) {
    if (gpus.empty()) {
      return InvalidInput("--gpu-map \"" + req.gpu_map + "\" names GPUs but " + has);
    }
    CW_ASSIGN_OR_RETURN(std::vector<SlotPlan> slots, FromMap(gpus, req.gpu_map));
    if (req.slots > 0 && req.slots != static_cast<int>(slots.size())) {
      warnings.push_back("--slots " + std::to_string(req.slots) +
                         " is ignored: --gpu-map defines " + Plural(slots.size(), "slot", "slots"));
    }
    if (req.gpus_per_slot > 0) {
      warnings.push_back("--gpus-per-slot is ignored: --gpu-map says which GPUs each slot has");
    }
    return slots;
  }
  if (req.gpus_per_slot > 0) {
    const std::string per = "--gpus-per-slot " + std::to_string(req.gpus_per_slot);
    if (count < req.gpus_per_slot) return InvalidInput(per + " but " + has);
    int n = count / req.gpus_per_slot;
    if (req.slots > 0) {
      if (req.slots > n) {
        return InvalidInput("--slots " + std::to_string(req.slots) + " with " + per + " needs " +
                            std::to_string(req.slots * req.gpus_per_slot) + " GPUs but " + has);
      }
      n = req.slots;
    }
    return Chunks(gpus, std::vector<int>(n, req.gpus_per_slot));
  }
  if (req.slots > 0) {
    if (gpus.empty()) return std::vector<SlotPlan>{};  // the caller makes CPU slots
    if (req.slots > count) {
      return InvalidInput("--slots " + std::to_string(req.slots) + " but " + has +
                          " and a GPU can serve only one slot: use --slots " +
                          std::to_string(count) + " or fewer");
    }
    return Chunks(gpus, EvenSizes(count, req.slots));
  }
  return Chunks(gpus, std::vector<int>(count, 1));
}

void AssignCpus(std::vector<SlotPlan>& slots, int cpu_count, std::vector<std::string>& warnings) {
  const int n = static_cast<int>(slots.size());
  if (cpu_count <= 0) {
    warnings.push_back("the number of CPUs is unknown; slots are not pinned to CPUs");
    return;
  }
  if (cpu_count < n) {
    warnings.push_back(Plural(n, "slot", "slots") + " share " + Plural(cpu_count, "CPU", "CPUs") +
                       ": each gets one, some the same");
    for (int i = 0; i < n; ++i) slots[i].cpuset = std::to_string(i % cpu_count);
    return;
  }
  int first = 0;
  std::vector<int> sizes = EvenSizes(cpu_count, n);
  for (int i = 0; i < n; ++i) {
    slots[i].cpuset = CpuRange(first, first + sizes[i] - 1);
    first += sizes[i];
  }
}

}  // namespace

Result<std::vector<SlotPlan>> PlanSlots(const std::vector<GpuInfo>& gpus_in, const SlotRequest& req,
                                        int cpu_count, std::vector<std::string>* warnings_out) {
  if (req.slots < 0) {
    return InvalidInput("--slots must be 0 (automatic) or more, not " + std::to_string(req.slots));
  }
  if (req.gpus_per_slot < 0) {
    return InvalidInput("--gpus-per-slot must be 0 (not set) or more, not " +
                        std::to_string(req.gpus_per_slot));
  }
  std::vector<GpuInfo> gpus = gpus_in;
  std::sort(gpus.begin(), gpus.end(),
            [](const GpuInfo& a, const GpuInfo& b) { return a.index < b.index; });
  std::vector<std::string> warnings;
  CW_ASSIGN_OR_RETURN(std::vector<SlotPlan> slots, GpuSlots(gpus, req, warnings));
  if (slots.empty()) {  // no GPUs: CPU-only slots
    slots.resize(std::max(req.slots, 1));
    for (std::size_t i = 0; i < slots.size(); ++i) slots[i].index = static_cast<int>(i);
  }
  std::vector<GpuInfo> unused = Unused(gpus, slots);
  if (!unused.empty()) {
    warnings.push_back(IndexList(unused) + (unused.size() == 1 ? " is" : " are") +
                       " in no slot and stay" + (unused.size() == 1 ? "s" : "") + " unused");
  }
  // One slot has every CPU anyway; pinning it would only hide CPUs the
  // engine's count missed (offline or hot-plugged ones).
  if (req.split_cpus && slots.size() > 1) AssignCpus(slots, cpu_count, warnings);
  if (warnings_out) warnings_out->insert(warnings_out->end(), warnings.begin(), warnings.end());
  return slots;
}

std::string DescribeSlot(const SlotPlan& slot) {
  std::string out = "slot " + std::to_string(slot.index) + ": ";
  if (slot.gpus.empty()) {
    out += "no GPU";
  } else {
    std::vector<std::string> indexes, uuids;
    for (const GpuInfo& g : slot.gpus) {
      indexes.push_back(std::to_string(g.index));
      uuids.push_back(g.uuid.empty() ? "no UUID" : g.uuid);
    }
    out += (slot.gpus.size() == 1 ? "GPU " : "GPUs ") + Join(indexes, ",") + " (" +
           Join(uuids, ", ") + ")";
  }
  out += slot.cpuset.empty() ? ", any CPU" : ", CPUs " + slot.cpuset;
  return out;
}

}  // namespace cw
