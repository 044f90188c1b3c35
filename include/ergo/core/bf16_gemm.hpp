// SPDX-License-Identifier: MIT
#pragma once

/// \file bf16_gemm.hpp
/// \brief Optional bf16 GEMMs: C = op(A) op(B) on float matrices with the operands rounded to
/// bfloat16 and the products accumulated and returned in float, through oneDNN's matmul
/// primitive, for CPUs with AVX512_BF16 (where a bf16 product runs at twice the fp32 rate).
///
/// oneDNN is optional: this header compiles without it, and then bf16_available() is false and
/// constructing a Bf16Gemm throws. ergo's own tools, benchmarks and tests link the CMake target
/// `ergo_bf16` (it defines ERGO_HAVE_DNNL and links oneDNN, from Debian's libdnnl-dev); elsewhere
/// define ERGO_HAVE_DNNL and link -ldnnl, in every translation unit of the program alike (the
/// class's layout depends on it). oneDNN runs on the process's OpenMP threads
/// (omp_get_max_threads()).
///
/// Rounding an operand to bf16 keeps 8 significant bits (relative error ≤ 2⁻⁹ per entry), so a
/// product of length K has a relative error of roughly 2⁻⁹/√K·(typical) to 2⁻⁹ (worst case);
/// docs/sae.md ("bf16 GEMMs") measures what that does to SAE training.

#include "error.hpp"
#include "types.hpp"

#include <map>
#include <memory>
#include <string>
#include <tuple>

#ifdef ERGO_HAVE_DNNL
#include <dnnl.hpp>
#endif

namespace ergo {

/// \brief True when this build has oneDNN (ERGO_HAVE_DNNL) and the CPU has AVX512_BF16.
inline bool bf16_available() {
#if defined(ERGO_HAVE_DNNL) && defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  return __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

/// \brief One line on the bf16 GEMMs: oneDNN's version and the CPU's support, or why they are
/// unavailable.
inline std::string bf16_description() {
#ifdef ERGO_HAVE_DNNL
  const dnnl_version_t* v = dnnl_version();
  std::string s = detail::str_cat("oneDNN ", v->major, ".", v->minor, ".", v->patch);
  return bf16_available() ? s + " (AVX512_BF16)"
                          : s + ", but this CPU has no AVX512_BF16 (bf16 GEMMs unavailable)";
#else
  return "built without oneDNN (bf16 GEMMs unavailable: define ERGO_HAVE_DNNL and link oneDNN)";
#endif
}

/// \brief bf16 GEMMs on float matrices, with oneDNN's primitives cached per shape.
///
/// multiply(C, A, ta, B, tb) computes C = op(A) op(B), op(X) = Xᵀ when its flag is set, with
/// column-major float operands (any outer stride) and C resized to op(A).rows() × op(B).cols().
/// Each call rounds A and B to bf16 (oneDNN reorders, ≈ 1 ms per 10⁷ entries) and runs the
/// matmul with fp32 accumulation. Not thread-safe: one object per training loop.
class Bf16Gemm {
 public:
  /// \throws RuntimeError when bf16_available() is false (the message says why).
  Bf16Gemm() {
    if (!bf16_available())
      throw RuntimeError(
          detail::str_cat("Bf16Gemm: bf16 GEMMs are not available: ", bf16_description()));
#ifdef ERGO_HAVE_DNNL
    m = std::make_shared<Impl>();
#endif
  }

  /// \brief C = op(A) op(B) (A: M × K after op, B: K × N after op, C: M × N).
  void multiply(Matrix<float>& c, const Eigen::Ref<const Matrix<float>>& a, bool ta,
                const Eigen::Ref<const Matrix<float>>& b, bool tb) {
    const Index M = ta ? a.cols() : a.rows(), K = ta ? a.rows() : a.cols();
    const Index K2 = tb ? b.cols() : b.rows(), N = tb ? b.rows() : b.cols();
    check_arg(K == K2, "Bf16Gemm::multiply", "b",
              detail::str_cat("op(b) with ", K, " rows (op(a)'s columns)"),
              detail::str_cat(K2, " rows"));
    c.resize(M, N);
    if (M == 0 || N == 0) return;
    if (K == 0) {
      c.setZero();
      return;
    }
#ifdef ERGO_HAVE_DNNL
    m->run(c, a, ta, b, tb, M, N, K);
#endif
  }

 private:
#ifdef ERGO_HAVE_DNNL
  // In oneDNN's row-major terms, Cᵀ (N × M) = op(B)ᵀ (N × K, "src") · op(A)ᵀ (K × M, "weights"):
  // a column-major X (r × c) with outer stride ld is the row-major tensor Xᵀ with strides {ld, 1},
  // and its transpose the tensor X with strides {1, ld}.
  struct Plan {
    dnnl::memory::desc src32, wei32, dst32;
    dnnl::memory src16, wei16;
    dnnl::reorder to_src, to_wei;
    dnnl::matmul mm;
  };
  struct Impl {
    dnnl::engine eng{dnnl::engine::kind::cpu, 0};
    dnnl::stream strm{eng};
    std::map<std::tuple<Index, Index, Index, bool, bool, Index, Index>, Plan> plans;

    // C is a plain matrix (outer stride M), so the shape, flags and A's and B's strides are the key
    Plan& plan(Index M, Index N, Index K, bool ta, bool tb, Index lda, Index ldb) {
      const auto key = std::make_tuple(M, N, K, ta, tb, lda, ldb);
      auto it = plans.find(key);
      if (it != plans.end()) return it->second;
      using md = dnnl::memory::desc;
      using dt = dnnl::memory::data_type;
      using tag = dnnl::memory::format_tag;
      Plan p;
      p.src32 = md({N, K}, dt::f32, tb ? dnnl::memory::dims{1, ldb} : dnnl::memory::dims{ldb, 1});
      p.wei32 = md({K, M}, dt::f32, ta ? dnnl::memory::dims{1, lda} : dnnl::memory::dims{lda, 1});
      p.dst32 = md({N, M}, dt::f32, dnnl::memory::dims{M, 1});
      const md src16({N, K}, dt::bf16, tag::any), wei16({K, M}, dt::bf16, tag::any);
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src16, wei16, p.dst32), eng);
      p.src16 = dnnl::memory(pd.src_desc(), eng);
      p.wei16 = dnnl::memory(pd.weights_desc(), eng);
      p.to_src = dnnl::reorder(dnnl::memory(p.src32, eng, DNNL_MEMORY_NONE), p.src16);
      p.to_wei = dnnl::reorder(dnnl::memory(p.wei32, eng, DNNL_MEMORY_NONE), p.wei16);
      p.mm = dnnl::matmul(pd);
      return plans.emplace(key, std::move(p)).first->second;
    }

    void run(Matrix<float>& c, const Eigen::Ref<const Matrix<float>>& a, bool ta,
             const Eigen::Ref<const Matrix<float>>& b, bool tb, Index M, Index N, Index K) {
      Plan& p = plan(M, N, K, ta, tb, a.outerStride(), b.outerStride());
      // oneDNN takes non-const handles; it only reads the sources
      dnnl::memory a32(p.wei32, eng, const_cast<float*>(a.data()));
      dnnl::memory b32(p.src32, eng, const_cast<float*>(b.data()));
      dnnl::memory c32(p.dst32, eng, c.data());
      p.to_src.execute(strm, b32, p.src16);
      p.to_wei.execute(strm, a32, p.wei16);
      p.mm.execute(strm,
                   {{DNNL_ARG_SRC, p.src16}, {DNNL_ARG_WEIGHTS, p.wei16}, {DNNL_ARG_DST, c32}});
      strm.wait();
    }
  };
  std::shared_ptr<Impl> m;
#endif
};

}  // namespace ergo
