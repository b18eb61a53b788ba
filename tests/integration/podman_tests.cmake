# Read by ctest after the discovered tests (tests/integration/CMakeLists.txt):
# the engine tests registered for Podman get their labels and engine.
foreach(t IN LISTS cw_podman_rootful_tests)
  set_tests_properties("${t}" PROPERTIES LABELS "integration;podman" RESOURCE_LOCK podman
    ENVIRONMENT "CONTAINER_SOCKET=unix:///run/podman/podman.sock;CW_TEST_ENGINE_OPTIONAL=1")
endforeach()
foreach(t IN LISTS cw_podman_rootless_tests)
  set_tests_properties("${t}" PROPERTIES LABELS "integration;podman" RESOURCE_LOCK podman
    ENVIRONMENT "CW_TEST_RUN_AS=cw-rootless;CW_TEST_ENGINE_OPTIONAL=1")
endforeach()
