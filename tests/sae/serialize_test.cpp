// SPDX-License-Identifier: MIT
// Saving and loading ergo SAEs (sae/serialize.hpp): the native file and the SAELens folder round
// trip every architecture exactly (weights and codes), the parameters' JSON is strict (unknown
// architecture, key, value or tensor raise errors naming the function, the argument, what was
// expected and what was found), and an input scale folded before a SAELens export gives the
// codes of the unfolded SAE on scaled inputs.

#include <ergo/sae.hpp>

#include "common/test_utils.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace {

using ergo::Index;
using ergo::Matrix;
namespace sae = ergo::sae;
namespace io = ergo::io;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

/// A fresh directory under the test temp dir, removed with its files at destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "ergo_sae_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    m_path = ::mkdtemp(buf.data());
  }
  ~TempDir() { remove(m_path); }
  std::string file(const std::string& name) const { return m_path + "/" + name; }

 private:
  static void remove(const std::string& path) {
    if (DIR* d = ::opendir(path.c_str())) {
      while (dirent* e = ::readdir(d)) {
        const std::string n = e->d_name;
        if (n != "." && n != "..") remove(path + "/" + n);
      }
      ::closedir(d);
      ::rmdir(path.c_str());
    } else {
      ::unlink(path.c_str());
    }
  }
  std::string m_path;
};

struct SerializeCase {
  std::string name;
  sae::SparseAutoencoderParams params;
};

// Every architecture, with the variants that change its tensors or its hyper-parameters.
std::vector<SerializeCase> serialize_cases() {
  auto base = [](sae::Architecture a) {
    sae::SparseAutoencoderParams p;
    p.architecture = a;
    p.d_in = 5;
    p.d_sae = 8;
    p.topk.k = 3;
    p.batchtopk.k = 2;
    return p;
  };
  std::vector<SerializeCase> out;
  for (const auto& row : sae::kArchitectures) out.push_back({row.name, base(row.architecture)});
  auto p = base(sae::Architecture::ReluL1);
  p.relu_l1.decoder_norm_penalty = true;
  p.unit_norm_decoder = false;
  out.push_back({"relu_l1_decoder_norm", p});
  p = base(sae::Architecture::JumpReLU);
  p.jumprelu.bandwidth = 0.125;
  p.apply_b_dec_to_input = false;
  out.push_back({"jumprelu_no_pre_bias", p});
  p = base(sae::Architecture::Structured);
  p.structured.dense_width = 3;
  out.push_back({"structured_h3", p});
  for (auto n : {sae::UnmixerNorm::LayerNorm, sae::UnmixerNorm::GroupNorm}) {
    p = base(sae::Architecture::Unmixer);
    p.unmixer.norm = n;
    p.unmixer.groups = 4;
    p.unmixer.activation = sae::UnmixerActivation::Selu;
    out.push_back({std::string("unmixer_") + sae::to_string(n), p});
  }
  return out;
}

// Random values in every tensor (biases and thresholds too), so that a lost tensor shows.
template <class S>
sae::SparseAutoencoder<S> random_sae(const sae::SparseAutoencoderParams& p, std::uint64_t seed) {
  ergo::Rng rng(seed);
  sae::SparseAutoencoder<S> m(p, rng);
  for (const auto& kv : m.named_weights())
    m.set_named_weight(kv.first,
                       rng.normal_matrix<S>(kv.second.rows(), kv.second.cols(), 0.2, 0.5));
  return m;
}

template <class S>
void expect_same(const sae::SparseAutoencoder<S>& a, const sae::SparseAutoencoder<S>& b,
                 const Matrix<S>& x, const std::string& name) {
  EXPECT_EQ(a.architecture(), b.architecture()) << name;
  EXPECT_EQ(sae::params_to_json(a.params()), sae::params_to_json(b.params())) << name;
  const auto wa = a.named_weights(), wb = b.named_weights();
  ASSERT_EQ(wa.size(), wb.size()) << name;
  for (const auto& kv : wa) EXPECT_TRUE(kv.second == wb.at(kv.first)) << name << " " << kv.first;
  EXPECT_TRUE(a.encode(x) == b.encode(x)) << name;  // bit for bit
  EXPECT_EQ(a.normalization_factor(), b.normalization_factor()) << name;
}

TEST(SaeSerialize, NativeRoundTripIsExactForEveryArchitecture) {
  TempDir dir;
  ergo::Rng rng(5);
  const Matrix<float> x = rng.normal_matrix<float>(5, 30);
  for (const SerializeCase& c : serialize_cases()) {
    sae::SparseAutoencoder<float> m = random_sae<float>(c.params, 7);
    m.fold_input_scale(1.5);  // the scale is recorded and restored
    const std::string path = dir.file(c.name + ".safetensors");
    sae::save_native(path, m, {{"note", c.name}});
    nlohmann::json extra;
    const auto back = sae::load_native<float>(path, &extra);
    expect_same(m, back, x, c.name);
    EXPECT_EQ(extra["note"], c.name);
    std::string layout;
    expect_same(m, sae::load_any<float>(path, 0, &layout), x, c.name);
    EXPECT_EQ(layout, "ergo");
  }
  // double weights are stored as double: exact too
  const auto md = random_sae<double>(serialize_cases()[1].params, 9);
  sae::save_native(dir.file("d.safetensors"), md);
  expect_same(md, sae::load_native<double>(dir.file("d.safetensors")),
              Matrix<double>(x.cast<double>()), "double");
}

TEST(SaeSerialize, SaeLensRoundTripIsExactForEveryExportableArchitecture) {
  TempDir dir;
  ergo::Rng rng(6);
  const Matrix<float> x = rng.normal_matrix<float>(5, 30);
  Index exported = 0;
  for (const SerializeCase& c : serialize_cases()) {
    sae::SparseAutoencoder<float> m = random_sae<float>(c.params, 8);
    if (!sae::saelens_exportable(m)) {
      EXPECT_THAT([&] { sae::export_saelens(dir.file(c.name), m); },
                  ThrowsMessage<ergo::InvalidArgument>(HasSubstr("export_saelens(): sae:")));
      continue;
    }
    if (c.params.architecture == sae::Architecture::BatchTopK)
      m.set_batch_threshold(0.3);  // BatchTopK's threshold is one value for every latent
    sae::export_saelens(dir.file(c.name), m);
    const io::LoadedSae<float> l = io::load_sae<float>(dir.file(c.name));
    EXPECT_EQ(l.config.architecture, sae::saelens_architecture(m.architecture())) << c.name;
    expect_same(m, sae::from_saelens(l), x, c.name);  // ergo's params in cfg.json: same arch
    std::string layout;
    expect_same(m, sae::load_any<float>(dir.file(c.name), 0, &layout), x, c.name);
    EXPECT_EQ(layout, "saelens");
    // without ergo's parameters, SAELens's own architecture computes the same codes
    io::LoadedSae<float> plain = l;
    plain.config.ergo = nlohmann::json::object();
    const auto foreign = sae::from_saelens(plain);
    EXPECT_EQ(foreign.architecture(), sae::architecture_from_saelens(l.config.architecture));
    EXPECT_TRUE(foreign.encode(x) == m.encode(x)) << c.name;  // (BatchTopK: as JumpReLU)
    ++exported;
  }
  Index expected = 0;
  for (const SerializeCase& c : serialize_cases())
    expected += sae::saelens_architecture(c.params.architecture)[0] ? 1 : 0;
  EXPECT_EQ(exported, expected);
  EXPECT_GE(exported, 7);  // relu_l1, topk, batchtopk, jumprelu, p_anneal, and 2 variants
}

// An SAE trained on s·x, folded, exported to SAELens and read back gives the unfolded SAE's codes
// on s·x and its reconstructions divided by s (this was io's SaeWeights::fold_input_scale test).
TEST(SaeSerialize, FoldedScaleSurvivesTheSaeLensExport) {
  TempDir dir;
  ergo::Rng rng(4);
  const Matrix<double> x = rng.normal_matrix<double>(5, 7);
  const double s = 2.5;
  for (auto a : {sae::Architecture::ReluL1, sae::Architecture::TopK, sae::Architecture::JumpReLU}) {
    sae::SparseAutoencoderParams p;
    p.architecture = a;
    p.d_in = 5;
    p.d_sae = 10;
    p.topk.k = 3;
    const auto m = random_sae<double>(p, 5);
    sae::SparseAutoencoder<double> folded = m;
    folded.fold_input_scale(s);
    sae::export_saelens(dir.file(sae::to_string(a)), folded);
    const auto back = sae::load_any<double>(dir.file(sae::to_string(a)));
    const Matrix<double> zs = m.encode(s * x);
    // products of O(10) terms of size O(1) in double: 1e-12 is far above rounding (~1e-15)
    EXPECT_EIGEN_NEAR(back.encode(x), zs, 1e-12);
    EXPECT_EIGEN_NEAR(back.decode(zs), Matrix<double>(m.decode(zs) / s), 1e-12);
    EXPECT_DOUBLE_EQ(back.normalization_factor(), s);
  }
}

TEST(SaeSerialize, ParamsJsonIsStrict) {
  sae::SparseAutoencoderParams p;
  p.architecture = sae::Architecture::Unmixer;
  p.d_in = 4;
  p.d_sae = 8;
  p.unmixer.norm = sae::UnmixerNorm::GroupNorm;
  p.unmixer.groups = 2;
  const nlohmann::json j = sae::params_to_json(p);
  EXPECT_EQ(j["unmixer_norm"], "groupnorm");
  EXPECT_FALSE(j.contains("k"));  // only this architecture's hyper-parameters
  EXPECT_EQ(sae::params_to_json(sae::params_from_json(j)), j);
  auto fails = [&](nlohmann::json bad, std::vector<std::string> parts) {
    try {
      sae::params_from_json(bad);
      ADD_FAILURE() << "no error for " << bad.dump();
    } catch (const ergo::InvalidArgument& e) {
      for (const auto& s : parts) EXPECT_THAT(e.what(), HasSubstr(s)) << bad.dump();
    }
  };
  nlohmann::json bad = j;
  bad["architecture"] = "gated";
  fails(bad, {"params_from_json(): architecture: expected one of relu_l1, topk", "got \"gated\""});
  bad = j;
  bad["unmixer_norm"] = "batchnorm";  // was silently read as "none" before
  fails(bad, {"params_from_json(): unmixer_norm: expected one of none, layernorm or groupnorm",
              "got \"batchnorm\""});
  bad = j;
  bad["unmixer_activation"] = "swish";
  fails(bad, {"unmixer_activation: expected one of softplus, elu+1, selu or exp", "\"swish\""});
  bad = j;
  bad["colour"] = "blue";
  fails(bad, {"params_from_json(): key: expected architecture, d_in, d_sae", "unmixer_norm",
              "got \"colour\""});
  bad = j;
  bad["groups"] = "two";
  fails(bad, {"params_from_json(): groups: expected an integer, got \"two\""});
  bad = j;
  bad.erase("d_sae");
  fails(bad, {"params_from_json(): d_sae: expected an integer, got none"});
  bad = j;
  bad["groups"] = 3;  // not a divisor of d_sae: the ranges are checked too
  fails(bad, {"SparseAutoencoderParams::check(): unmixer.groups: expected a divisor of d_sae"});
  // files written before the per-architecture parameters carry every architecture's keys
  nlohmann::json legacy = j;
  legacy["k"] = 32;
  legacy["bandwidth"] = 0.01;
  legacy["dense_width"] = -1;
  EXPECT_EQ(sae::params_to_json(sae::params_from_json(legacy)), j);
}

TEST(SaeSerialize, NativeFilesWithUnknownContentRaise) {
  TempDir dir;
  sae::SparseAutoencoderParams p;
  p.architecture = sae::Architecture::TopK;
  p.d_in = 4;
  p.d_sae = 6;
  p.topk.k = 2;
  const sae::SparseAutoencoder<float> m(p, 1);
  // a tensor that is not a weight of the architecture
  io::Checkpoint ck;
  for (const auto& kv : m.named_weights()) ck.put(kv.first, kv.second);
  ck.put("threshold", Matrix<float>::Zero(6, 1));
  ck.set_string("ergo_sae_params", sae::params_to_json(p).dump());
  ck.save(dir.file("extra.safetensors"));
  EXPECT_THAT([&] { sae::load_native<float>(dir.file("extra.safetensors")); },
              ThrowsMessage<io::FormatError>(
                  AllOf(HasSubstr("load_native(): '" + dir.file("extra.safetensors") +
                                  "' tensor 'threshold': expected a weight of topk (W_dec, W_enc, "
                                  "b_dec, b_enc), got an unknown name"))));
  // a weight missing
  io::Checkpoint few;
  few.put("W_enc", m.weights().encoder);
  few.set_string("ergo_sae_params", sae::params_to_json(p).dump());
  few.save(dir.file("few.safetensors"));
  EXPECT_THAT(
      [&] { sae::load_native<float>(dir.file("few.safetensors")); },
      ThrowsMessage<io::FormatError>(HasSubstr("tensor 'W_dec': expected present, got missing")));
  // parameters naming an unknown architecture
  nlohmann::json j = sae::params_to_json(p);
  j["architecture"] = "gated";
  io::Checkpoint arch;
  for (const auto& kv : m.named_weights()) arch.put(kv.first, kv.second);
  arch.set_string("ergo_sae_params", j.dump());
  arch.save(dir.file("arch.safetensors"));
  EXPECT_THAT(
      [&] { sae::load_native<float>(dir.file("arch.safetensors")); },
      ThrowsMessage<io::FormatError>(
          AllOf(HasSubstr("load_native(): '" + dir.file("arch.safetensors") + "' ergo_sae_params"),
                HasSubstr("architecture: expected one of relu_l1"), HasSubstr("\"gated\""))));
}

TEST(SaeSerialize, SaeLensImportChecksKAndThreshold) {
  io::LoadedSae<float> l;
  ergo::Rng rng(2);
  l.weights.encoder = rng.normal_matrix<float>(6, 4);
  l.weights.b_enc = Matrix<float>::Zero(6, 1).col(0);
  l.weights.decoder = rng.normal_matrix<float>(4, 6);
  l.weights.b_dec = Matrix<float>::Zero(4, 1).col(0);
  l.config.architecture = "topk";  // a bare sparsify file: k unknown
  EXPECT_THAT([&] { sae::from_saelens(l); },
              ThrowsMessage<ergo::InvalidArgument>(HasSubstr(
                  "from_saelens(): k: expected k in [1, d_sae] for a topk SAE (give --k when the "
                  "file does not say), got 0")));
  l.config.k = 2;
  EXPECT_EQ(sae::from_saelens(l).params().topk.k, 2);
  l.config.architecture = "standard";
  l.weights.threshold = Matrix<float>::Ones(6, 1).col(0);
  EXPECT_THAT(
      [&] { sae::from_saelens(l); },
      ThrowsMessage<ergo::InvalidArgument>(HasSubstr(
          "from_saelens(): threshold: expected no threshold for a relu_l1 SAE, got 6 values")));
  l.config.architecture = "jumprelu";
  EXPECT_EQ(sae::from_saelens(l).architecture(), sae::Architecture::JumpReLU);
}

}  // namespace
