// End-to-end tests of the command-line tools in tools/ (ergo-sae, ergo-identify,
// ergo-linrep): they are run as subprocesses on files written by ergo::io, and their outputs
// are read back with ergo::io.
#include "io/io_test_utils.hpp"

#include <ergo/identify.hpp>
#include <ergo/model.hpp>
#include <ergo/sae.hpp>

#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>

using namespace ergo;
using ergo::test::fixture;
using ergo::test::read_bytes;
using ergo::test::ScratchDir;

namespace {

#if defined(ERGO_TOOL_SAE) && defined(ERGO_TOOL_IDENTIFY) && defined(ERGO_TOOL_LINREP)
constexpr bool kToolsBuilt = true;
const std::string kSae = ERGO_TOOL_SAE, kIdentify = ERGO_TOOL_IDENTIFY, kLinrep = ERGO_TOOL_LINREP;
#else
constexpr bool kToolsBuilt = false;
const std::string kSae, kIdentify, kLinrep;
#endif

struct ToolRun {
  int code = -1;
  std::string out, err;
};

// Runs `cmd` (a tool and its arguments) with stdout/stderr captured into the scratch folder.
ToolRun run(const ScratchDir& dir, const std::string& cmd) {
  const std::string o = dir.file("stdout.txt"), e = dir.file("stderr.txt");
  const int status = std::system((cmd + " > '" + o + "' 2> '" + e + "'").c_str());
  ToolRun r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_bytes(o);
  r.err = read_bytes(e);
  return r;
}

nlohmann::json read_json(const std::string& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}

// Planted sparse data: 12 unit atoms in d = 8, two active per sample with weights in [0.5, 2);
// labels: whether atom 0 is active. Written as a float32 .npy (700 samples) and a float16
// .safetensors "activations" tensor (500 samples), the formats PyTorch users hand over.
struct PlantedData {
  MatrixXf X;
  IntMatrix labels;
  std::vector<std::string> files;
  explicit PlantedData(const ScratchDir& dir, Index n = 1200) {
    Rng rng(21);
    MatrixXf D = rng.normal_matrix<float>(8, 12);
    D.colwise().normalize();
    X.resize(8, n);
    labels = IntMatrix::Zero(1, n);
    for (Index j = 0; j < n; ++j) {
      const Index a = rng.uniform_index(0, 11);
      Index b = rng.uniform_index(0, 10);
      if (b >= a) ++b;
      X.col(j) = D.col(a) * static_cast<float>(rng.uniform(0.5, 2.0)) +
                 D.col(b) * static_cast<float>(rng.uniform(0.5, 2.0));
      labels(0, j) = (a == 0 || b == 0) ? 1 : 0;
    }
    io::write_npy(dir.file("acts_a.npy"), X.leftCols(700));
    io::SafetensorsWriter w;
    w.add("activations", X.rightCols(n - 700), io::DType::F16);
    w.write(dir.file("acts_b.safetensors"));
    io::NpyWriteOptions v;
    v.layout = io::NpyLayout::Vector;
    io::write_npy(dir.file("labels.npy"),
                  Eigen::Matrix<std::int64_t, 1, Eigen::Dynamic>(labels.cast<std::int64_t>()), v);
    files = {dir.file("acts_a.npy"), dir.file("acts_b.safetensors")};
  }
  std::string data_args() const { return "--data '" + files[0] + "' '" + files[1] + "'"; }
};

std::string train_args(const PlantedData& d, const std::string& out,
                       const std::string& arch = "topk") {
  return " -q train " + d.data_args() + " --arch " + arch +
         " --k 2 --d-sae 24 --steps 40 --batch 64 --lr 3e-3 " +
         "--buffer 300 --chunk 50 --val-fraction 0.1 --seed 7 --log-every 10 --checkpoint-every 0 "
         "--out '" +
         out + "'";
}

}  // namespace

// Issue 15: the SAELens metadata options of train and convert reach cfg.json, the resolved
// settings and the untrained check reach report.json, and invalid metadata is refused.
TEST(IoTools, SaeMetadataAndSettingsReachTheFiles) {
  if (!kToolsBuilt) GTEST_SKIP() << "examples not built";
  ScratchDir dir;
  const PlantedData data(dir);
  const std::string out = dir.file("meta");
  ToolRun r = run(dir, kSae + train_args(data, out) +
                           " --model-name gpt2 --hook-name blocks.6.hook_resid_post"
                           " --dataset openwebtext --context-size 128");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  nlohmann::json cfg = read_json(out + "/cfg.json");
  EXPECT_EQ(cfg["metadata"]["model_name"], "gpt2");
  EXPECT_EQ(cfg["metadata"]["hook_name"], "blocks.6.hook_resid_post");
  EXPECT_EQ(cfg["metadata"]["dataset_path"], "openwebtext");
  EXPECT_EQ(cfg["metadata"]["context_size"], 128);
  const nlohmann::json rep = read_json(out + "/report.json");
  EXPECT_DOUBLE_EQ(rep["settings"]["lr"].get<double>(), 3e-3);  // given, kept
  EXPECT_EQ(rep["settings"]["lr_warmup_steps"], 2);             // auto: 40 / 20
  EXPECT_TRUE(rep["training_check"].contains("warning"));
  // convert: the input's metadata is kept, a field given replaces it
  const std::string conv = dir.file("conv");
  r = run(dir, kSae + " convert --in '" + out + "' --out '" + conv +
                   "' --to both --hook-name blocks.7.hook_resid_post");
  ASSERT_EQ(r.code, 0) << r.err;
  cfg = read_json(conv + "/cfg.json");
  EXPECT_EQ(cfg["metadata"]["model_name"], "gpt2");
  EXPECT_EQ(cfg["metadata"]["hook_name"], "blocks.7.hook_resid_post");
  io::SaeMetadata native;
  sae::load_native<float>(conv + "/ergo_sae.safetensors", nullptr, &native);
  EXPECT_EQ(native.hook_name, "blocks.7.hook_resid_post");
  EXPECT_EQ(native.context_size, 128);
  // invalid values are refused with the field named
  r = run(dir,
          kSae + " convert --in '" + out + "' --out '" + dir.file("bad") + "' --context-size 0");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, ::testing::HasSubstr("context_size: expected > 0"));
}

TEST(IoTools, SaeTrainEncodeEvalAndConvert) {
  if (!kToolsBuilt) GTEST_SKIP() << "examples not built";
  ScratchDir dir;
  const PlantedData data(dir);
  const std::string out = dir.file("run");
  ToolRun r = run(dir, kSae + train_args(data, out));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  // The SAELens folder, read back with the library reader, and the report.
  const auto sae = io::load_saelens<float>(out);
  EXPECT_EQ(sae.config.architecture, "topk");
  EXPECT_EQ(sae.config.k, 2);
  EXPECT_EQ(sae.config.d_in, 8);
  EXPECT_EQ(sae.config.d_sae, 24);
  const nlohmann::json rep = read_json(out + "/report.json");
  EXPECT_EQ(rep["status"], "Success");
  EXPECT_EQ(rep["steps"], 40);
  EXPECT_EQ(rep["train_samples"], 1080);  // 10 % held out: 70 + 50
  EXPECT_EQ(rep["validation"]["samples"], 120);
  EXPECT_LT(rep["validation"]["fvu"].get<double>(), 1.0);  // it learned something
  // encode: [N, d_sae] codes equal TopK(ReLU) of the exported weights applied to the data.
  r = run(dir, kSae + " encode --sae '" + out + "' " + data.data_args() + " --out '" +
                   dir.file("z.npy") + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const MatrixXf Z = io::read_npy<float>(dir.file("z.npy"));
  ASSERT_EQ(Z.rows(), 24);
  ASSERT_EQ(Z.cols(), 1200);
  MatrixXf Xr = data.X;
  Xr.rightCols(500) =
      io::SafetensorsFile(data.files[1]).matrix<float>("activations");  // f16-rounded
  MatrixXf H = sae.weights.encoder * (Xr.colwise() - sae.weights.b_dec);
  H.colwise() += sae.weights.b_enc;
  for (Index j = 0; j < H.cols(); ++j) {
    std::vector<float> v(H.col(j).data(), H.col(j).data() + H.rows());
    std::sort(v.begin(), v.end(), std::greater<float>());
    for (Index i = 0; i < H.rows(); ++i) {
      const float want = H(i, j) >= v[1] ? std::max(H(i, j), 0.0f) : 0.0f;
      // float GEMMs in different summation orders: a few ulps of O(10) values
      ASSERT_NEAR(Z(i, j), want, 1e-4f) << i << ", " << j;
    }
  }
  // eval with labels: reconstruction metrics and concept alignment.
  r = run(dir, kSae + " eval --sae '" + out + "' " + data.data_args() + " --labels '" +
                   dir.file("labels.npy") + "' --json '" + dir.file("eval.json") + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json ev = read_json(dir.file("eval.json"));
  EXPECT_EQ(ev["reconstruction"]["samples"], 1200);
  EXPECT_EQ(ev["concept_alignment"]["raw_corr"].size(), 1u);
  EXPECT_GT(ev["concept_alignment"]["mean_raw_corr"].get<double>(), 0.0);
  EXPECT_TRUE(ev.contains("probe_upper_bound"));
  // convert: sparsify -> SAELens, identical weights.
  r = run(dir, kSae + " convert --in '" + fixture("sparsify_topk") + "' --out '" +
                   dir.file("conv") + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto conv = io::load_saelens<float>(dir.file("conv"));
  const auto orig = io::load_sparsify<float>(fixture("sparsify_topk"));
  EXPECT_EIGEN_NEAR(conv.weights.encoder, orig.weights.encoder, 0.0f);
  EXPECT_EIGEN_NEAR(conv.weights.decoder, orig.weights.decoder, 0.0f);
  EXPECT_EQ(conv.config.k, 2);
  // Malformed input: a clear error naming the file, exit code 1.
  ergo::test::write_bytes(dir.file("bad.npy"), "\x93NUMPY\x01\x00garbage");
  r = run(dir,
          kSae + " -q train --data '" + dir.file("bad.npy") + "' --out '" + dir.file("x") + "'");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, ::testing::HasSubstr("bad.npy"));
}

TEST(IoTools, SaeResumeAfterStopMatchesAnUninterruptedRun) {
  if (!kToolsBuilt) GTEST_SKIP() << "examples not built";
  ScratchDir dir;
  const PlantedData data(dir);
  // TopK (Adam moments, AuxK dead counters), BatchTopK (its threshold EMA) and p-annealing
  // (p switches and λ rescaling from step 20 on): stopped at step 25, inside the annealing.
  for (const std::string arch : {"topk", "batchtopk", "p_anneal"}) {
    SCOPED_TRACE(arch);
    ToolRun r = run(dir, kSae + train_args(data, dir.file(arch + "_straight"), arch));
    ASSERT_EQ(r.code, 0) << r.err;
    r = run(dir, kSae + train_args(data, dir.file(arch + "_stopped"), arch) + " --stop-after 25");
    ASSERT_EQ(r.code, 3) << r.out << r.err;  // stopped, checkpoint written
    EXPECT_THAT(r.out, ::testing::HasSubstr("--resume"));
    r = run(dir, kSae + train_args(data, dir.file(arch + "_stopped"), arch) + " --resume");
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_THAT(r.out, ::testing::HasSubstr("resumed"));
    // Same parameters, bit for bit, as the run that never stopped.
    const io::SafetensorsFile a(dir.file(arch + "_straight/ergo_sae.safetensors"));
    const io::SafetensorsFile b(dir.file(arch + "_stopped/ergo_sae.safetensors"));
    ASSERT_EQ(a.names(), b.names());
    for (const auto& n : a.names())
      EXPECT_EIGEN_NEAR(b.matrix<double>(n), a.matrix<double>(n), 0.0) << n;
  }
  // Resuming with different options is refused.
  const ToolRun r =
      run(dir, kSae + train_args(data, dir.file("topk_stopped")) + " --aux 0.5 --resume");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, ::testing::HasSubstr("options"));
}

TEST(IoTools, IdentifyReportsVerdictAndWritesJson) {
  if (!kToolsBuilt) GTEST_SKIP() << "examples not built";
  ScratchDir dir;
  Rng rng(3);
  const Index n = 400;
  const MatrixXd Zs = rng.normal_matrix<double>(3, n);  // latent factors
  const MatrixXd F = rng.normal_matrix<double>(6, 3) * Zs + 0.01 * rng.normal_matrix<double>(6, n);
  io::write_npy(dir.file("F.npy"), F.cast<float>());
  io::write_npy(dir.file("T.npy"), Zs);  // T is affine in F: identified
  io::write_npy(dir.file("U.npy"), rng.normal_matrix<double>(3, n));  // independent of F
  ToolRun r =
      run(dir, kIdentify + " -q --rep '" + dir.file("F.npy") + "' --target '" + dir.file("T.npy") +
                   "' --permutations 199 --bootstrap 50 --json '" + dir.file("rep.json") + "'");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, ::testing::HasSubstr("verdict: identified"));
  const nlohmann::json j = read_json(dir.file("rep.json"));
  EXPECT_TRUE(j["verdict"]["identified"].get<bool>());
  EXPECT_GT(j["forward"]["test"]["mean"].get<double>(), 0.99);
  r = run(dir, kIdentify + " -q --rep '" + dir.file("F.npy") + "' --target '" + dir.file("U.npy") +
                   "' --permutations 99 --max-p 0.05 --bootstrap 0");
  EXPECT_EQ(r.code, 4) << r.out << r.err;  // not identified
  r = run(dir, kIdentify + " -q --rep '" + dir.file("F.npy") + "' --target '" +
                   fixture("np_f32_c.npy") + "'");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, ::testing::HasSubstr("400 samples"));
}

// --out-of-core streams the files in blocks into StreamingIdentify: on a small file it agrees with
// the in-memory library path (RidgeRegression with GCV, r2_scores, Cca Gram) on the same seeded
// split, and its permutation null with StreamingIdentify run on the whole matrices.
TEST(IoTools, IdentifyOutOfCoreAgreesWithTheInMemoryPath) {
  if (!kToolsBuilt) GTEST_SKIP() << "examples not built";
  ScratchDir dir;
  Rng rng(8);
  const Index n = 900;
  MatrixXd A = rng.normal_matrix<double>(3, 5);
  MatrixXd F = rng.normal_matrix<double>(5, n);
  F.array() += 20.0;  // an offset: the shifted one-pass sums must stay accurate
  io::write_npy(dir.file("F.npy"), F.cast<float>());
  const MatrixXd Fr = F.cast<float>().cast<double>();  // what the tool reads
  const MatrixXd T = A * Fr + 0.3 * rng.normal_matrix<double>(3, n);
  io::SafetensorsWriter w;
  w.add("targets", T, io::DType::F64);
  w.write(dir.file("T.safetensors"));
  const ToolRun r = run(dir, kIdentify + " -q --out-of-core --block-rows 128 --rep '" +
                                 dir.file("F.npy") + "' --target '" + dir.file("T.safetensors") +
                                 "' --test-fraction 0.25 --seed 4 --permutations 9 --json '" +
                                 dir.file("ooc.json") + "'");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, ::testing::HasSubstr("out of core"));
  EXPECT_THAT(r.out, ::testing::HasSubstr("not available out of core"));
  const nlohmann::json j = read_json(dir.file("ooc.json"));
  EXPECT_EQ(j["mode"], "out_of_core");
  EXPECT_EQ(j["samples"]["blocks"].get<Index>(), 8);
  std::vector<Index> tr, te;
  for (Index i = 0; i < n; ++i) (identify::streaming_is_test(i, 0.25, 4) ? te : tr).push_back(i);
  EXPECT_EQ(j["samples"]["train"].get<Index>(), static_cast<Index>(tr.size()));
  EXPECT_EQ(j["samples"]["test"].get<Index>(), static_cast<Index>(te.size()));
  const MatrixXd ftr = Fr(Eigen::all, tr), ttr = T(Eigen::all, tr);
  const MatrixXd fte = Fr(Eigen::all, te), tte = T(Eigen::all, te);
  identify::RidgeParams rp;
  rp.cv = identify::RidgeCv::Gcv;
  identify::RidgeRegression ridge(rp);
  ridge.fit(ftr, ttr);
  const identify::R2Scores r2 = ridge.score(fte, tte);
  // Tolerance: one-pass shifted sums vs two-pass centring over 900 samples (streaming_test.cpp)
  constexpr double kTol = 1e-7;
  EXPECT_NEAR(j["forward"]["lambda"].get<double>() / ridge.lambda(), 1.0, kTol);
  EXPECT_NEAR(j["forward"]["test"]["variance_weighted"].get<double>(), r2.variance_weighted, kTol);
  for (Index i = 0; i < 3; ++i)
    EXPECT_NEAR(j["forward"]["test"]["per_output"][static_cast<size_t>(i)].get<double>(),
                r2.per_output[i], kTol);
  identify::CcaParams cp;
  cp.method = identify::CcaMethod::Gram;
  cp.regularization = 0.0;
  identify::Cca cca(cp);
  cca.fit(ftr, ttr);
  const Vector<double> rho = cca.evaluate(fte, tte);
  ASSERT_EQ(j["cca"]["test_correlations"].size(), static_cast<size_t>(rho.size()));
  for (Index i = 0; i < rho.size(); ++i)
    EXPECT_NEAR(j["cca"]["test_correlations"][static_cast<size_t>(i)].get<double>(), rho[i], kTol);
  // the permutation null: StreamingIdentify on the whole matrices, same blocks
  identify::StreamingParams sp;
  sp.test_fraction = 0.25;
  sp.seed = 4;
  sp.permutations = 9;
  sp.permutation_block = 128;
  identify::StreamingIdentify acc(5, 3, sp);
  acc.add(Fr, T, 0);
  const identify::StreamingReport ref = acc.finish();
  ASSERT_EQ(j["permutation"]["null_r2"].size(), 9u);
  for (Index p = 0; p < 9; ++p)
    EXPECT_NEAR(j["permutation"]["null_r2"][static_cast<size_t>(p)].get<double>(), ref.null_r2[p],
                kTol);
  EXPECT_DOUBLE_EQ(j["permutation"]["p_value"].get<double>(), ref.p_value);
  EXPECT_DOUBLE_EQ(ref.p_value, 0.1);  // a planted map beats every permutation
  // options of the in-memory report are refused; a sample-count mismatch is a clear error
  ToolRun bad = run(dir, kIdentify + " -q --out-of-core --bootstrap 10 --rep '" +
                             dir.file("F.npy") + "' --target '" + dir.file("T.safetensors") + "'");
  EXPECT_NE(bad.code, 0);
  EXPECT_THAT(bad.err + bad.out, ::testing::HasSubstr("excludes"));
  bad = run(dir, kIdentify + " -q --out-of-core --rep '" + dir.file("F.npy") + "' --target '" +
                     fixture("np_f32_c.npy") + "'");
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.err, ::testing::HasSubstr("900 samples (as --rep)"));
}

TEST(IoTools, LinrepWritesMatrixAndHeatmap) {
  if (!kToolsBuilt) GTEST_SKIP() << "examples not built";
  ScratchDir dir;
  Rng rng(4);
  const Index d = 10, n = 25;
  const MatrixXd U = rng.normal_matrix<double>(d, 2);
  // Concept s: target = base − 2 u_s + noise. "gender" as [2n, d] halves; "plural" as a
  // .safetensors with base/target tensors.
  MatrixXd base0 = rng.normal_matrix<double>(d, n), base1 = rng.normal_matrix<double>(d, n);
  MatrixXd t0 = (base0.colwise() - 2 * U.col(0)) + 0.05 * rng.normal_matrix<double>(d, n);
  MatrixXd t1 = (base1.colwise() - 2 * U.col(1)) + 0.05 * rng.normal_matrix<double>(d, n);
  MatrixXd halves(d, 2 * n);
  halves << base0, t0;
  io::write_npy(dir.file("gender.npy"), halves.cast<float>());
  io::SafetensorsWriter w;
  w.add("base", base1);
  w.add("target", t1);
  w.write(dir.file("plural.safetensors"));
  const ToolRun r = run(dir, kLinrep + " --concept '" + dir.file("gender.npy") +
                                 "' --concept 'pl=" + dir.file("plural.safetensors") +
                                 "' --permutations 19 --out '" + dir.file("lr") + "'");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const MatrixXd G = io::read_npy<double>(dir.file("lr/G.npy")).transpose();  // Fortran [2, 2] -> G
  ASSERT_EQ(G.rows(), 2);
  EXPECT_GT(G(0, 0), 0.5);  // a_s and w_s agree for each concept ...
  EXPECT_GT(G(1, 1), 0.5);
  EXPECT_GT(G(0, 0), std::abs(G(0, 1)));  // ... more than across concepts
  const nlohmann::json j = read_json(dir.file("lr/result.json"));
  EXPECT_EQ(j["concepts"], (nlohmann::json{"gender", "pl"}));
  EXPECT_NEAR(j["all_pairs"]["mean_diagonal"].get<double>(), (G(0, 0) + G(1, 1)) / 2, 1e-9);
  const std::string svg = read_bytes(dir.file("lr/G.svg"));
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_THAT(svg, ::testing::HasSubstr("gender"));
  EXPECT_THAT(read_bytes(dir.file("lr/G.csv")), ::testing::HasSubstr("name,gender,pl"));
}

// `ergo-sae eval --pairs`: the paper's protocol on simulated counterfactual pairs from a concept
// world (model::sample_counterfactual_pairs), activations linear in the concepts' log-odds. The
// cross-fitted probes must track the exact posteriors given with --probs (Pearson > 0.9, as in
// tests/sae/counterfactual_test.cpp), the CSV and .npy pair files must give the same result,
// pairs with shuffled sides must leave the probes at chance, and a malformed file is refused.
TEST(IoTools, SaeEvalWithCounterfactualPairs) {
  if (!kToolsBuilt) GTEST_SKIP() << "examples not built";
  ScratchDir dir;
  Rng rng(31);
  model::PaperWorldParams wp;
  wp.m = 3;
  wp.eta = 0.05;
  const auto world = model::make_paper_world<double>(wp, rng);
  const model::CounterfactualPairs cp = model::sample_counterfactual_pairs(world, 150, rng);
  const Index N = cp.samples.size(), P = cp.pairs.cols();
  const MatrixXd A = rng.normal_matrix<double>(6, 3);
  MatrixXd X = A * world.log_odds(cp.samples.x);
  X += 0.1 * rng.normal_matrix<double>(6, N);
  io::write_npy(dir.file("acts.npy"), MatrixXf(X.cast<float>()));
  const MatrixXd lm = world.log_marginals(cp.samples.x);
  MatrixXd post(3, N);
  for (Index k = 0; k < 3; ++k)
    post.row(k) = lm.row(world.marginal_offset(k) + 1).array().exp().matrix();
  io::write_npy(dir.file("post.npy"), post);
  {
    std::ofstream f(dir.file("pairs.csv"));
    f << "# simulated pairs\nbase,counterfactual,concept\n";
    for (Index q = 0; q < P; ++q)
      f << cp.pairs(0, q) << "," << cp.pairs(1, q) << "," << cp.pairs(2, q) << "\n";
    std::ofstream s(dir.file("shuffled.csv"));
    for (Index q = 0; q < P; ++q) {
      const bool swap = rng.bernoulli(0.5);
      s << cp.pairs(swap ? 1 : 0, q) << " " << cp.pairs(swap ? 0 : 1, q) << " " << cp.pairs(2, q)
        << "\n";
    }
    std::ofstream b(dir.file("bad.csv"));
    b << "0,1,0\n2,3\n";
  }
  io::write_npy(dir.file("pairs.npy"),
                Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic>(
                    cp.pairs.cast<std::int64_t>()));  // 3 × P -> C-order [P, 3]
  const std::string out = dir.file("run");
  ToolRun r = run(dir, kSae + " -q train --data '" + dir.file("acts.npy") +
                           "' --arch topk --k 2 --d-sae 12 --steps 60 --batch 128 --lr 3e-3 "
                           "--seed 3 --checkpoint-every 0 --out '" +
                           out + "'");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const std::string eval = kSae + " eval --sae '" + out + "' --data '" + dir.file("acts.npy") +
                           "' --probs '" + dir.file("post.npy") + "' --no-probe --pairs ";
  r = run(dir, eval + "'" + dir.file("pairs.csv") + "' --json '" + dir.file("csv.json") + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::HasSubstr("| concept | pairs | best feature |"));
  const nlohmann::json ev = read_json(dir.file("csv.json"))["counterfactual"];
  ASSERT_EQ(ev["concepts"].size(), 3u);
  EXPECT_EQ(ev["samples_used"], N);
  EXPECT_EQ(ev["permutations"], 200);
  for (const auto& c : ev["concepts"]) {
    EXPECT_EQ(c["pairs"], 150);
    EXPECT_GT(c["probe_exact_corr"].get<double>(), 0.9) << c.dump();
    // far beyond a chance probe's 4 standard errors (4/√300 = 0.23; see the shuffled run below)
    EXPECT_GT(c["probe_label_corr"].get<double>(), 4.0 / std::sqrt(300.0)) << c.dump();
    EXPECT_GE(c["feature"].get<Index>(), 0);
    EXPECT_LT(c["feature"].get<Index>(), 12);
    EXPECT_GE(c["p_value"].get<double>(), 1.0 / 201.0);
  }
  r = run(dir, eval + "'" + dir.file("pairs.npy") + "' --json '" + dir.file("npy.json") + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_json(dir.file("npy.json"))["counterfactual"], ev);
  r = run(dir, eval + "'" + dir.file("shuffled.csv") + "' --json '" + dir.file("sh.json") + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  // |Pearson(p̂, label)| of a chance probe: within 4 standard errors (1/√300) of 0
  const nlohmann::json shuffled = read_json(dir.file("sh.json"));  // outlives the loop
  for (const auto& c : shuffled["counterfactual"]["concepts"])
    EXPECT_LT(std::abs(c["probe_label_corr"].get<double>()), 4.0 / std::sqrt(300.0)) << c.dump();
  r = run(dir, eval + "'" + dir.file("bad.csv") + "'");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, ::testing::HasSubstr("--pairs"));
  EXPECT_THAT(r.err, ::testing::HasSubstr("line 2"));
}
