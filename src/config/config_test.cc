#include "config/config.h"

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
             {"WORKER_BUNDLE_URL_REWRITE", "http://localhost:9000|http://minio:9000"}};
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

}  // namespace
}  // namespace cw
