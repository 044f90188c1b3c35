# ergo_dev: an INTERFACE helper target carrying the flags of ergo's own tests, examples and
# benchmarks (warnings, -Werror, sanitizers, -march=native, OpenMP). It is never installed or
# exported, so none of this reaches a user who links ergo::ergo.
add_library(ergo_dev INTERFACE)
target_link_libraries(ergo_dev INTERFACE ergo::ergo)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(ergo_dev INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wno-sign-conversion)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 reports false "uninitialized" warnings inside its own AVX-512 intrinsic headers
    # when Eigen's packet code is inlined (GCC bug 105593); they are not in ergo's code.
    target_compile_options(ergo_dev INTERFACE -Wno-uninitialized -Wno-maybe-uninitialized)
  endif()
  if(ERGO_WERROR)
    target_compile_options(ergo_dev INTERFACE -Werror)
  endif()
  if(ERGO_NATIVE)
    target_compile_options(ergo_dev INTERFACE -march=native)
  endif()
  if(ERGO_SANITIZE)
    target_compile_options(ergo_dev INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined)
    target_link_options(ergo_dev INTERFACE -fsanitize=address,undefined)
    # Tests shrink their problem sizes under sanitizers.
    target_compile_definitions(ergo_dev INTERFACE ERGO_SANITIZE_BUILD=1)
  endif()
endif()
if(ERGO_OPENMP AND NOT ERGO_SANITIZE)
  find_package(OpenMP)
  if(OpenMP_CXX_FOUND)
    target_link_libraries(ergo_dev INTERFACE OpenMP::OpenMP_CXX)
  endif()
endif()
# Eigen's headers are treated as system headers so that their warnings do not fail -Werror.
get_target_property(_eigen_inc Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
target_include_directories(ergo_dev SYSTEM INTERFACE ${_eigen_inc})

# ergo_fast_gemm: the tools and benchmarks (not the tests) let Eigen call the system BLAS for its
# large products when one is installed (ERGO_TOOLS_BLAS, on by default): OpenBLAS's AVX-512
# kernels ran the reference SAE GEMMs 1.5-1.7x faster than Eigen's own (docs/sae.md, "The fastest
# GEMM"). The header-only library itself stays BLAS-free unless a user sets ERGO_USE_BLAS. Off in
# sanitizer builds (OpenBLAS's thread pool is not instrumented).
#
# When the BLAS found is OpenBLAS and Debian's OpenMP build of it is installed
# (libopenblas0-openmp, ERGO_OPENBLAS_OPENMP), they load that build whatever the system's default
# (the pthreads build, by Debian's alternatives): linked by its path, with its directory in the
# run path. The pthreads build's idle threads spin after each call and slowed ergo's own parallel
# loops up to 2x at 2 threads (ergo/core/blas.hpp, docs/sae.md "Benchmark").
option(ERGO_OPENBLAS_OPENMP "Tools and benchmarks load OpenBLAS's OpenMP build when installed" ON)
add_library(ergo_fast_gemm INTERFACE)
if(ERGO_TOOLS_BLAS AND NOT ERGO_USE_BLAS AND NOT ERGO_SANITIZE)
  find_package(BLAS QUIET)
  if(BLAS_FOUND)
    set(_blas BLAS::BLAS)
    set(_openblas_omp "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp/libopenblas.so.0")
    if(ERGO_OPENBLAS_OPENMP AND BLAS_LIBRARIES MATCHES "openblas" AND EXISTS "${_openblas_omp}")
      set(_blas "${_openblas_omp}")
      set(CMAKE_INSTALL_RPATH_USE_LINK_PATH ON)  # installed tools keep finding it
    endif()
    target_link_libraries(ergo_fast_gemm INTERFACE ${_blas})
    target_compile_definitions(ergo_fast_gemm INTERFACE EIGEN_USE_BLAS)
    set(ERGO_FAST_GEMM_BLAS "${_blas}")  # tests/CMakeLists.txt: ergo_blas_tests
    if(_blas STREQUAL "BLAS::BLAS")
      set(_blas "${BLAS_LIBRARIES}")
    endif()
    message(STATUS "ergo: tools and benchmarks use the system BLAS for GEMM (${_blas})")
  endif()
endif()

# ergo_bf16: bf16 GEMMs through oneDNN (ergo/core/bf16_gemm.hpp; Debian libdnnl-dev) for the
# tools, the benchmarks and the sae tests: TrainerParams::bf16_gemm / `ergo-sae train --bf16`.
# Optional (ERGO_DNNL, on when oneDNN is found); without it the header compiles and reports bf16
# as unavailable. Users link oneDNN and define ERGO_HAVE_DNNL themselves. Found by its header and
# library rather than its CMake package: Debian's dnnl-config.cmake also requires the OpenCL
# development files (its GPU runtime), which the CPU kernels used here do not need. Off in
# sanitizer builds (oneDNN's JIT kernels are not instrumented).
find_path(ERGO_DNNL_INCLUDE_DIR dnnl.hpp)
find_library(ERGO_DNNL_LIBRARY dnnl)
if(ERGO_DNNL_INCLUDE_DIR AND ERGO_DNNL_LIBRARY AND NOT ERGO_SANITIZE)
  set(_ergo_dnnl_default ON)
else()
  set(_ergo_dnnl_default OFF)
endif()
option(ERGO_DNNL "bf16 GEMMs through oneDNN (libdnnl-dev) in the tools, benchmarks and tests"
  ${_ergo_dnnl_default})
add_library(ergo_bf16 INTERFACE)
if(ERGO_DNNL)
  if(NOT ERGO_DNNL_INCLUDE_DIR OR NOT ERGO_DNNL_LIBRARY)
    message(FATAL_ERROR "ERGO_DNNL is ON but oneDNN was not found: install Debian's libdnnl-dev "
                        "or set ERGO_DNNL_INCLUDE_DIR and ERGO_DNNL_LIBRARY")
  endif()
  target_include_directories(ergo_bf16 SYSTEM INTERFACE ${ERGO_DNNL_INCLUDE_DIR})
  target_link_libraries(ergo_bf16 INTERFACE ${ERGO_DNNL_LIBRARY})
  target_compile_definitions(ergo_bf16 INTERFACE ERGO_HAVE_DNNL=1)
  message(STATUS "ergo: bf16 GEMMs through oneDNN (${ERGO_DNNL_LIBRARY})")
endif()
