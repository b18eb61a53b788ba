#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cw {
namespace {

TEST(DotEnv, ParsesComposeStyleFile) {
  auto env = ParseDotEnv(
      "# a comment\n"
      "\n"
      "BROKER_URL=pyamqp://user:p%40ss@rabbit:5672/queue-1\r\n"
      "export HOST_DIRECTORY=/data/codabench\n"
      "USE_GPU=\"True\"\n"
      "GPU_DEVICE='nvidia.com/gpu=0'\n"
      "LOG_LEVEL=debug # trailing comment\n"
      "EMPTY=\n");
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->at("BROKER_URL"), "pyamqp://user:p%40ss@rabbit:5672/queue-1");
  EXPECT_EQ(env->at("HOST_DIRECTORY"), "/data/codabench");
  EXPECT_EQ(env->at("USE_GPU"), "True");
  EXPECT_EQ(env->at("GPU_DEVICE"), "nvidia.com/gpu=0");
  EXPECT_EQ(env->at("LOG_LEVEL"), "debug");
  EXPECT_EQ(env->at("EMPTY"), "");
}

TEST(DotEnv, RejectsLineWithoutEqualsNamingTheLine) {
  auto env = ParseDotEnv("A=1\nthis is wrong\n");
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.status().message().find("line 2"), std::string::npos);
}

TEST(Config, DefaultsMatchThePythonWorker) {
  auto c = ConfigFromEnv({}, false);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host_directory, "/tmp/codabench/");
  EXPECT_EQ(c->base_directory, "/tmp/codabench/");
  EXPECT_EQ(c->container_socket, "unix:///var/run/docker.sock");
  EXPECT_FALSE(c->use_gpu);
  EXPECT_EQ(c->gpu_device, "nvidia.com/gpu=all");
  EXPECT_DOUBLE_EQ(c->max_cache_dir_size_gb, 10.0);
  EXPECT_FALSE(c->ignore_cleanup);
  EXPECT_FALSE(c->bundle_url_rewrite.has_value());
}

TEST(Config, ReadsEverySetting) {
  EnvMap env{{"BROKER_URL", "amqps://u:p@h/v"},
             {"BROKER_USE_SSL", "True"},
             {"BROKER_SSL_CA_CERTS", "/etc/ca.pem"},
             {"HOST_DIRECTORY", "/srv/cb"},
             {"CONTAINER_ENGINE_EXECUTABLE", "Podman"},
             {"USE_GPU", "true"},
             {"GPU_DEVICE", "nvidia.com/gpu=1"},
             {"COMPETITION_CONTAINER_NETWORK_DISABLED", "True"},
             {"COMPETITION_CONTAINER_HTTP_PROXY", "http://proxy:3128"},
             {"COMPETITION_CONTAINER_HTTPS_PROXY", "http://proxy:3129"},
             {"CODALAB_IGNORE_CLEANUP_STEP", "1"},
             {"MAX_CACHE_DIR_SIZE_GB", "2.5"},
             {"WORKER_BUNDLE_URL_REWRITE", "http://localhost:9000|http://minio:9000"},
             {"METRICS_ADDRESS", "0.0.0.0:9464"},
             {"METRICS_TOKEN", " tok-123 "}};
  auto c = ConfigFromEnv(env, true);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->broker_use_ssl);
  EXPECT_EQ(c->broker_ssl_ca_certs, "/etc/ca.pem");
  EXPECT_EQ(c->host_directory, "/srv/cb");
  EXPECT_EQ(c->base_directory, "/codabench");
  EXPECT_EQ(c->container_engine, "podman");
  EXPECT_EQ(c->container_socket, "unix:///run/user/1000/podman/podman.sock");
  EXPECT_TRUE(c->use_gpu);
  EXPECT_EQ(c->gpu_device, "nvidia.com/gpu=1");
  EXPECT_TRUE(c->network_disabled);
  EXPECT_EQ(c->container_http_proxy, "http://proxy:3128");
  EXPECT_EQ(c->container_https_proxy, "http://proxy:3129");
  EXPECT_TRUE(c->ignore_cleanup);
  EXPECT_DOUBLE_EQ(c->max_cache_dir_size_gb, 2.5);
  EXPECT_EQ(c->metrics_address, "0.0.0.0:9464");
  EXPECT_EQ(c->metrics_token, "tok-123");
  EXPECT_EQ(RewriteUrl(*c, "http://localhost:9000/bucket/x.zip?sig=1"),
            "http://minio:9000/bucket/x.zip?sig=1");
  EXPECT_EQ(RewriteUrl(*c, "https://s3.example.com/x.zip"), "https://s3.example.com/x.zip");
}

TEST(Config, RejectsBadValuesWithTheSettingName) {
  auto bad_gb = ConfigFromEnv({{"MAX_CACHE_DIR_SIZE_GB", "ten"}}, false);
  ASSERT_FALSE(bad_gb.ok());
  EXPECT_NE(bad_gb.status().message().find("MAX_CACHE_DIR_SIZE_GB"), std::string::npos);
  auto bad_rewrite = ConfigFromEnv({{"WORKER_BUNDLE_URL_REWRITE", "nobar"}}, false);
  ASSERT_FALSE(bad_rewrite.ok());
  auto bad_engine = ConfigFromEnv({{"CONTAINER_ENGINE_EXECUTABLE", "lxc"}}, false);
  ASSERT_FALSE(bad_engine.ok());
  auto relative = ConfigFromEnv({{"HOST_DIRECTORY", "codabench"}}, false);
  ASSERT_FALSE(relative.ok());
}

TEST(Config, ContainerRuntimeIsTheEnginesDefaultUnlessNamed) {
  auto unset = ConfigFromEnv({}, false);
  ASSERT_TRUE(unset.ok());
  EXPECT_EQ(unset->container_runtime, "");
  auto runsc = ConfigFromEnv({{"CONTAINER_RUNTIME", " runsc "}}, false);
  ASSERT_TRUE(runsc.ok()) << runsc.status().ToString();
  EXPECT_EQ(runsc->container_runtime, "runsc");
  auto two = ConfigFromEnv({{"CONTAINER_RUNTIME", "runsc --nvproxy"}}, false);
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("CONTAINER_RUNTIME"), std::string::npos);
}

TEST(Config, BoolParsingAcceptsPythonStyleTrue) {
  EXPECT_TRUE(ParseBool("True"));
  EXPECT_TRUE(ParseBool("1"));
  EXPECT_TRUE(ParseBool(" yes "));
  EXPECT_FALSE(ParseBool("False"));
  EXPECT_FALSE(ParseBool(""));
  EXPECT_FALSE(ParseBool("nope"));
}

TEST(ConfigFromEnv, SiteCaBundleComesFromTheVariablesPythonRequestsReads) {
  EXPECT_EQ(ConfigFromEnv({}, false)->site_ca_bundle, "");
  EXPECT_EQ(ConfigFromEnv({{"CURL_CA_BUNDLE", "/etc/ssl/b.pem"}}, false)->site_ca_bundle,
            "/etc/ssl/b.pem");
  EXPECT_EQ(ConfigFromEnv({{"REQUESTS_CA_BUNDLE", "/etc/ssl/a.pem"},
                           {"CURL_CA_BUNDLE", "/etc/ssl/b.pem"}},
                          false)
                ->site_ca_bundle,
            "/etc/ssl/a.pem");
}

TEST(BaseDirectory, SlashCodabenchOnlyWhenItIsAMountInAContainer) {
  ContainerProbe mounted{true, true, true};
  auto c = ChooseBaseDirectory({{"HOST_DIRECTORY", "/srv/cb"}}, mounted);
  EXPECT_TRUE(c.use_codabench) << c.why;
  EXPECT_THAT(c.why, ::testing::HasSubstr("mounted"));

  // A folder /codabench that is part of the image (not a mount) is not
  // HOST_DIRECTORY: writing there would hide the files from the engine.
  ContainerProbe plain_folder{true, true, false};
  c = ChooseBaseDirectory({{"HOST_DIRECTORY", "/srv/cb"}}, plain_folder);
  EXPECT_FALSE(c.use_codabench);
  EXPECT_TRUE(c.doubtful);
  EXPECT_THAT(c.why, ::testing::HasSubstr("not a mount point"));

  // A host (no container marker) with /codabench mounted: not ours.
  c = ChooseBaseDirectory({{"HOST_DIRECTORY", "/srv/cb"}}, ContainerProbe{false, true, true});
  EXPECT_FALSE(c.use_codabench);
  EXPECT_FALSE(c.doubtful);
  c = ChooseBaseDirectory({}, ContainerProbe{true, false, false});
  EXPECT_FALSE(c.use_codabench);

  // HOST_DIRECTORY=/codabench: the same path everywhere, whatever the probe says.
  c = ChooseBaseDirectory({{"HOST_DIRECTORY", "/codabench/"}}, ContainerProbe{});
  EXPECT_TRUE(c.use_codabench);
}

TEST(BaseDirectory, ConfigUsesTheChoiceAndWorkerBaseDirectoryWins) {
  EnvMap env{{"HOST_DIRECTORY", "/srv/cb"}};
  auto c = ConfigFromEnv(env, ChooseBaseDirectory(env, ContainerProbe{true, true, false}));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->base_directory, "/srv/cb");
  EXPECT_TRUE(c->base_directory_doubtful);
  c = ConfigFromEnv(env, ChooseBaseDirectory(env, ContainerProbe{true, true, true}));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->base_directory, "/codabench");
  EXPECT_EQ(c->host_directory, "/srv/cb");

  env["WORKER_BASE_DIRECTORY"] = "/codabench";
  c = ConfigFromEnv(env, ChooseBaseDirectory(env, ContainerProbe{true, true, false}));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->base_directory, "/codabench");
  EXPECT_FALSE(c->base_directory_doubtful);
  EXPECT_EQ(c->base_directory_reason, "WORKER_BASE_DIRECTORY says so");
  env["WORKER_BASE_DIRECTORY"] = "relative/dir";
  EXPECT_FALSE(ConfigFromEnv(env, false).ok());
}

TEST(BaseDirectory, MountInfo) {
  const std::string mountinfo =
      "1265 1170 0:310 / / rw,relatime master:525 - overlay overlay rw,lowerdir=/x\n"
      "1266 1265 0:313 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
      "1290 1265 259:2 /srv/cb /codabench rw,relatime - ext4 /dev/nvme0n1p2 rw\n";
  EXPECT_TRUE(MountInfoHasMountPoint(mountinfo, "/codabench"));
  EXPECT_TRUE(MountInfoHasMountPoint(mountinfo, "/codabench/"));
  EXPECT_FALSE(MountInfoHasMountPoint(mountinfo, "/srv/cb"));  // the source, not a mount point
  EXPECT_FALSE(MountInfoHasMountPoint(mountinfo, "/codabench/sub"));
  EXPECT_FALSE(MountInfoHasMountPoint("", "/codabench"));
}

TEST(Config, ShutdownTimeout) {
  auto c = ConfigFromEnv({}, false);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->shutdown_timeout_s.has_value());
  c = ConfigFromEnv({{"WORKER_SHUTDOWN_TIMEOUT", "7200"}}, false);
  ASSERT_TRUE(c.ok());
  EXPECT_DOUBLE_EQ(*c->shutdown_timeout_s, 7200.0);
  c = ConfigFromEnv({{"WORKER_SHUTDOWN_TIMEOUT", "None"}}, false);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->shutdown_timeout_s.has_value());
  auto bad = ConfigFromEnv({{"WORKER_SHUTDOWN_TIMEOUT", "2h"}}, false);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("WORKER_SHUTDOWN_TIMEOUT"), std::string::npos);
  EXPECT_FALSE(ConfigFromEnv({{"WORKER_SHUTDOWN_TIMEOUT", "-1"}}, false).ok());
}

}  // namespace
}  // namespace cw
