// Tests for ergo/io SAE checkpoints (SAELens write/read, sparsify and dictionary_learning read,
// checked against PyTorch forward passes), the generic Checkpoint, and exact resume of a
// training loop (parameters, Adam moments, RNG state and the activation stream's position).
#include "io_test_utils.hpp"

#include <ergo/model.hpp>
#include <ergo/nn/optimizer.hpp>
#include <ergo/nn/parameter.hpp>
#include <ergo/nn/trainer.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <set>

using namespace ergo;
using namespace ergo::model;
using ergo::io::Checkpoint;
using ergo::io::FormatError;
using ergo::io::LoadedSae;
using ergo::io::SaeLensConfig;
using ergo::io::SaeLensWeights;
using ergo::test::fixture;
using ergo::test::ScratchDir;

namespace {

// The forward passes of the three libraries, written out on ergo's column orientation.
template <class S>
Matrix<S> encode_relu(const SaeLensWeights<S>& w, const Matrix<S>& X, bool apply_b_dec) {
  Matrix<S> pre = w.encoder * (apply_b_dec ? Matrix<S>(X.colwise() - w.b_dec) : X);
  pre.colwise() += w.b_enc;
  return pre.cwiseMax(S(0));
}
template <class S>
Matrix<S> topk_cols(Matrix<S> Z, Index k) {
  for (Index c = 0; c < Z.cols(); ++c) {
    std::vector<S> v(Z.col(c).data(), Z.col(c).data() + Z.rows());
    std::nth_element(v.begin(), v.begin() + (k - 1), v.end(), std::greater<S>());
    const S kth = v[static_cast<std::size_t>(k - 1)];
    for (Index r = 0; r < Z.rows(); ++r)
      if (Z(r, c) < kth) Z(r, c) = 0;
  }
  return Z;
}
template <class S>
Matrix<S> decode(const SaeLensWeights<S>& w, const Matrix<S>& Z) {
  Matrix<S> X = w.decoder * Z;
  X.colwise() += w.b_dec;
  return X;
}

template <class S>
SaeLensWeights<S> random_weights(Index d, Index m, std::uint64_t seed, bool threshold) {
  Rng rng(seed);
  SaeLensWeights<S> w;
  w.encoder = rng.normal_matrix<S>(m, d);
  w.decoder = rng.normal_matrix<S>(d, m);
  w.b_enc = rng.normal_matrix<S>(m, 1);
  w.b_dec = rng.normal_matrix<S>(d, 1);
  if (threshold) w.threshold = rng.uniform_matrix<S>(m, 1, 0.0, 0.5);
  return w;
}

nlohmann::json read_json(const std::string& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}

// float forward passes of 4-term dot products of O(1) values: PyTorch and Eigen may sum in a
// different order, so results agree to a few float ulps of O(10) magnitudes; 1e-5 is ~80 ulps.
constexpr float kTorchTol = 1e-5f;

}  // namespace

// ----------------------------------------------------------- reading other libraries ----

TEST(IoSaeLayouts, SaeLensFolderMatchesTorchForwardPass) {
  const LoadedSae<float> s = io::load_sae<float>(fixture("saelens_standard"));
  EXPECT_EQ(s.layout, io::SaeLayout::SaeLens);
  EXPECT_EQ(s.config.architecture, "standard");
  EXPECT_EQ(s.config.d_in, 4);
  EXPECT_EQ(s.config.d_sae, 6);
  EXPECT_EQ(s.config.metadata.model_name, "pythia-70m-deduped");
  EXPECT_EQ(s.config.metadata.hook_name, "blocks.3.hook_resid_post");
  EXPECT_EQ(s.config.metadata.context_size, 128);
  EXPECT_TRUE(s.config.apply_b_dec_to_input);
  const MatrixXf X = io::read_npy<float>(fixture("sae_x.npy"));  // torch x [5, 4] -> 4 × 5
  const MatrixXf Z = encode_relu(s.weights, X, true);
  EXPECT_EIGEN_NEAR(Z, io::read_npy<float>(fixture("saelens_standard_z.npy")), kTorchTol);
  EXPECT_EIGEN_NEAR(decode(s.weights, Z), io::read_npy<float>(fixture("saelens_standard_xhat.npy")),
                    kTorchTol);
}

TEST(IoSaeLayouts, SparsifyFolderMatchesTorchForwardPass) {
  const LoadedSae<float> s = io::load_sae<float>(fixture("sparsify_topk"));
  EXPECT_EQ(s.layout, io::SaeLayout::Sparsify);
  EXPECT_EQ(s.config.architecture, "topk");
  EXPECT_EQ(s.config.k, 2);
  const MatrixXf X = io::read_npy<float>(fixture("sae_x.npy"));
  const MatrixXf Z = topk_cols(encode_relu(s.weights, X, true), s.config.k);
  EXPECT_EIGEN_NEAR(Z, io::read_npy<float>(fixture("sparsify_topk_z.npy")), kTorchTol);
  // Same weights as the SAELens fixture, reached through the transposed nn.Linear layout.
  const LoadedSae<float> ref = io::load_saelens<float>(fixture("saelens_standard"));
  EXPECT_EIGEN_NEAR(s.weights.encoder, ref.weights.encoder, 0.0f);
  EXPECT_EIGEN_NEAR(s.weights.decoder, ref.weights.decoder, 0.0f);
  // The bare file (no cfg.json) also loads; k is then unknown (0).
  const LoadedSae<float> bare = io::load_sae<float>(fixture("sparsify_topk/sae.safetensors"));
  EXPECT_EQ(bare.layout, io::SaeLayout::Sparsify);
  EXPECT_EQ(bare.config.k, 0);
}

TEST(IoSaeLayouts, DictionaryLearningMatchesTorchForwardPass) {
  const LoadedSae<double> s = io::load_sae<double>(fixture("dictlearn_ae.safetensors"));
  EXPECT_EQ(s.layout, io::SaeLayout::DictionaryLearning);
  EXPECT_EQ(s.config.architecture, "standard");
  const MatrixXd X = io::read_npy<double>(fixture("sae_x.npy"));
  const MatrixXd Z = encode_relu(s.weights, X, s.config.apply_b_dec_to_input);
  EXPECT_EIGEN_NEAR(Z, io::read_npy<double>(fixture("dictlearn_ae_z.npy")), kTorchTol);
  EXPECT_EIGEN_NEAR(decode(s.weights, Z), io::read_npy<double>(fixture("dictlearn_ae_xhat.npy")),
                    kTorchTol);
}

// ------------------------------------------------------------------ SAELens writing ----

template <class T>
class IoSaeLensRoundTrip : public ::testing::Test {};
TYPED_TEST_SUITE(IoSaeLensRoundTrip, ergo::test::FloatTypes);

TYPED_TEST(IoSaeLensRoundTrip, ExactForEveryArchitectureWithTheLayoutSaeLensExpects) {
  using S = TypeParam;
  ScratchDir dir;
  const Index d = 5, m = 8;
  for (const std::string arch : {"standard", "topk", "jumprelu"}) {
    SCOPED_TRACE(arch);
    const SaeLensWeights<S> w = random_weights<S>(d, m, 17, arch == "jumprelu");
    SaeLensConfig cfg;
    cfg.architecture = arch;
    cfg.k = arch == "topk" ? 3 : 0;
    cfg.metadata.model_name = "gpt2";
    cfg.metadata.hook_name = "blocks.8.hook_resid_pre";
    cfg.ergo["sae"] = "test";
    const std::string folder = dir.file(arch + "/sae");
    io::save_saelens(folder, w, cfg);
    // Exact round trip.
    const LoadedSae<S> back = io::load_saelens<S>(folder);
    EXPECT_EIGEN_NEAR(back.weights.encoder, w.encoder, S(0));
    EXPECT_EIGEN_NEAR(back.weights.decoder, w.decoder, S(0));
    EXPECT_EIGEN_NEAR(back.weights.b_enc, w.b_enc, S(0));
    EXPECT_EIGEN_NEAR(back.weights.b_dec, w.b_dec, S(0));
    EXPECT_EQ(back.weights.threshold.size(), w.threshold.size());
    if (w.threshold.size()) {
      EXPECT_EIGEN_NEAR(back.weights.threshold, w.threshold, S(0));
    }
    EXPECT_EQ(back.config.architecture, arch);
    EXPECT_EQ(back.config.k, cfg.k);
    EXPECT_EQ(back.config.metadata.hook_name, cfg.metadata.hook_name);
    EXPECT_EQ(back.config.ergo["sae"], "test");
    // cfg.json: the keys SAELens 6 reads, and a metadata version that skips its pre-6 converter.
    const nlohmann::json j = read_json(folder + "/cfg.json");
    EXPECT_EQ(j["architecture"], arch);
    EXPECT_EQ(j["d_in"], d);
    EXPECT_EQ(j["d_sae"], m);
    const std::string want_dtype = std::is_same<S, float>::value ? "float32" : "float64";
    EXPECT_EQ(j["dtype"], want_dtype);
    EXPECT_EQ(j["device"], "cpu");
    EXPECT_EQ(j["apply_b_dec_to_input"], true);
    EXPECT_EQ(j["normalize_activations"], "none");
    EXPECT_EQ(j["reshape_activations"], "none");
    EXPECT_EQ(j["metadata"]["sae_lens_version"], "6.0.0");
    EXPECT_EQ(j["metadata"]["model_name"], "gpt2");
    EXPECT_EQ(j.contains("k"), arch == "topk");
    // sae_weights.safetensors: exactly the state-dict keys SAELens's strict load expects, with
    // W_enc [d_in, d_sae] and W_dec [d_sae, d_in].
    io::SafetensorsFile f(folder + "/sae_weights.safetensors");
    std::set<std::string> names;
    for (const auto& n : f.names()) names.insert(n);
    std::set<std::string> want = {"W_enc", "b_enc", "W_dec", "b_dec"};
    if (arch == "jumprelu") want.insert("threshold");
    EXPECT_EQ(names, want);
    EXPECT_EQ(f.entry("W_enc").info.shape, (std::vector<std::int64_t>{d, m}));
    EXPECT_EQ(f.entry("W_dec").info.shape, (std::vector<std::int64_t>{m, d}));
    EXPECT_EQ(f.entry("b_enc").info.shape, (std::vector<std::int64_t>{m}));
    EXPECT_EQ(f.entry("b_dec").info.shape, (std::vector<std::int64_t>{d}));
    // Element [i, j] of the stored W_enc is encoder(j, i): the same bytes, no transposition.
    const auto raw = f.map<S>("W_enc");
    EXPECT_EQ(raw.rows(), m);
    EXPECT_EIGEN_NEAR(raw, w.encoder, S(0));
  }
}

TEST(IoSaeLens, BFloat16Storage) {
  ScratchDir dir;
  SaeLensWeights<float> w = random_weights<float>(6, 10, 3, false);
  SaeLensConfig cfg;
  cfg.dtype = "bfloat16";
  io::save_saelens(dir.file("bf"), w, cfg);
  const auto back = io::load_saelens<float>(dir.file("bf"));
  EXPECT_EQ(back.config.dtype, "bfloat16");
  // bfloat16 keeps 8 significant bits (7 stored): rounding to nearest moves a value by at most
  // half an ulp, i.e. by <= 2^-8 of its magnitude.
  for (Index k = 0; k < w.encoder.size(); ++k)
    EXPECT_LE(std::abs(back.weights.encoder.data()[k] - w.encoder.data()[k]),
              std::ldexp(std::abs(w.encoder.data()[k]), -8));
  // (Folding an input scale into the weights is SparseAutoencoder::fold_input_scale, tested with
  // the SAELens export in tests/sae/serialize_test.cpp.)
}

TEST(IoSaeLens, ConvertsSparsifyToSaeLens) {
  ScratchDir dir;
  const auto sp = io::load_sae<float>(fixture("sparsify_topk"));
  io::save_saelens(dir.file("conv"), sp.weights, sp.config);
  const auto back = io::load_sae<float>(dir.file("conv"));
  EXPECT_EQ(back.layout, io::SaeLayout::SaeLens);
  EXPECT_EQ(back.config.architecture, "topk");
  EXPECT_EQ(back.config.k, 2);
  EXPECT_EIGEN_NEAR(back.weights.encoder, sp.weights.encoder, 0.0f);
  EXPECT_EIGEN_NEAR(back.weights.decoder, sp.weights.decoder, 0.0f);
  EXPECT_EIGEN_NEAR(back.weights.b_enc, sp.weights.b_enc, 0.0f);
}

TEST(IoSaeLens, RejectsInconsistentWeightsConfigsAndFiles) {
  ScratchDir dir;
  SaeLensWeights<float> w = random_weights<float>(4, 6, 1, false);
  SaeLensConfig topk;
  topk.architecture = "topk";
  EXPECT_THROW_MSG(io::save_saelens(dir.file("a"), w, topk), InvalidArgument, "k", ">= 1");
  SaeLensConfig jr;
  jr.architecture = "jumprelu";
  EXPECT_THROW_MSG(io::save_saelens(dir.file("a"), w, jr), InvalidArgument, "threshold");
  SaeLensConfig bad;
  bad.architecture = "gated";
  EXPECT_THROW_MSG(io::save_saelens(dir.file("a"), w, bad), InvalidArgument, "architecture",
                   "gated");
  SaeLensWeights<float> wt = random_weights<float>(4, 6, 1, true);
  EXPECT_THROW_MSG(io::save_saelens(dir.file("a"), wt, SaeLensConfig{}), InvalidArgument,
                   "threshold");
  SaeLensWeights<float> ws = w;
  ws.b_enc.resize(5);
  EXPECT_THROW_MSG(io::save_saelens(dir.file("a"), ws, SaeLensConfig{}), InvalidArgument, "b_enc",
                   "6 x 1");
  SaeLensWeights<float> wn = w;
  wn.decoder(1, 1) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW_MSG(io::save_saelens(dir.file("a"), wn, SaeLensConfig{}), InvalidArgument, "decoder",
                   "non-finite");
  EXPECT_TRUE(dir.list().empty());  // nothing written by a refused save

  // A cfg.json that disagrees with the tensors, or is not JSON, or names an unsupported
  // architecture: FormatError naming the file.
  io::save_saelens(dir.file("ok"), w, SaeLensConfig{});
  const std::string cfg_path = dir.file("ok/cfg.json");
  nlohmann::json j = read_json(cfg_path);
  j["d_sae"] = 7;
  io::atomic_write_file(cfg_path, j.dump());
  EXPECT_THROW_MSG(io::load_saelens<float>(dir.file("ok")), FormatError,
                   "sae_weights.safetensors:W_enc", "shape [4, 7]", "float32 [4, 6]");
  j["d_sae"] = 6;
  j["architecture"] = "gated";
  io::atomic_write_file(cfg_path, j.dump());
  EXPECT_THROW_MSG(io::load_saelens<float>(dir.file("ok")), FormatError, "cfg.json", "gated");
  io::atomic_write_file(cfg_path, "{\"d_in\": 4,");
  EXPECT_THROW_MSG(io::load_saelens<float>(dir.file("ok")), FormatError, "cfg.json",
                   "malformed JSON");
  EXPECT_THROW_MSG(io::load_sae<float>(dir.path()), FormatError, "neither");
  EXPECT_THROW_MSG(io::load_sae<float>(fixture("st_mixed.safetensors")), FormatError,
                   "known SAE layout");
  // A JumpReLU file without its threshold.
  j["architecture"] = "jumprelu";
  io::atomic_write_file(cfg_path, j.dump());
  EXPECT_THROW_MSG(io::load_saelens<float>(dir.file("ok")), FormatError, "threshold");
}

// ----------------------------------------------------------------------- Checkpoint ----

TEST(IoCheckpoint, RoundTripsTensorsAndMetadataExactly) {
  ScratchDir dir;
  Rng rng(8);
  Checkpoint ck;
  const MatrixXf a = rng.normal_matrix<float>(3, 5);
  const MatrixXd b = rng.normal_matrix<double>(4, 1);
  const IntMatrix c = (IntMatrix(2, 2) << 1, -2, 3, 2147483647).finished();
  ck.put("a", a);
  ck.put("opt.b", b);
  ck.put("opt.c", c);
  ck.put("empty", MatrixXf(0, 3));
  ck.set_string("rng", rng.state());
  ck.set_int("step", 1234567890123LL);
  ck.set_double("lr", 0.1);
  ck.save(dir.file("ck.safetensors"));
  const Checkpoint back = Checkpoint::load(dir.file("ck.safetensors"));
  EXPECT_EIGEN_NEAR(back.get<float>("a"), a, 0.0f);
  EXPECT_EIGEN_NEAR(back.get<double>("opt.b", 4, 1), b, 0.0);
  EXPECT_EQ(back.get<std::int32_t>("opt.c"), c);
  EXPECT_EQ(back.get<float>("empty").cols(), 3);
  EXPECT_EQ(back.get_string("rng"), rng.state());
  EXPECT_EQ(back.get_int("step"), 1234567890123LL);
  EXPECT_EQ(back.get_double("lr"), 0.1);  // hexfloat text: bit exact
  const auto opt = back.get_map("opt.");
  EXPECT_EQ(opt.size(), 2u);
  EXPECT_EIGEN_NEAR(opt.at("b"), b, 0.0);
  // Stored dtypes are the exact ones (F32 for float, F64 for double, I32 for int32).
  io::SafetensorsFile f(dir.file("ck.safetensors"));
  EXPECT_EQ(f.entry("a").info.dtype, io::DType::F32);
  EXPECT_EQ(f.entry("opt.b").info.dtype, io::DType::F64);
  EXPECT_EQ(f.entry("opt.c").info.dtype, io::DType::I32);
  // Misuse and foreign files.
  EXPECT_THROW_MSG(back.get<float>("a", 5, 3), InvalidArgument, "shape 5 x 3");
  EXPECT_THROW_MSG(back.get<float>("zz"), InvalidArgument, "zz");
  EXPECT_THROW_MSG(back.get_string("zz"), InvalidArgument, "zz");
  EXPECT_THROW_MSG(Checkpoint::load(fixture("st_mixed.safetensors")), FormatError,
                   "ergo checkpoint");
}

namespace {

// A small training loop: a linear map W x + b fitted by Adam to targets A x, on mini-batches
// streamed from activation files with a shuffling pool, plus a random "dropout" mask drawn from
// an Rng every step (so that the RNG state matters). Every source of state a real trainer has.
struct ToyRun {
  MatrixXf W, gW;
  MatrixXf b, gb;
  nn::Adam<float> adam{nn::AdamParams{}};
  Rng rng{99};
  std::unique_ptr<io::ActivationSource<float>> src;
  MatrixXf A;
  Index step = 0;

  explicit ToyRun(const std::vector<std::string>& files) {
    io::ActivationSourceParams p;
    p.batch_size = 16;
    p.buffer_size = 40;
    p.chunk_size = 8;
    p.seed = 5;
    src = std::make_unique<io::ActivationSource<float>>(files, p);
    W = MatrixXf::Zero(3, 4);
    gW = W;
    b = MatrixXf::Zero(3, 1);
    gb = b;
    A = Rng(1).normal_matrix<float>(3, 4);
  }
  nn::ParameterList<float> params() {
    return {nn::make_parameter<float>("W", W, gW), nn::make_parameter<float>("b", b, gb)};
  }
  void train(Index until) {
    MatrixXf X;
    auto list = params();
    for (; step < until; ++step) {
      src->next_cycling(X);
      MatrixXf Y = A * X;
      const MatrixXf mask = rng.uniform_matrix<float>(1, X.cols()).unaryExpr([](float u) {
        return u < 0.8f ? 1.0f : 0.0f;
      });
      MatrixXf R = (W * X).colwise() + b.col(0);
      R -= Y;
      R.array().rowwise() *= mask.row(0).array();
      const float inv = 2.0f / static_cast<float>(X.cols());
      gW.noalias() = inv * R * X.transpose();
      gb = inv * R.rowwise().sum();
      adam.step(list, 1e-2);
    }
  }
  void save(const std::string& path) {
    Checkpoint ck;
    ck.put_parameters(params(), "model.");
    ck.put_map(adam.state(), "adam.");
    ck.set_string("rng", rng.state());
    ck.set_string("stream", src->state());
    ck.set_int("step", step);
    ck.save(path);
  }
  void load(const std::string& path) {
    const Checkpoint ck = Checkpoint::load(path);
    auto list = params();
    ck.get_parameters(list, "model.");
    adam.set_state(list, ck.get_map("adam."));
    rng.set_state(ck.get_string("rng"));
    src->set_state(ck.get_string("stream"));
    step = ck.get_int("step");
  }
};

}  // namespace

TEST(IoCheckpoint, ResumeAfterStopGivesTheUninterruptedParameters) {
  ScratchDir dir;
  Rng data(2);
  const std::vector<std::string> files = {dir.file("a.npy"), dir.file("b.npy")};
  io::write_npy(files[0], data.normal_matrix<float>(4, 37));  // 37 + 29 = 66 samples: the
  io::write_npy(files[1], data.normal_matrix<float>(4, 29));  // stream crosses epochs
  const Index total = 23, stop_at = 10;

  ToyRun straight(files);
  straight.train(total);

  ToyRun first(files);
  first.train(stop_at);
  first.save(dir.file("ck.safetensors"));
  ToyRun resumed(files);  // a fresh process: new objects, state only from the file
  resumed.load(dir.file("ck.safetensors"));
  resumed.train(total);

  // Bit-identical: the same arithmetic on the same data in the same order.
  EXPECT_EIGEN_NEAR(resumed.W, straight.W, 0.0f);
  EXPECT_EIGEN_NEAR(resumed.b, straight.b, 0.0f);
  EXPECT_EQ(resumed.adam.steps(), straight.adam.steps());
  EXPECT_EQ(resumed.rng.state(), straight.rng.state());
  EXPECT_EQ(resumed.src->state(), straight.src->state());
  EXPECT_GT((straight.W - first.W).norm(), 0.0f);  // training did move past the stop point
}

// A next-token training run stopped by a callback, its Trainer state saved to a checkpoint file
// and continued by a new Trainer and a freshly initialised model in "another process", ends with
// exactly the parameters of the uninterrupted run.
TEST(IoCheckpoint, NextTokenTrainerResumesExactlyFromFile) {
  ScratchDir dir;
  Rng rng(31);
  PaperWorldParams wp;
  wp.m = 3;
  const auto world = make_paper_world<double>(wp, rng);
  const Samples tr = world.sample(256, rng), va = world.sample(64, rng);
  nn::NextTokenParams np;
  np.hidden = {32};
  np.rep_dim = 8;
  np.seed = 3;
  auto fresh = [&]() {
    return nn::NextTokenModel<float>(world.x_cardinalities(), world.vocab_size(), np);
  };
  nn::TrainerParams tp;
  tp.epochs = 3;
  tp.batch_size = 48;
  tp.eval_every = 2;
  tp.seed = 9;
  tp.progress_every = 1;
  nn::NextTokenModel<float> straight = fresh();
  ASSERT_TRUE(nn::Trainer<float>(tp).fit(straight, tr.x, tr.y, va.x, va.y).ok());

  struct StopAt : Callback {
    bool on_progress(const ProgressEvent& e) override { return e.step < 8; }
  } stop;
  {
    nn::NextTokenModel<float> part = fresh();
    nn::Trainer<float> first(tp);
    ASSERT_EQ(first.fit(part, tr.x, tr.y, va.x, va.y, &stop).status, Status::Stopped);
    Checkpoint ck;
    ck.put_map(first.state().values, "trainer.");
    ck.set_string("trainer.rng", first.state().rng);
    ck.save(dir.file("ntp.safetensors"));
  }
  const Checkpoint ck = Checkpoint::load(dir.file("ntp.safetensors"));
  nn::NextTokenModel<float> resumed = fresh();
  nn::Trainer<float> again(tp);
  again.resume({ck.get_map("trainer."), ck.get_string("trainer.rng")});
  const nn::TrainResult r = again.fit(resumed, tr.x, tr.y, va.x, va.y);
  ASSERT_TRUE(r.ok()) << r.message;
  const auto a = straight.export_parameters(), b = resumed.export_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& kv : a) {
    EXPECT_EIGEN_NEAR(kv.second, b.at(kv.first), 0.0f) << kv.first;
  }
}
