// Tests for ergo/identify: target transforms, ridge fits and their CV paths, CCA, correlations,
// the rectangular assignment solver and MCC.
#include "common/test_utils.hpp"

#include <ergo/identify.hpp>

#include <gmock/gmock.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

using namespace ergo;
using namespace ergo::identify;
using ::testing::HasSubstr;

namespace {

// A well-conditioned random invertible matrix: Q diag(s) with s in [0.5, 2].
Matrix<double> random_invertible(Index n, Rng& rng) {
  const Matrix<double> g = rng.normal_matrix<double>(n, n);
  Eigen::HouseholderQR<Matrix<double>> qr(g);
  Matrix<double> q = qr.householderQ();
  for (Index j = 0; j < n; ++j) q.col(j) *= rng.uniform(0.5, 2.0);
  return q;
}

}  // namespace

// ------------------------------------------------------------------------------- targets ----

TEST(IdentifyTargets, HelmertBasisIsOrthonormalAndSumZero) {
  for (Index l : {2, 3, 7, 16}) {
    const Matrix<double> v = helmert_basis(l);
    ASSERT_EQ(v.rows(), l);
    ASSERT_EQ(v.cols(), l - 1);
    // Closed-form entries: orthonormality holds to a few ulps.
    EXPECT_EIGEN_NEAR((v.transpose() * v).eval(), Matrix<double>::Identity(l - 1, l - 1), 1e-14);
    EXPECT_EIGEN_NEAR((v.transpose() * Vector<double>::Ones(l)).eval(), Vector<double>::Zero(l - 1),
                      1e-14);
  }
}

TEST(IdentifyTargets, ClrCancelsTheLogPartitionAndIlrIsItsIsometry) {
  Rng rng(3);
  const Index l = 8, n = 50;
  const Matrix<double> logits = rng.normal_matrix<double>(l, n, 0.0, 2.0);
  const Matrix<double> lp = log_softmax_cols(logits);  // logits − log Z(x)
  // clr of the normalised log-posterior equals clr of the raw logits: log Z cancels.
  EXPECT_EIGEN_NEAR(clr(lp), clr(logits), 1e-12);
  EXPECT_EIGEN_NEAR(clr(lp).colwise().sum(), RowVector<double>::Zero(n), 1e-12);
  // ilr = Vᵀ clr, and V is an isometry on the sum-zero subspace.
  const Matrix<double> c = clr(lp), i = ilr(lp);
  EXPECT_EQ(i.rows(), l - 1);
  EXPECT_EIGEN_NEAR(i, (helmert_basis(l).transpose() * c).eval(), 1e-12);
  EXPECT_EIGEN_NEAR(i.colwise().norm(), c.colwise().norm(), 1e-12);
  // alr against configuration 2: row order skips the reference.
  const Matrix<double> a = alr(lp, 2);
  EXPECT_EQ(a.rows(), l - 1);
  EXPECT_NEAR(a(0, 5), lp(0, 5) - lp(2, 5), 1e-14);
  EXPECT_NEAR(a(2, 5), lp(3, 5) - lp(2, 5), 1e-14);
  EXPECT_EIGEN_NEAR(probabilities(lp).colwise().sum(), RowVector<double>::Ones(n), 1e-12);
}

TEST(IdentifyTargets, PerConceptTransforms) {
  // Two binary concepts and one ternary, stacked log-marginals.
  Rng rng(4);
  const std::vector<Index> cards = {2, 3, 2};
  const Index n = 20;
  Matrix<double> lm(7, n);
  lm.topRows(2) = log_softmax_cols(rng.normal_matrix<double>(2, n));
  lm.middleRows(2, 3) = log_softmax_cols(rng.normal_matrix<double>(3, n));
  lm.bottomRows(2) = log_softmax_cols(rng.normal_matrix<double>(2, n));
  const Matrix<double> cc = concept_clr(lm, cards);
  EXPECT_EIGEN_NEAR(cc.middleRows(2, 3).colwise().sum(), RowVector<double>::Zero(n), 1e-12);
  EXPECT_THROW(concept_log_odds(lm, cards), InvalidArgument);  // the ternary concept
  const Matrix<double> lm2 = lm.topRows(2);
  const Matrix<double> lo = concept_log_odds(lm2, {2});
  EXPECT_NEAR(lo(0, 3), lm2(1, 3) - lm2(0, 3), 1e-14);
  EXPECT_EIGEN_NEAR(make_targets(TargetKind::ConceptClr, lm, cards), cc, 0.0);
}

TEST(IdentifyTargets, NonFiniteInputIsRefusedWithACount) {
  Matrix<double> lp = Matrix<double>::Constant(4, 3, -1.0);
  lp(0, 0) = -std::numeric_limits<double>::infinity();
  lp(2, 1) = std::numeric_limits<double>::quiet_NaN();
  try {
    ilr(lp);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("ilr(): log_post: expected all entries finite, got 2 non-finite of 12"));
  }
  Matrix<double> clipped = lp;
  EXPECT_EQ(floor_log_probabilities(clipped, std::log(1e-6)), 1);  // −inf clipped, NaN left
  EXPECT_THROW(clr(clipped), InvalidArgument);
  EXPECT_THROW(alr(Matrix<double>::Zero(3, 2), 3), InvalidArgument);
}

// --------------------------------------------------------------------------------- ridge ----

TEST(IdentifyRidge, PlantedAffineMapIsRecoveredByEveryCvMethod) {
  Rng rng(10);
  const Index d = 8, k = 5, n = test::scaled(600, 120);
  const Matrix<double> a = rng.normal_matrix<double>(k, d);
  const Vector<double> b = rng.normal_matrix<double>(k, 1);
  const Matrix<double> f = rng.normal_matrix<double>(d, n, 1.0, 2.0);  // non-zero mean
  Matrix<double> t = a * f;
  t.colwise() += b;
  const Matrix<double> f_new = rng.normal_matrix<double>(d, 200);
  Matrix<double> t_new = a * f_new;
  t_new.colwise() += b;
  std::vector<Index> groups(static_cast<size_t>(n));
  for (Index i = 0; i < n; ++i) groups[static_cast<size_t>(i)] = i / 4;
  for (RidgeCv m : {RidgeCv::Gcv, RidgeCv::Loo, RidgeCv::KFold, RidgeCv::Fixed}) {
    RidgeParams p;
    p.cv = m;
    if (m == RidgeCv::Fixed) p.lambdas = {1e-9};
    RidgeRegression fit(p);
    fit.fit(f, t, m == RidgeCv::KFold ? Groups(groups) : Groups());
    SCOPED_TRACE(to_string(m));
    EXPECT_EQ(fit.cv_method(), m);
    // Noise-free data: every criterion prefers the smallest penalty, whose relative bias is
    // ≤ 1e-8 · (mean eigenvalue / smallest eigenvalue) ≈ 1e-7 on W.
    EXPECT_EIGEN_NEAR(fit.weights(), a, 1e-6);
    EXPECT_EIGEN_NEAR(fit.intercept(), b, 1e-6);
    const R2Scores r2 = fit.score(f_new, t_new);
    // R² = 1 − O((1e-7)²): equal to 1 within 1e-10.
    EXPECT_NEAR(r2.mean, 1.0, 1e-10);
    EXPECT_NEAR(r2.variance_weighted, 1.0, 1e-10);
    EXPECT_EQ(fit.rank(), k);
  }
}

TEST(IdentifyRidge, CvPathsMatchBruteForce) {
  Rng rng(11);
  const Index d = 4, k = 2, n = 40;
  const Matrix<double> f = rng.normal_matrix<double>(d, n);
  Matrix<double> t =
      rng.normal_matrix<double>(k, d) * f + rng.normal_matrix<double>(k, n, 0.0, 0.7);
  RidgeParams p;
  p.grid_size = 5;
  p.grid_min = 1e-3;
  p.grid_max = 10.0;

  // Direct ridge with intercept on a subset, returned as (W, b).
  auto direct = [&](const std::vector<Index>& idx, double lam, Matrix<double>& w,
                    Vector<double>& b) {
    Matrix<double> x(d, static_cast<Index>(idx.size())), y(k, static_cast<Index>(idx.size()));
    for (size_t i = 0; i < idx.size(); ++i) {
      x.col(static_cast<Index>(i)) = f.col(idx[i]);
      y.col(static_cast<Index>(i)) = t.col(idx[i]);
    }
    const Vector<double> mx = x.rowwise().mean(), my = y.rowwise().mean();
    x.colwise() -= mx;
    y.colwise() -= my;
    Matrix<double> g = x * x.transpose();
    g.diagonal().array() += lam;
    w = (g.ldlt().solve(x * y.transpose())).transpose();
    b = my - w * mx;
  };
  std::vector<Index> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), Index(0));
  const Vector<double> tm = t.rowwise().mean();
  const Vector<double> sst = (t.colwise() - tm).rowwise().squaredNorm();

  {  // LOO: refit without each sample.
    p.cv = RidgeCv::Loo;
    RidgeRegression fit(p);
    fit.fit(f, t);
    for (Index l = 0; l < fit.lambdas().size(); ++l) {
      Vector<double> press = Vector<double>::Zero(k);
      for (Index i = 0; i < n; ++i) {
        std::vector<Index> idx;
        for (Index j = 0; j < n; ++j)
          if (j != i) idx.push_back(j);
        Matrix<double> w;
        Vector<double> b;
        direct(idx, fit.lambdas()[l], w, b);
        press += (t.col(i) - w * f.col(i) - b).cwiseAbs2();
      }
      const Vector<double> want = Vector<double>::Ones(k) - press.cwiseQuotient(sst);
      // Two exact computations of the same PRESS; differences are rounding (1e-10).
      EXPECT_EIGEN_NEAR(fit.cv_r2_path().row(l).transpose(), want, 1e-10);
    }
  }
  {  // GCV from the explicit hat matrix.
    p.cv = RidgeCv::Gcv;
    RidgeRegression fit(p);
    fit.fit(f, t);
    Matrix<double> xc = f.colwise() - f.rowwise().mean();
    for (Index l = 0; l < fit.lambdas().size(); ++l) {
      const double lam = fit.lambdas()[l];
      Matrix<double> g = xc * xc.transpose();
      g.diagonal().array() += lam;
      const Matrix<double> h = xc.transpose() * g.ldlt().solve(xc) +
                               Matrix<double>::Constant(n, n, 1.0 / static_cast<double>(n));
      Matrix<double> w;
      Vector<double> b;
      direct(all, lam, w, b);
      const Matrix<double> res = t - ((w * f).colwise() + b);
      const double shrink = 1.0 - h.trace() / static_cast<double>(n);
      for (Index j = 0; j < k; ++j) {
        const double gcv = res.row(j).squaredNorm() / (shrink * shrink);
        EXPECT_NEAR(fit.cv_r2_path()(l, j), 1.0 - gcv / sst[j], 1e-10);
      }
    }
  }
  {  // K-fold with the same fold assignment.
    p.cv = RidgeCv::KFold;
    p.folds = 4;
    p.seed = 99;
    RidgeRegression fit(p);
    std::vector<Index> groups(static_cast<size_t>(n));
    for (Index i = 0; i < n; ++i) groups[static_cast<size_t>(i)] = i / 2;
    fit.fit(f, t, groups);
    Rng rng_f(p.seed);
    const IndexVector fold = fold_assignment(n, 4, rng_f, groups);
    for (Index l = 0; l < fit.lambdas().size(); ++l) {
      Vector<double> sse = Vector<double>::Zero(k), sst_f = Vector<double>::Zero(k);
      for (Index q = 0; q < 4; ++q) {
        std::vector<Index> tr, te;
        for (Index i = 0; i < n; ++i) (fold[i] == q ? te : tr).push_back(i);
        Matrix<double> w;
        Vector<double> b;
        direct(tr, fit.lambdas()[l], w, b);
        Vector<double> mean_te = Vector<double>::Zero(k);
        for (Index i : te) mean_te += t.col(i);
        mean_te /= static_cast<double>(te.size());
        for (Index i : te) {
          sse += (t.col(i) - w * f.col(i) - b).cwiseAbs2();
          sst_f += (t.col(i) - mean_te).cwiseAbs2();
        }
      }
      const Vector<double> want = Vector<double>::Ones(k) - sse.cwiseQuotient(sst_f);
      EXPECT_EIGEN_NEAR(fit.cv_r2_path().row(l).transpose(), want, 1e-10);
    }
    // The final map is the full-data ridge at the chosen λ.
    Matrix<double> w;
    Vector<double> b;
    direct(all, fit.lambda(), w, b);
    EXPECT_EIGEN_NEAR(fit.weights(), w, 1e-10);
    EXPECT_EIGEN_NEAR(fit.intercept(), b, 1e-10);
  }
}

TEST(IdentifyRidge, NoisyHeldOutR2MatchesItsClosedForm) {
  // t_j = a_jᵀ f + σ_j ε with f ~ N(0, I): population R²_j = ‖a_j‖² / (‖a_j‖² + σ_j²).
  Rng rng(12);
  const Index d = 3, k = 2, n = test::scaled(40000, 8000);
  Matrix<double> a(k, d);
  a << 1.0, -0.5, 0.25, 0.3, 0.2, -0.1;
  const Vector<double> sigma = (Vector<double>(2) << 0.8, 0.5).finished();
  auto draw = [&](Matrix<double>& f, Matrix<double>& t) {
    f = rng.normal_matrix<double>(d, n);
    t = a * f;
    for (Index j = 0; j < k; ++j) t.row(j) += sigma[j] * rng.normal_matrix<double>(1, n);
  };
  Matrix<double> f_tr, t_tr, f_te, t_te;
  draw(f_tr, t_tr);
  draw(f_te, t_te);
  RidgeRegression fit;
  fit.fit(f_tr, t_tr);
  const R2Scores r2 = fit.score(f_te, t_te);
  for (Index j = 0; j < k; ++j) {
    const double s = a.row(j).squaredNorm();
    const double want = s / (s + sigma[j] * sigma[j]);
    // Sampling sd of R² ≈ 2 sqrt(R²)(1 − R²)/sqrt(n) ≤ 0.005 at n = 8000; 0.03 is > 6 sd.
    EXPECT_NEAR(r2.per_output[j], want, 0.03) << "output " << j;
  }
}

TEST(IdentifyRidge, RejectsBadInput) {
  Matrix<double> f = Matrix<double>::Zero(3, 10), t = Matrix<double>::Zero(2, 9);
  try {
    RidgeRegression().fit(f, t);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("RidgeRegression::fit(): t: expected 10 columns (as f), got 9"));
  }
  Matrix<double> t2 = Matrix<double>::Zero(2, 10);
  f(1, 1) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(RidgeRegression().fit(f, t2), InvalidArgument);
  RidgeParams p;
  p.grid_max = 0.0;
  EXPECT_THROW(RidgeRegression{p}, InvalidArgument);
}

// ----------------------------------------------------------------------------------- CCA ----

TEST(IdentifyCca, PlantedInvertibleMapGivesUnitCorrelations) {
  Rng rng(20);
  const Index d = 6, k = 4, n = 300;
  const Matrix<double> f = rng.normal_matrix<double>(d, n);
  const Matrix<double> a = rng.normal_matrix<double>(k, d);
  const Matrix<double> t = a * f;
  const Matrix<double> f_te = rng.normal_matrix<double>(d, 100);
  const Matrix<double> t_te = a * f_te;
  for (CcaMethod m : {CcaMethod::Qr, CcaMethod::Gram}) {
    CcaParams p;
    p.method = m;
    Cca cca(p);
    cca.fit(f, t);
    SCOPED_TRACE(to_string(m));
    EXPECT_EQ(cca.components(), k);
    // Exact linear relation: the Gram path squares the conditioning (κ² eps ≈ 1e-13).
    EXPECT_EIGEN_NEAR(cca.correlations(), Vector<double>::Ones(k), 1e-10);
    EXPECT_EIGEN_NEAR(cca.evaluate(f_te, t_te), Vector<double>::Ones(k), 1e-10);
  }
}

TEST(IdentifyCca, MatchesTheWhitenedCrossCovarianceAndIsInvariantToInvertibleMaps) {
  Rng rng(21);
  const Index d = 5, k = 3, n = 400;
  const Matrix<double> f = rng.normal_matrix<double>(d, n);
  const Matrix<double> t =
      rng.normal_matrix<double>(k, d) * f + rng.normal_matrix<double>(k, n, 0.0, 1.5);
  // Reference: singular values of Σ_FF^{-1/2} Σ_FT Σ_TT^{-1/2}.
  const Matrix<double> fc = f.colwise() - f.rowwise().mean(), tc = t.colwise() - t.rowwise().mean();
  auto inv_sqrt = [](const Matrix<double>& s) {
    Eigen::SelfAdjointEigenSolver<Matrix<double>> es(s);
    return Matrix<double>(es.eigenvectors() *
                          es.eigenvalues().cwiseInverse().cwiseSqrt().asDiagonal() *
                          es.eigenvectors().transpose());
  };
  const Matrix<double> m =
      inv_sqrt(fc * fc.transpose()) * (fc * tc.transpose()) * inv_sqrt(tc * tc.transpose());
  const Vector<double> want = Eigen::JacobiSVD<Matrix<double>>(m).singularValues();
  Cca base;
  base.fit(f, t);
  // Three exact computations of the same spectrum: agreement to rounding (1e-12).
  EXPECT_EIGEN_NEAR(base.correlations(), want, 1e-12);
  CcaParams pg;
  pg.method = CcaMethod::Gram;
  Cca gram(pg);
  gram.fit(f, t);
  EXPECT_EIGEN_NEAR(gram.correlations(), want, 1e-12);

  const Matrix<double> mf = random_invertible(d, rng), mt = random_invertible(k, rng);
  Cca c1, c2;
  c1.fit(mf * f, t);
  c2.fit(f, mt * t);
  EXPECT_EIGEN_NEAR(c1.correlations(), want, 1e-11);
  EXPECT_EIGEN_NEAR(c2.correlations(), want, 1e-11);
  // Held-out spectra are invariant too (variates change only by the same map).
  const Matrix<double> f_te = rng.normal_matrix<double>(d, 150);
  const Matrix<double> t_te = rng.normal_matrix<double>(k, 150);
  EXPECT_EIGEN_NEAR(c1.evaluate(mf * f_te, t_te).cwiseAbs(), base.evaluate(f_te, t_te).cwiseAbs(),
                    1e-10);
  EXPECT_EIGEN_NEAR(c2.evaluate(f_te, mt * t_te).cwiseAbs(), base.evaluate(f_te, t_te).cwiseAbs(),
                    1e-10);
  // Variates have unit training variance.
  const Matrix<double> u = base.transform_x(f);
  EXPECT_NEAR((u.row(0).array() - u.row(0).mean()).square().sum() / static_cast<double>(n - 1), 1.0,
              1e-10);
}

TEST(IdentifyCca, RankDeficientBlockAndRegularisation) {
  Rng rng(22);
  const Index n = 200;
  Matrix<double> f = rng.normal_matrix<double>(4, n);
  f.row(3) = f.row(0) + 2.0 * f.row(1);  // rank 3
  const Matrix<double> t = rng.normal_matrix<double>(5, n);
  Cca cca;
  cca.fit(f, t);
  EXPECT_EQ(cca.rank_x(), 3);
  EXPECT_EQ(cca.components(), 3);
  CcaParams p;
  p.regularization = 0.1;
  Cca reg(p);
  reg.fit(f, t);
  EXPECT_EQ(reg.method(), CcaMethod::Gram);
  // Regularised directions are suboptimal in-sample: never above the plain correlations.
  for (Index i = 0; i < reg.components(); ++i)
    EXPECT_LE(reg.correlations()[i], cca.correlations()[0] + 1e-12);
  p.method = CcaMethod::Qr;
  EXPECT_THROW(Cca{p}, InvalidArgument);
  // Automatic ridge: a block with N < 10 p gets r = min(1, p/N), the other none.
  const Matrix<double> f2 = rng.normal_matrix<double>(30, 100),
                       t2 = rng.normal_matrix<double>(3, 100);
  Cca autocca;
  autocca.fit(f2, t2);
  EXPECT_EQ(autocca.method(), CcaMethod::Gram);
  EXPECT_DOUBLE_EQ(autocca.regularization_x(), 0.3);
  EXPECT_DOUBLE_EQ(autocca.regularization_y(), 0.0);
}

// ------------------------------------------------------------------------- assignment ----

namespace {
// Brute force over all injective maps rows → columns (r ≤ c) or columns → rows.
double brute_force_min(const Matrix<double>& c) {
  const bool tall = c.rows() <= c.cols();
  const Matrix<double> m = tall ? c : Matrix<double>(c.transpose());
  std::vector<Index> cols(static_cast<size_t>(m.cols()));
  std::iota(cols.begin(), cols.end(), Index(0));
  double best = std::numeric_limits<double>::infinity();
  // Enumerate permutations of all columns; the first r entries give an injective map (with
  // repeats, harmless for a minimum).
  do {
    double s = 0.0;
    for (Index i = 0; i < m.rows(); ++i) s += m(i, cols[static_cast<size_t>(i)]);
    best = std::min(best, s);
  } while (std::next_permutation(cols.begin(), cols.end()));
  return best;
}
}  // namespace

TEST(IdentifyAssignment, EqualsBruteForceOnSmallRandomMatrices) {
  Rng rng(30);
  for (int trial = 0; trial < 300; ++trial) {
    const Index r = static_cast<Index>(1 + rng.uniform_int(6));
    const Index c = static_cast<Index>(1 + rng.uniform_int(6));
    Matrix<double> cost = rng.uniform_matrix<double>(r, c, -3.0, 5.0);
    if (trial % 3 == 0) cost = cost.array().round().matrix();  // many ties
    const bool maximize = trial % 2 == 1;
    const Assignment a = linear_sum_assignment(cost, maximize);
    // Validity: injective, every row (or column) of the smaller side matched.
    std::vector<int> used(static_cast<size_t>(c), 0);
    Index matched = 0;
    double total = 0.0;
    for (Index i = 0; i < r; ++i) {
      const Index j = a.row_to_col[i];
      if (j < 0) continue;
      ASSERT_LT(j, c);
      ASSERT_EQ(used[static_cast<size_t>(j)]++, 0) << "column used twice";
      ASSERT_EQ(a.col_to_row[j], i);
      total += cost(i, j);
      ++matched;
    }
    ASSERT_EQ(matched, std::min(r, c));
    EXPECT_NEAR(a.total, total, 1e-12);
    const double want = maximize ? -brute_force_min(-cost) : brute_force_min(cost);
    // Sums of ≤ 6 values of magnitude ≤ 5: exact up to a few ulps.
    EXPECT_NEAR(a.total, want, 1e-12) << "trial " << trial << " " << r << "x" << c;
  }
  EXPECT_THROW(linear_sum_assignment(Matrix<double>(0, 3)), InvalidArgument);
  Matrix<double> bad = Matrix<double>::Zero(2, 2);
  bad(0, 1) = std::numeric_limits<double>::infinity();
  EXPECT_THROW(linear_sum_assignment(bad), InvalidArgument);
}

// ------------------------------------------------------------------- correlations, MCC ----

TEST(IdentifyCorrelation, PearsonSpearmanAndAverageRanks) {
  const Vector<double> x = (Vector<double>(5) << 10, 20, 20, 30, 5).finished();
  EXPECT_EIGEN_NEAR(average_ranks(x), (RowVector<double>(5) << 2, 3.5, 3.5, 5, 1).finished(), 0.0);
  const Vector<double> y = (Vector<double>(5) << 1, 3, 2, 7, 0).finished();
  // Hand computation: x̄ = 17, ȳ = 2.6; Σ dx dy = 99, Σ dx² = 380, Σ dy² = 29.2.
  EXPECT_NEAR(pearson(x, y), 99.0 / std::sqrt(380.0 * 29.2), 1e-14);
  // Spearman with ties: ranks x = (2, 3.5, 3.5, 5, 1), y = (2, 4, 3, 5, 1); Σ dr ds = 9.5,
  // Σ dr² = 9.5, Σ ds² = 10.
  EXPECT_NEAR(spearman(x, y), 9.5 / std::sqrt(9.5 * 10.0), 1e-14);
  const Vector<double> c = Vector<double>::Constant(5, 0.1);
  EXPECT_EQ(pearson(x, c), 0.0);  // documented: a constant variable correlates 0
}

TEST(IdentifyCorrelation, MccFindsAPlantedSignedPermutation) {
  Rng rng(31);
  const Index k = 4, d = 7, n = 500;
  const Matrix<double> t = rng.normal_matrix<double>(k, n);
  Matrix<double> f = rng.normal_matrix<double>(d, n, 0.0, 0.05);
  const std::vector<Index> planted = {5, 0, 3, 6};
  for (Index i = 0; i < k; ++i)
    f.row(planted[static_cast<size_t>(i)]) += (i % 2 ? -1.0 : 1.0) * t.row(i);
  for (CorrelationKind kind : {CorrelationKind::Pearson, CorrelationKind::Spearman}) {
    const MccResult r = mcc(t, f, kind);
    for (Index i = 0; i < k; ++i) EXPECT_EQ(r.assignment[i], planted[static_cast<size_t>(i)]);
    // Noise sd 0.05 against unit signal: |corr| ≈ 0.9988 each.
    EXPECT_GT(r.mcc, 0.99);
  }
  const MccResult h =
      mcc_out_of_sample(t.leftCols(250), f.leftCols(250), t.rightCols(250), f.rightCols(250));
  EXPECT_GT(h.mcc, 0.99);
  // More factors than dimensions: unmatched factors count 0.
  const MccResult wide = mcc(f.topRows(3), t.topRows(2));
  EXPECT_EQ((wide.assignment.array() < 0).count(), 1);
}
