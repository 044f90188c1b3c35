// SPDX-License-Identifier: MIT
// The architecture registry: lookups by ergo name and by SAELens name both ways, the table's
// columns, traits that agree with what each architecture does, hyper-parameters by name, and
// the messages of unknown names.

#include <ergo/sae.hpp>

#include "common/test_utils.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace {

using ergo::Index;
using ergo::Matrix;
namespace sae = ergo::sae;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

sae::SparseAutoencoderParams small(sae::Architecture a) {
  sae::SparseAutoencoderParams p;
  p.architecture = a;
  p.d_in = 6;
  p.d_sae = 12;
  p.topk.k = 3;
  p.batchtopk.k = 3;
  p.unmixer.norm = sae::UnmixerNorm::LayerNorm;
  return p;
}

// The registered architectures (update the count and the list when adding one).
TEST(SaeRegistry, NamesRoundTripAndAreUnique) {
  std::set<std::string> names;
  ASSERT_EQ(sae::kArchitectureCount, 7);
  for (const auto& row : sae::kArchitectures) {
    EXPECT_EQ(&sae::architecture_info(row.architecture), &row);
    EXPECT_EQ(sae::architecture_from_string(sae::to_string(row.architecture)), row.architecture);
    EXPECT_TRUE(names.insert(row.name).second) << row.name;
  }
  EXPECT_EQ(sae::architecture_from_string("relu_l1"), sae::Architecture::ReluL1);
  EXPECT_EQ(sae::architecture_from_string("p_anneal"), sae::Architecture::PAnneal);
  EXPECT_STREQ(sae::to_string(sae::Architecture::BatchTopK), "batchtopk");
  EXPECT_EQ(sae::architecture_names(),
            "relu_l1, topk, batchtopk, jumprelu, p_anneal, structured, unmixer");
}

// SAELens name of each architecture, and the architecture each SAELens name loads as.
TEST(SaeRegistry, SaeLensNamesBothWays) {
  EXPECT_STREQ(sae::saelens_architecture(sae::Architecture::ReluL1), "standard");
  EXPECT_STREQ(sae::saelens_architecture(sae::Architecture::TopK), "topk");
  EXPECT_STREQ(sae::saelens_architecture(sae::Architecture::BatchTopK), "jumprelu");
  EXPECT_STREQ(sae::saelens_architecture(sae::Architecture::JumpReLU), "jumprelu");
  EXPECT_STREQ(sae::saelens_architecture(sae::Architecture::PAnneal), "standard");
  EXPECT_STREQ(sae::saelens_architecture(sae::Architecture::Structured), "");
  EXPECT_STREQ(sae::saelens_architecture(sae::Architecture::Unmixer), "");
  EXPECT_EQ(sae::architecture_from_saelens("standard"), sae::Architecture::ReluL1);
  EXPECT_EQ(sae::architecture_from_saelens("topk"), sae::Architecture::TopK);
  EXPECT_EQ(sae::architecture_from_saelens("jumprelu"), sae::Architecture::JumpReLU);
  // every exportable architecture maps back to one with the same SAELens inference function
  for (const auto& row : sae::kArchitectures) {
    if (row.saelens_name[0] == '\0') continue;
    const sae::Architecture back = sae::architecture_from_saelens(row.saelens_name);
    EXPECT_STREQ(sae::saelens_architecture(back), row.saelens_name);
    EXPECT_EQ(back == row.architecture, row.traits.saelens_native) << row.name;
  }
  EXPECT_EQ(sae::architecture_names(/*saelens=*/true), "standard, topk, jumprelu");
}

TEST(SaeRegistry, UnknownNamesRaiseNamingFunctionArgumentExpectedAndFound) {
  EXPECT_THAT([] { sae::architecture_from_string("gated"); },
              ThrowsMessage<ergo::InvalidArgument>(
                  AllOf(HasSubstr("architecture_from_string(): s: expected one of relu_l1, topk, "
                                  "batchtopk, jumprelu, p_anneal, structured, unmixer"),
                        HasSubstr(", got \"gated\""))));
  EXPECT_THAT([] { sae::architecture_from_saelens("gated"); },
              ThrowsMessage<ergo::InvalidArgument>(HasSubstr(
                  "architecture_from_saelens(): s: expected one of standard, topk, jumprelu, "
                  "got \"gated\"")));
  EXPECT_THAT([] { sae::architecture_info(static_cast<sae::Architecture>(42)); },
              ThrowsMessage<ergo::InvalidArgument>(HasSubstr("architecture_info(): a:")));
}

// The default coefficients of the table (unchanged from before the registry).
TEST(SaeRegistry, DefaultSparsityCoefficients) {
  EXPECT_EQ(sae::default_sparsity_coefficient(sae::Architecture::ReluL1), 3.0);
  EXPECT_EQ(sae::default_sparsity_coefficient(sae::Architecture::TopK), 0.0);
  EXPECT_EQ(sae::default_sparsity_coefficient(sae::Architecture::BatchTopK), 0.0);
  EXPECT_EQ(sae::default_sparsity_coefficient(sae::Architecture::JumpReLU), 1.0);
  EXPECT_EQ(sae::default_sparsity_coefficient(sae::Architecture::PAnneal), 3.0);
  EXPECT_EQ(sae::default_sparsity_coefficient(sae::Architecture::Structured), 3.0);
  EXPECT_EQ(sae::default_sparsity_coefficient(sae::Architecture::Unmixer), 0.3);
}

// Each trait says something the architecture really does.
TEST(SaeRegistry, TraitsAgreeWithTheArchitectures) {
  ergo::Rng rng(3);
  const Matrix<double> x = rng.normal_matrix<double>(6, 20);
  for (const auto& row : sae::kArchitectures) {
    const sae::SparseAutoencoderParams p = small(row.architecture);
    sae::SparseAutoencoderd m(p, 1);
    const auto& t = row.traits;
    EXPECT_EQ(&m.traits(), &row.traits);
    EXPECT_EQ(t.has_k, sae::has_option(p, "k")) << row.name;
    EXPECT_EQ(t.has_k, m.config().k > 0) << row.name;
    EXPECT_EQ(t.has_threshold, m.weights().has_extra("threshold")) << row.name;
    EXPECT_EQ(t.has_threshold, std::string(row.saelens_name) == "jumprelu") << row.name;
    EXPECT_TRUE(!t.aux_k || t.sparse_kernels) << row.name;
    EXPECT_EQ(t.pre_bias, row.architecture != sae::Architecture::Unmixer) << row.name;
    EXPECT_EQ(m.config().apply_b_dec_to_input, t.pre_bias) << row.name;
    // sparse_branch: encode_sparse differs from encode exactly when the codes have a dense part
    if (m.weights().has_extra("W_dense")) m.weights().extra("W_dense").setConstant(0.3);
    EXPECT_EQ(t.sparse_branch, !(m.encode_sparse(x) == m.encode(x))) << row.name;
    // the sparse kernels build compressed codes, always (sparse_kernels) or when the density
    // rule asks for them (sparse_by_density; forced here); a dense-only step leaves them empty
    sae::Workspace<double> ws, ws_sparse;
    ws_sparse.sparse_kernel_density = 2.0;
    auto g = m.make_gradients();
    sae::LossWeights lw;
    lw.sparsity = 0.5;
    lw.p = 0.5;
    m.forward_backward(x, lw, ws_sparse, g);
    EXPECT_EQ(t.sparse_kernels || t.sparse_by_density, ws_sparse.codes.nnz() > 0) << row.name;
    EXPECT_EQ(t.sparse_by_density, ws_sparse.sparse_path) << row.name;
    EXPECT_TRUE(!t.sparse_by_density || t.sparse_activation) << row.name;
    m.forward_backward(x, lw, ws, g);
    // anneals_p: the L_p^p penalty of the last batch is reported
    EXPECT_EQ(t.anneals_p, m.lp_penalty(ws, 0.5) > 0.0) << row.name;
  }
}

TEST(SaeRegistry, VisitDispatchesToThePolicyClass) {
  auto fields = [](const sae::Traits& t) {
    return std::vector<bool>{t.has_k,          t.has_threshold,     t.pre_bias,
                             t.sparse_kernels, t.sparse_by_density, t.sparse_activation,
                             t.aux_k,          t.anneals_p,         t.sparse_branch,
                             t.saelens_native};
  };
  for (const auto& row : sae::kArchitectures) {
    const sae::Traits t = sae::visit_architecture(
        row.architecture, [](auto tag) { return decltype(tag)::type::traits; });
    EXPECT_EQ(fields(t), fields(row.traits)) << row.name;
  }
  // distinct architectures are told apart (the comparison above is not vacuous)
  EXPECT_NE(fields(sae::architecture_info(sae::Architecture::TopK).traits),
            fields(sae::architecture_info(sae::Architecture::ReluL1).traits));
}

TEST(SaeRegistry, HyperParametersByName) {
  sae::SparseAutoencoderParams p = small(sae::Architecture::JumpReLU);
  EXPECT_EQ(sae::option_names(p), (std::vector<std::string>{"init_threshold", "bandwidth"}));
  sae::set_option(p, "bandwidth", "0.25");
  EXPECT_EQ(p.jumprelu.bandwidth, 0.25);
  EXPECT_EQ(sae::get_option(p, "bandwidth"), "0.25");
  EXPECT_EQ(sae::get_option(p, "init_threshold"), "0.01");
  p.architecture = sae::Architecture::Unmixer;
  sae::set_option(p, "unmixer_norm", "groupnorm");
  EXPECT_EQ(p.unmixer.norm, sae::UnmixerNorm::GroupNorm);
  EXPECT_EQ(sae::get_option(p, "unmixer_activation"), "softplus");
  p.architecture = sae::Architecture::TopK;
  sae::set_option(p, "k", "7");
  EXPECT_EQ(p.topk.k, 7);
  EXPECT_EQ(p.batchtopk.k, 3);  // only the active architecture's member
  EXPECT_THAT(
      [&] { sae::set_option(p, "bandwidth", "1"); },
      ThrowsMessage<ergo::InvalidArgument>(HasSubstr(
          "get_option(): name: expected a hyper-parameter of topk (k), got \"bandwidth\"")));
  EXPECT_THAT([&] { sae::set_option(p, "k", "seven"); },
              ThrowsMessage<ergo::InvalidArgument>(
                  HasSubstr("set_option(): topk.k: expected an integer, got \"seven\"")));
  p.architecture = sae::Architecture::Unmixer;
  EXPECT_THAT([&] { sae::set_option(p, "unmixer_norm", "batchnorm"); },
              ThrowsMessage<ergo::InvalidArgument>(HasSubstr(
                  "set_option(): unmixer.unmixer_norm: expected none, layernorm or groupnorm, "
                  "got \"batchnorm\"")));
  // the values are checked by check(), naming the member
  p = small(sae::Architecture::BatchTopK);
  p.batchtopk.k = 13;
  EXPECT_THAT([&] { p.check(); },
              ThrowsMessage<ergo::InvalidArgument>(HasSubstr(
                  "SparseAutoencoderParams::check(): batchtopk.k: expected a value in [1, d_sae "
                  "= 12], got 13")));
}

}  // namespace
