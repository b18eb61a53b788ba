#include "metrics/worker_metrics.h"

#include <gtest/gtest.h>

namespace cw::metrics {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(WorkerMetrics, CountsJobsAndTheirSteps) {
  WorkerMetrics m(2, "1.2.3");
  m.JobStarted("prediction");
  std::string text = m.Render();
  EXPECT_TRUE(Has(text, "codabench_worker_slots_busy 1")) << text;
  StepSeconds t;
  t.fetch = 0.2;
  t.programs = 3;
  t.total = 4;
  m.JobFinished("prediction", "succeeded", t);
  text = m.Render();
  EXPECT_TRUE(Has(text, "codabench_worker_jobs_started_total{stage=\"prediction\"} 1")) << text;
  EXPECT_TRUE(Has(text, "codabench_worker_jobs_finished_total{stage=\"prediction\",outcome=\"succeeded\"} 1"));
  EXPECT_TRUE(Has(text, "codabench_worker_job_stage_seconds_bucket{stage=\"prediction\",step=\"fetch\",le=\"0.5\"} 1"));
  EXPECT_TRUE(Has(text, "codabench_worker_job_stage_seconds_bucket{stage=\"prediction\",step=\"total\",le=\"2.5\"} 0"));
  EXPECT_TRUE(Has(text, "codabench_worker_job_stage_seconds_sum{stage=\"prediction\",step=\"total\"} 4"));
  const std::string count = "codabench_worker_job_stage_seconds_count{stage=\"prediction\",step=\"";
  for (const char* step : {"fetch", "programs", "total"}) {
    EXPECT_TRUE(Has(text, count + step + "\"} 1")) << step;
  }
  // Steps the job did not reach (0 s) stay out of the histogram.
  for (const char* step : {"unzip", "pull", "start", "upload"}) {
    EXPECT_EQ(text.find(count + step), std::string::npos) << step;
  }
  EXPECT_TRUE(Has(text, "codabench_worker_slots 2"));
  EXPECT_TRUE(Has(text, "codabench_worker_slots_busy 0"));
  EXPECT_TRUE(Has(text, "codabench_worker_build_info{version=\"1.2.3\"} 1"));
  EXPECT_TRUE(Has(text, "# TYPE codabench_worker_process_resident_memory_bytes gauge"));
  m.SiteError("status");
  EXPECT_TRUE(Has(m.Render(), "codabench_worker_site_errors_total{call=\"status\"} 1"));
}

TEST(WorkerMetrics, JobUseTransfersAndStores) {
  WorkerMetrics m(1, "dev");
  std::string text = m.Render();
  EXPECT_TRUE(Has(text, "codabench_worker_downloaded_bytes_total 0")) << text;
  EXPECT_TRUE(Has(text, "codabench_worker_uploaded_bytes_total 0"));
  // Unknown until the first sweep measured it: no sample rather than a 0.
  EXPECT_EQ(text.find("\ncodabench_worker_image_store_bytes "), std::string::npos);

  JobUsage usage;
  usage.peak_memory_bytes = 300.0 * (1 << 20);
  usage.cpu_seconds = 1.5;
  usage.wall_seconds = 7;
  m.JobUsed("scoring", "failed", usage);
  m.JobUsed("scoring", "succeeded", JobUsage{std::nullopt, std::nullopt, 2});  // no engine figures
  text = m.Render();
  EXPECT_TRUE(Has(text, "codabench_worker_job_peak_memory_bytes_bucket{stage=\"scoring\",le=\"268435456\"} 0")) << text;
  EXPECT_TRUE(Has(text, "codabench_worker_job_peak_memory_bytes_bucket{stage=\"scoring\",le=\"1073741824\"} 1"));
  EXPECT_TRUE(Has(text, "codabench_worker_job_peak_memory_bytes_count{stage=\"scoring\"} 1"));
  EXPECT_TRUE(Has(text, "codabench_worker_job_cpu_seconds_sum{stage=\"scoring\"} 1.5"));
  EXPECT_TRUE(Has(text, "codabench_worker_job_cpu_seconds_count{stage=\"scoring\"} 1"));
  EXPECT_TRUE(Has(text, "codabench_worker_job_seconds_sum{stage=\"scoring\",outcome=\"failed\"} 7"));
  EXPECT_TRUE(Has(text, "codabench_worker_job_seconds_count{stage=\"scoring\",outcome=\"succeeded\"} 1"));

  m.Downloaded(1000);
  m.Downloaded(24);
  m.Uploaded(5);
  m.ImageStoreBytes(123456789);
  m.WatchCacheBytes([] { return 4096.0; });
  for (const char* call : {"download", "upload", "websocket", "bad_job"}) m.SiteError(call);
  text = m.Render();
  EXPECT_TRUE(Has(text, "codabench_worker_downloaded_bytes_total 1024"));
  EXPECT_TRUE(Has(text, "codabench_worker_uploaded_bytes_total 5"));
  EXPECT_TRUE(Has(text, "codabench_worker_image_store_bytes 123456789"));
  EXPECT_TRUE(Has(text, "codabench_worker_cache_bytes 4096"));
  EXPECT_TRUE(Has(text, "codabench_worker_site_errors_total{call=\"websocket\"} 1"));
  EXPECT_TRUE(Has(text, "codabench_worker_site_errors_total{call=\"bad_job\"} 1"));
}

TEST(WorkerMetrics, BuildInfoCarriesTheProjectVersion) {
  WorkerMetrics m(1);
  EXPECT_FALSE(BuildVersion().empty());
  EXPECT_TRUE(Has(m.Render(), "codabench_worker_build_info{version=\"" + BuildVersion() + "\"} 1"));
}

TEST(WorkerMetrics, ReadyNeedsTheBrokerAndAFreshEngineCheck) {
  WorkerMetrics m(1, "dev");
  auto now = WorkerMetrics::Clock::now();
  std::string why;
  EXPECT_FALSE(m.Ready(&why, now));
  EXPECT_EQ(why, "not connected to the broker yet");
  m.BrokerState(true);
  EXPECT_FALSE(m.Ready(&why, now));  // the engine was never checked
  m.EngineCheck(true, "", now);
  EXPECT_TRUE(m.Ready(&why, now)) << why;
  EXPECT_FALSE(m.Ready(&why, now + std::chrono::minutes(5)));
  EXPECT_NE(why.find("stale"), std::string::npos);
  m.EngineCheck(false, "connection refused\nsecond line", now);
  EXPECT_FALSE(m.Ready(&why, now));
  EXPECT_EQ(why, "the container engine did not answer: connection refused second line");
  m.EngineCheck(true, "", now);
  m.BrokerState(false);
  EXPECT_FALSE(m.Ready(&why, now));
  EXPECT_EQ(why, "the broker connection is down");
  EXPECT_TRUE(Has(m.Render(), "codabench_worker_broker_connected 0"));
  EXPECT_TRUE(Has(m.Render(), "codabench_worker_broker_reconnects_total 0"));
  m.BrokerState(true);
  m.BrokerState(true);  // no change: not another reconnect
  EXPECT_TRUE(m.Ready(&why, now));
  EXPECT_TRUE(Has(m.Render(), "codabench_worker_broker_connected 1"));
  EXPECT_TRUE(Has(m.Render(), "codabench_worker_broker_reconnects_total 1"));
  m.ShuttingDown();
  EXPECT_FALSE(m.Ready(&why, now));
  EXPECT_EQ(why, "shutting down: no new jobs");
}

TEST(WorkerMetrics, ServesHealthAndReadiness) {
  WorkerMetrics m(1, "dev");
  HttpServer server(m.Handlers());
  EXPECT_EQ(server.Answer("GET /healthz HTTP/1.1\r\n\r\n").body, "ok\n");
  HttpResponse r = server.Answer("GET /readyz HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.code, 503);
  EXPECT_EQ(r.body, "not connected to the broker yet\n");
  m.BrokerState(true);
  m.EngineCheck(true, "");
  EXPECT_EQ(server.Answer("GET /readyz HTTP/1.1\r\n\r\n").code, 200);
  r = server.Answer("GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("# TYPE codabench_worker_jobs_finished_total counter"), std::string::npos);
}

}  // namespace
}  // namespace cw::metrics
