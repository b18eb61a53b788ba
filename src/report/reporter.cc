#include "report/reporter.h"

namespace cw {

const char* JobStatusName(JobStatus status) {
  switch (status) {
    case JobStatus::kPreparing: return "Preparing";
    case JobStatus::kRunning: return "Running";
    case JobStatus::kScoring: return "Scoring";
    case JobStatus::kFinished: return "Finished";
    case JobStatus::kFailed: return "Failed";
  }
  return "Failed";
}

const char* ProgramKindName(ProgramKind kind) {
  return kind == ProgramKind::kIngestion ? "ingestion" : "program";
}

const char* ErrorTypeName(ErrorType type) {
  return type == ErrorType::kDockerImagePullFail ? "Docker_Image_Pull_Fail"
                                                  : "Execution_Time_Limit_Exceeded";
}

}  // namespace cw
