// SPDX-License-Identifier: MIT
#pragma once

// Part (b) of sae_concepts: the concept-alignment study (docs/sae.md, "The concept-alignment
// study"). For each world family and seed: draw a world, train a next-token model on it, take its
// representations f_x, then score every code of the same width the same way against the exact
// posteriors p(c_k = 1 | x) of held-out contexts: the trained SAEs, the structured SAE at two
// dense-branch widths, the ConCA unmixer, and the dense baselines (PCA of f_x, random orthogonal
// projections, an untrained SAE), each with the permutation null of its max-over-features score.
// Every hyper-parameter is explicit in StudyConfig (and written to the JSON), so the results do
// not depend on the library's defaults.

#include <ergo/identify.hpp>
#include <ergo/model.hpp>
#include <ergo/nn.hpp>
#include <ergo/sae.hpp>
#include <ergo/sae/alignment_null.hpp>

#include <nlohmann/json.hpp>

#include <Eigen/Eigenvalues>
#include <Eigen/QR>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace ergo::saestudy {

/// How a scored code is made.
enum class CodeKind { Sae, Pca, Random, Untrained };

/// One code the study scores on every (world, seed).
struct CodeSpec {
  std::string name;  ///< row name in the tables
  std::string role;  ///< "standard SAE", "structured SAE", "ConCA", "dense baseline"
  CodeKind kind = CodeKind::Sae;
  sae::Architecture arch = sae::Architecture::TopK;
  double knob = 0;         ///< λ, or k (knob_is_k); k = −1 means the world's number of concepts
  bool knob_is_k = false;  ///< TopK / BatchTopK
  Index dense_width = -1;  ///< Structured: h (−1 = every latent, −2 = the number of concepts)
};

/// A world family: the parameters a seed's world is drawn with.
struct WorldSpec {
  std::string name;
  model::PaperWorldParams params;
  std::string description;
};

/// Everything the study does, with its values (written to the JSON as "config").
struct StudyConfig {
  bool quick = false;
  Index seeds = 5;             ///< seeds per world family (1..seeds)
  Index train = 50000;         ///< training contexts (next-token model and SAEs)
  Index test = 10000;          ///< held-out contexts every score is computed on
  Index ntp_max_steps = 6000;  ///< next-token model: Adam steps at most (early stopping)
  Index ntp_batch = 512;       ///< its batch size
  double ntp_lr = 1e-3;        ///< its learning rate
  Index ntp_eval_every = 250;  ///< validation interval
  Index ntp_patience = 4;      ///< evaluations without improvement before stopping
  Index width_factor = 4;      ///< every code has m = width_factor · d features (PCA: 2d)
  Index steps = 2000;          ///< SAE Adam steps
  Index batch = 1024;          ///< SAE batch size
  double lr = 1e-3;            ///< SAE learning rate
  double lr_warmup_fraction = 0.01;
  double lr_decay_start_fraction = 0.8;  ///< linear decay to 0 over the last 20 %
  double sparsity_warmup_fraction = 0.05;
  Index dead_window_samples = 200000;
  double aux_coefficient = 1.0 / 32.0;  ///< TopK / BatchTopK AuxK α (k_aux = d/2)
  double threshold_ema = 0.01;          ///< BatchTopK
  double p_end = 0.2;                   ///< p-annealing (PAnneal, Structured)
  double anneal_start_fraction = 0.5;
  Index p_updates = 10;
  double nuclear_coefficient = 10.0;      ///< Structured γ
  double jumprelu_init_threshold = 0.01;  ///< JumpReLU θ at start
  double jumprelu_bandwidth = 0.01;       ///< JumpReLU ε
  Index permutations = 200;               ///< permutation null of every score
  Index bootstrap = 10000;                ///< bootstrap resamples of the paired differences
  std::vector<WorldSpec> worlds;
  std::vector<CodeSpec> codes;
};

inline const char* to_string(CodeKind k) {
  switch (k) {
    case CodeKind::Sae:
      return "sae";
    case CodeKind::Pca:
      return "pca";
    case CodeKind::Random:
      return "random";
    case CodeKind::Untrained:
      return "untrained";
  }
  return "?";
}

/// The study's design (docs/sae.md): two world families, the paper's four SAEs plus ReLU-L1 and
/// JumpReLU at L0 ≈ the number of concepts (the knobs of the single-seed run), the structured
/// SAE with a dense branch on every latent and on K latents, the ConCA unmixer, and the baselines.
inline StudyConfig default_config(bool quick) {
  StudyConfig c;
  c.quick = quick;
  if (quick) {
    c.seeds = 2;
    c.train = 8000;
    c.test = 2000;
    c.ntp_max_steps = 600;
    c.steps = 300;
    c.batch = 512;
    c.permutations = 100;
    c.bootstrap = 2000;
  }
  WorldSpec a;
  a.name = "onehot-m6";
  a.params.m = quick ? 4 : 6;
  a.params.er_k = 1.0;
  a.params.eta = 0.05;
  a.description =
      "binary concepts on a random ER-1 DAG; x = permuted one-hot of the joint "
      "configuration (n = ℓ bits), 5 % bit flips; y = random softmax token table";
  WorldSpec b;
  b.name = "boolean-m5";
  b.params.m = quick ? 4 : 5;
  b.params.er_k = 2.0;
  b.params.eta = 0.05;
  b.params.context = model::ContextKind::BooleanFunctions;
  b.params.n_observed = 3 * b.params.m;
  b.params.parents_per_observation = 2;
  b.description =
      "binary concepts on a random ER-2 DAG (denser dependence); x = 3m noisy "
      "Boolean functions of 2 concepts each, 5 % flips; y = random softmax token table";
  c.worlds = {a, b};
  using A = sae::Architecture;
  auto sae_code = [](std::string name, std::string role, A arch, double knob, bool is_k,
                     Index h = -1) {
    CodeSpec s;
    s.name = std::move(name);
    s.role = std::move(role);
    s.arch = arch;
    s.knob = knob;
    s.knob_is_k = is_k;
    s.dense_width = h;
    return s;
  };
  auto baseline = [](std::string name, CodeKind kind) {
    CodeSpec s;
    s.name = std::move(name);
    s.role = "dense baseline";
    s.kind = kind;
    return s;
  };
  c.codes = {sae_code("topk", "standard SAE", A::TopK, -1, true),
             sae_code("batchtopk", "standard SAE", A::BatchTopK, -1, true),
             sae_code("relu_l1", "standard SAE", A::ReluL1, 4.5, false),
             sae_code("jumprelu", "standard SAE", A::JumpReLU, 0.3, false),
             sae_code("p_anneal", "standard SAE", A::PAnneal, 1.0, false),
             sae_code("structured", "structured SAE", A::Structured, 1.0, false, -1),
             sae_code("structured_hK", "structured SAE", A::Structured, 1.0, false, -2),
             sae_code("unmixer", "ConCA", A::Unmixer, 0.3, false),
             baseline("pca", CodeKind::Pca),
             baseline("random", CodeKind::Random),
             baseline("untrained", CodeKind::Untrained)};
  return c;
}

inline nlohmann::json to_json(const StudyConfig& c) {
  nlohmann::json j = {{"quick", c.quick},
                      {"seeds", c.seeds},
                      {"train", c.train},
                      {"test", c.test},
                      {"ntp",
                       {{"hidden", {256, 256}},
                        {"activation", "LeakyReLU(0.2)"},
                        {"rep_dim", "ℓ − 1"},
                        {"max_steps", c.ntp_max_steps},
                        {"batch", c.ntp_batch},
                        {"lr", c.ntp_lr},
                        {"eval_every", c.ntp_eval_every},
                        {"patience", c.ntp_patience}}},
                      {"sae",
                       {{"width_factor", c.width_factor},
                        {"steps", c.steps},
                        {"batch", c.batch},
                        {"lr", c.lr},
                        {"lr_warmup_fraction", c.lr_warmup_fraction},
                        {"lr_decay", "linear"},
                        {"lr_decay_start_fraction", c.lr_decay_start_fraction},
                        {"sparsity_warmup_fraction", c.sparsity_warmup_fraction},
                        {"dead_window_samples", c.dead_window_samples},
                        {"aux_coefficient", c.aux_coefficient},
                        {"threshold_ema", c.threshold_ema},
                        {"p_start", 1.0},
                        {"p_end", c.p_end},
                        {"anneal_start_fraction", c.anneal_start_fraction},
                        {"p_updates", c.p_updates},
                        {"nuclear_coefficient", c.nuclear_coefficient},
                        {"jumprelu_init_threshold", c.jumprelu_init_threshold},
                        {"jumprelu_bandwidth", c.jumprelu_bandwidth},
                        {"unmixer", "LayerNorm + softplus"},
                        {"normalize_input", true},
                        {"grad_clip", 1.0}}},
                      {"permutations", c.permutations},
                      {"bootstrap", c.bootstrap}};
  j["worlds"] = nlohmann::json::array();
  for (const WorldSpec& w : c.worlds)
    j["worlds"].push_back(
        {{"name", w.name},
         {"m", w.params.m},
         {"er_k", w.params.er_k},
         {"eta", w.params.eta},
         {"context", w.params.context == model::ContextKind::PermutedOneHot ? "permuted_one_hot"
                                                                            : "boolean_functions"},
         {"n_observed", w.params.informative_size()},
         {"description", w.description}});
  j["codes"] = nlohmann::json::array();
  for (const CodeSpec& s : c.codes)
    j["codes"].push_back({{"name", s.name},
                          {"role", s.role},
                          {"kind", to_string(s.kind)},
                          {"architecture", s.kind == CodeKind::Sae ? sae::to_string(s.arch) : ""},
                          {"knob", s.knob},
                          {"knob_is_k", s.knob_is_k},
                          {"dense_width", s.dense_width}});
  return j;
}

/// The scores of one code on one (world, seed).
struct CodeScore {
  std::string name;
  Index width = 0;        ///< features scored
  Index dense_width = 0;  ///< Structured: h (0 otherwise)
  double knob = 0;        ///< λ or k used
  double l0_code = 0;     ///< mean non-zeros per sample of the scored code z
  double l0_sparse = 0;   ///< the same for the sparse branch S (SAEs; = l0_code except Structured)
  double fvu = std::nan("");  ///< SAEs: fraction of variance unexplained on the test set
  double align_exp = 0;       ///< mean over concepts of max_i corr(exp(z_i), p_k)
  double align_raw = 0;       ///< the same with z_i
  std::vector<double> per_concept_exp;
  double null_p95 = 0, null_p99 = 0, null_p_value = 1;  ///< null of align_exp (mean over concepts)
  double seconds = 0;
  std::string status = "Success";
};

/// One (world, seed): the world's statistics, the probe's upper bound and every code's scores.
struct RunResult {
  std::string world;
  std::uint64_t seed = 0;
  Index concepts = 0, rep_dim = 0, width = 0, ntp_steps = 0;
  double ntp_loss = 0, bayes_loss = 0;
  double probe = 0;  ///< mean corr of the cross-fitted probe's probability with p_k
  std::vector<double> probe_per_concept;
  std::vector<CodeScore> codes;
};

namespace detail {

inline std::string fmt(double v, int prec = 3) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(prec) << v;
  return os.str();
}

/// Trainer settings of the study (every value explicit).
inline sae::TrainerParams trainer_params(const StudyConfig& c, Index n_train, std::uint64_t seed) {
  sae::TrainerParams tp;
  tp.steps = c.steps;
  tp.batch_size = std::min(c.batch, n_train);
  tp.lr = c.lr;
  tp.lr_warmup_fraction = c.lr_warmup_fraction;
  tp.lr_decay = nn::Decay::Linear;
  tp.lr_decay_start_fraction = c.lr_decay_start_fraction;
  tp.lr_min_ratio = 0.0;
  tp.sparsity_warmup_fraction = c.sparsity_warmup_fraction;
  tp.grad_clip = 1.0;
  tp.aux_coefficient = c.aux_coefficient;
  tp.aux_k = -1;
  tp.dead_window_samples = c.dead_window_samples;
  tp.threshold_ema = c.threshold_ema;
  tp.p_start = 1.0;
  tp.p_end = c.p_end;
  tp.anneal_start_fraction = c.anneal_start_fraction;
  tp.p_updates = c.p_updates;
  tp.nuclear_coefficient = c.nuclear_coefficient;
  tp.normalize_input = true;
  tp.init_decoder_bias = true;
  tp.seed = seed;
  return tp;
}

/// The SAE parameters of a code (hyper-parameters explicit).
inline sae::SparseAutoencoderParams sae_params(const StudyConfig& c, const CodeSpec& s, Index d,
                                               Index m, Index concepts) {
  sae::SparseAutoencoderParams p;
  p.architecture = s.arch;
  p.d_in = d;
  p.d_sae = m;
  p.unit_norm_decoder = true;
  p.apply_b_dec_to_input = true;
  p.encoder_init_scale = 1.0;
  const Index k = s.knob < 0 ? concepts : static_cast<Index>(s.knob);
  if (s.knob_is_k) sae::set_option(p, "k", std::to_string(k));
  p.jumprelu.init_threshold = c.jumprelu_init_threshold;
  p.jumprelu.bandwidth = c.jumprelu_bandwidth;
  p.structured.dense_width = s.dense_width == -2 ? concepts : s.dense_width;
  p.unmixer.norm = sae::UnmixerNorm::LayerNorm;
  p.unmixer.activation = sae::UnmixerActivation::Softplus;
  return p;
}

/// The input scale the SAEs train with (E‖s·f‖ = √d), applied to the linear baselines too.
inline double baseline_scale(const Matrix<float>& f) {
  return sae::input_scale(f.colwise().norm().cast<double>().mean(), f.rows());
}

/// PCA baseline: z = s·[Vᵀ; −Vᵀ](f − f̄) over all d principal directions V of the training set,
/// with both signs (the score is signed): 2d features.
inline Matrix<float> pca_code(const Matrix<float>& f_train, const Matrix<float>& f_test) {
  const Matrix<double> ft = f_train.cast<double>();
  const Vector<double> mu = ft.rowwise().mean();
  const Matrix<double> c = ft.colwise() - mu;
  const Eigen::SelfAdjointEigenSolver<Matrix<double>> es(c * c.transpose() /
                                                         static_cast<double>(c.cols()));
  const Index d = f_train.rows();
  Matrix<double> w(2 * d, d);
  for (Index i = 0; i < d; ++i) {  // descending variance
    w.row(i) = es.eigenvectors().col(d - 1 - i).transpose();
    w.row(d + i) = -w.row(i);
  }
  const double s = baseline_scale(f_train);
  return (s * (w * (f_test.cast<double>().colwise() - mu))).cast<float>();
}

/// Random orthogonal baseline: m / d stacked random orthogonal d × d matrices (QR of Gaussian
/// matrices; the remainder rows from one more), rows of unit norm: z = s·R(f − f̄), m features.
inline Matrix<float> random_code(const Matrix<float>& f_train, const Matrix<float>& f_test, Index m,
                                 Rng& rng) {
  const Index d = f_train.rows();
  Matrix<double> r(m, d);
  for (Index r0 = 0; r0 < m; r0 += d) {
    const Matrix<double> g = rng.normal_matrix<double>(d, d);
    const Eigen::HouseholderQR<Matrix<double>> qr(g);
    const Matrix<double> q = qr.householderQ();
    const Index rows = std::min(d, m - r0);
    r.middleRows(r0, rows) = q.transpose().topRows(rows);
  }
  const Vector<double> mu = f_train.cast<double>().rowwise().mean();
  const double s = baseline_scale(f_train);
  return (s * (r * (f_test.cast<double>().colwise() - mu))).cast<float>();
}

/// Untrained SAE: the ReLU code of an SAE at initialisation (random unit-norm decoder, encoder =
/// its transpose, zero encoder bias), with the trainer's input scale and b_dec initialisation.
inline Matrix<float> untrained_code(const Matrix<float>& f_train, const Matrix<float>& f_test,
                                    Index m, std::uint64_t seed) {
  sae::SparseAutoencoderParams p;
  p.architecture = sae::Architecture::PAnneal;  // code ReLU(W_enc (x − b_dec) + b_enc)
  p.d_in = f_train.rows();
  p.d_sae = m;
  sae::SparseAutoencoder<float> model(p, seed);
  const double s = baseline_scale(f_train);
  const Index n = std::min<Index>(4096, f_train.cols());
  const Matrix<float> sample = f_train.leftCols(n) * static_cast<float>(s);
  sae::init_decoder_bias(model, sample, 100);
  model.fold_input_scale(s);
  return model.encode(f_test);
}

}  // namespace detail

/// Scores a code z (width × N test samples) against the exact posteriors p (K × N): alignment
/// of exp(z) and z, per concept, and the permutation null of the exp(z) score's mean.
inline void score_code(const Matrix<float>& z, const Matrix<double>& post, Index permutations,
                       Rng& rng, CodeScore& cs) {
  cs.width = z.rows();
  cs.l0_code = static_cast<double>((z.array() != 0.0f).count()) / static_cast<double>(z.cols());
  const sae::ConceptAlignment al = sae::concept_alignment(z, post);
  cs.align_exp = al.mean_exp;
  cs.align_raw = al.mean_raw;
  cs.per_concept_exp = al.exp_corr;
  const sae::AlignmentNull null = sae::alignment_null(z, post, permutations, rng);
  cs.null_p95 = null.mean_p95;
  cs.null_p99 = null.mean_p99;
  cs.null_p_value = null.mean_p_value(al.mean_exp);
}

/// Trains the SAE of a code on f_train and scores it on f_test.
inline CodeScore sae_code_score(const StudyConfig& c, const CodeSpec& spec,
                                const Matrix<float>& f_train, const Matrix<float>& f_test,
                                const Matrix<double>& post, std::uint64_t seed, Rng& null_rng) {
  const Index d = f_train.rows(), m = c.width_factor * d, K = post.rows();
  const sae::SparseAutoencoderParams p = detail::sae_params(c, spec, d, m, K);
  sae::SparseAutoencoder<float> model(p, derive_seed(seed, 100));
  sae::TrainerParams tp = detail::trainer_params(c, f_train.cols(), derive_seed(seed, 101));
  if (!spec.knob_is_k) tp.sparsity_coefficient = spec.knob;
  const sae::TrainResult rep = sae::Trainer<float>(tp).fit(model, f_train);
  CodeScore cs;
  cs.name = spec.name;
  cs.knob = spec.knob_is_k ? static_cast<double>(spec.knob < 0 ? K : static_cast<Index>(spec.knob))
                           : spec.knob;
  cs.seconds = rep.seconds;
  cs.status = to_string(rep.outcome.status);
  if (spec.arch == sae::Architecture::Structured) cs.dense_width = p.structured.width(m);
  const sae::ReconstructionMetrics ev = sae::evaluate_reconstruction(model, f_test);
  cs.fvu = ev.fvu;
  cs.l0_sparse = ev.l0;
  score_code(model.encode(f_test), post, c.permutations, null_rng, cs);
  return cs;
}

/// One (world, seed): world, next-token model, probe, and every code of the config.
inline RunResult run_one(const StudyConfig& c, const WorldSpec& ws, Index world_index,
                         std::uint64_t seed, std::ostream& log) {
  RunResult res;
  res.world = ws.name;
  res.seed = seed;
  const std::uint64_t base = derive_seed(seed, 1000 + static_cast<std::uint64_t>(world_index));
  Rng rng(derive_seed(base, 1));
  const model::ConceptWorld<double> world = model::make_paper_world<double>(ws.params, rng);
  const Index K = world.concept_count(), l = world.joint_size();
  res.concepts = K;
  const model::Samples tr = world.sample(c.train, rng);
  const model::Samples va = world.sample(c.test / 2, rng);  // early stopping
  const model::Samples te = world.sample(c.test, rng);
  nn::NextTokenParams np;
  np.hidden = {256, 256};
  np.rep_dim = l - 1;
  np.seed = derive_seed(base, 2);
  nn::NextTokenModel<float> ntp(world.x_cardinalities(), world.vocab_size(), np);
  nn::TrainerParams ntp_tp;
  ntp_tp.max_steps = c.ntp_max_steps;
  ntp_tp.batch_size = c.ntp_batch;
  ntp_tp.adam.lr = c.ntp_lr;
  ntp_tp.seed = derive_seed(base, 3);
  ntp_tp.eval_every = c.ntp_eval_every;
  ntp_tp.patience = c.ntp_patience;
  const nn::TrainResult ntp_res = nn::Trainer<float>(ntp_tp).fit(ntp, tr.x, tr.y, va.x, va.y);
  res.ntp_steps = ntp_res.steps;
  res.ntp_loss = ntp.cross_entropy(te.x, te.y);
  res.bayes_loss = world.bayes_cross_entropy(te.x, te.y);
  const Matrix<float> f_train = ntp.representations(tr.x);
  const Matrix<float> f_test = ntp.representations(te.x);
  res.rep_dim = f_train.rows();
  res.width = c.width_factor * res.rep_dim;
  const Matrix<double> lm = world.log_marginals(te.x);
  Matrix<double> post(K, c.test);
  IntMatrix labels(K, c.test);
  for (Index k = 0; k < K; ++k) {
    post.row(k) = lm.row(world.marginal_offset(k) + 1).array().exp().matrix();
    labels.row(k) = te.c.row(k);
  }
  const sae::ProbeAlignment probe = sae::probe_alignment(f_test, labels, post);
  res.probe = probe.mean_corr;
  res.probe_per_concept = probe.corr;
  log << "  " << ws.name << " seed " << seed << ": next-token model " << ntp_res.steps
      << " steps, CE " << detail::fmt(res.ntp_loss, 4) << " (Bayes "
      << detail::fmt(res.bayes_loss, 4) << "), probe " << detail::fmt(res.probe) << "\n";
  Rng null_rng(derive_seed(base, 4)), rand_rng(derive_seed(base, 5));
  for (const CodeSpec& spec : c.codes) {
    CodeScore cs;
    if (spec.kind == CodeKind::Sae) {
      cs = sae_code_score(c, spec, f_train, f_test, post, base, null_rng);
    } else {
      cs.name = spec.name;
      const Matrix<float> z =
          spec.kind == CodeKind::Pca ? detail::pca_code(f_train, f_test)
          : spec.kind == CodeKind::Random
              ? detail::random_code(f_train, f_test, res.width, rand_rng)
              : detail::untrained_code(f_train, f_test, res.width, derive_seed(base, 6));
      score_code(z, post, c.permutations, null_rng, cs);
      cs.l0_sparse = cs.l0_code;
    }
    log << "    " << std::setw(14) << cs.name << "  width " << std::setw(4) << cs.width
        << "  L0(z) " << std::setw(7) << detail::fmt(cs.l0_code, 1) << "  FVU "
        << detail::fmt(cs.fvu) << "  align exp " << detail::fmt(cs.align_exp) << "  raw "
        << detail::fmt(cs.align_raw) << "  null p99 " << detail::fmt(cs.null_p99) << "  ("
        << detail::fmt(cs.seconds, 1) << " s, " << cs.status << ")\n";
    res.codes.push_back(std::move(cs));
  }
  return res;
}

}  // namespace ergo::saestudy
