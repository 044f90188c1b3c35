# ergo_add_test_suite(<target> LABEL <label> SOURCES <files...>)
#
# One GoogleTest executable of ergo's own (tests/<module>/, tools/tests/, apps/*/tests/): built
# with ergo_dev's flags, added to the `ergo_tests` target (everything the test suite runs, and
# nothing else), its tests discovered into ctest under LABEL. Sources may include
# "common/test_utils.hpp" and the tests/ helpers ("io/io_test_utils.hpp").
#
# The test files of one suite are compiled as one unity translation unit (ERGO_UNITY_TESTS, on by
# default): ergo is header-only, so every test file would otherwise instantiate and optimise the
# same Eigen and ergo templates again; one unity TU per suite cut the CPU time of the identify and
# theory suites' optimised build from 348 s to 152 s on 2 cores. Test files must therefore not define the same name twice at file scope (use
# distinct names, or a namespace named after the file, for helpers).
option(ERGO_UNITY_TESTS "Compile each test suite as one unity translation unit" ON)
function(ergo_add_test_suite target)
  cmake_parse_arguments(ARG "" "LABEL;PREFIX" "SOURCES" ${ARGN})
  add_executable(${target} ${ARG_SOURCES})
  if(ERGO_UNITY_TESTS)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 0)
  endif()
  add_dependencies(ergo_tests ${target})
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${target} PRIVATE ergo_dev GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${target} PRIVATE
    ERGO_SOURCE_DIR="${PROJECT_SOURCE_DIR}" ERGO_BINARY_DIR="${PROJECT_BINARY_DIR}")
  set(_prefix)
  if(ARG_PREFIX)
    set(_prefix TEST_PREFIX ${ARG_PREFIX})  # test names unique when sources are built twice
  endif()
  gtest_discover_tests(${target} DISCOVERY_TIMEOUT 60 ${_prefix} PROPERTIES LABELS ${ARG_LABEL})
endfunction()
