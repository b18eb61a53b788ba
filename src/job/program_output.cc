#include "job/program_output.h"

namespace cw {
namespace fs = std::filesystem;

LogFile::LogFile(fs::path path, std::uint64_t cap) : path_(std::move(path)), cap_(cap) {
  file_ = std::fopen(path_.c_str(), "wb");
}

void LogFile::Write(std::string_view data) {
  if (!file_) return;
  if (cap_ && written_ + data.size() > cap_) {
    if (!truncated_) {
      std::fwrite(data.data(), 1, cap_ - written_, file_);
      std::string note = "\n[codabench-worker: output past " + std::to_string(cap_ >> 20) +
                         " MiB was dropped]\n";
      std::fwrite(note.data(), 1, note.size(), file_);
      written_ = cap_;
      truncated_ = true;
    }
    return;
  }
  std::fwrite(data.data(), 1, data.size(), file_);
  written_ += data.size();
}

void LogFile::Close() {
  if (file_) std::fclose(file_);
  file_ = nullptr;
}

ProgramOutput::ProgramOutput(ProgramKind kind, Reporter& reporter, const fs::path& logs_dir,
                             std::uint64_t cap)
    : kind_(kind),
      reporter_(reporter),
      out_(logs_dir / (std::string(ProgramKindName(kind)) + ".stdout"), cap),
      err_(logs_dir / (std::string(ProgramKindName(kind)) + ".stderr"), cap) {}

void ProgramOutput::Write(StreamKind stream, std::string_view data) {
  const bool err = stream == StreamKind::kStderr;
  (err ? err_ : out_).Write(data);
  reporter_.Log(kind_, err ? LogStream::kStderr : LogStream::kStdout, data);
}

void ProgramOutput::Close() {
  out_.Close();
  err_.Close();
}

}  // namespace cw
