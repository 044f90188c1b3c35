// Tests for ergo/core.hpp: errors, RNG and distributions, log-space helpers, callbacks.
#include "common/test_utils.hpp"

#include <ergo/core.hpp>

#include <gmock/gmock.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <sstream>

using namespace ergo;
using ::testing::HasSubstr;

// ---------------------------------------------------------------- errors ----

TEST(CoreErrors, MessageNamesFunctionArgumentExpectedAndGot) {
  try {
    check_range("Foo::bar", "alpha", 2.5, 0.0, 1.0);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("Foo::bar(): alpha: expected a value in [0, 1], got 2.5"));
  }
}

TEST(CoreErrors, ShapeAndFiniteChecks) {
  MatrixXd m(2, 3);
  m.setZero();
  EXPECT_NO_THROW(check_shape("f", "m", m, 2, -1));
  try {
    check_shape("f", "m", m, 3, 3);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("expected shape 3 x 3, got 2 x 3"));
  }
  m(1, 2) = std::numeric_limits<double>::quiet_NaN();
  m(0, 0) = std::numeric_limits<double>::infinity();
  EXPECT_EQ(count_non_finite(m), 2);
  try {
    check_finite("f", "m", m);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("got 2 non-finite of 6"));
  }
  EXPECT_THROW(check_positive("f", "x", 0.0), std::invalid_argument);
}

TEST(CoreErrors, CheckMacroThrowsLogicError) {
  EXPECT_THROW(ERGO_CHECK(1 + 1 == 3, "arithmetic"), LogicError);
  EXPECT_NO_THROW(ERGO_CHECK(true, ""));
}

// ------------------------------------------------------------------- RNG ----

TEST(CoreRng, EngineMatchesTheStandardSequence) {
  // The C++ standard fixes the 10000th output of a default-seeded mt19937_64
  // ([rand.predef]); our Rng must expose exactly that stream.
  Rng rng(5489u);
  std::uint64_t v = 0;
  for (int i = 0; i < 10000; ++i) v = rng();
  EXPECT_EQ(v, 9981545732273789042ULL);
}

TEST(CoreRng, SameSeedSameNumbersDifferentSeedDifferent) {
  Rng a(7), b(7), c(8);
  for (int i = 0; i < 100; ++i) {
    const double x = a.normal(), y = b.normal();
    EXPECT_EQ(x, y);
  }
  EXPECT_NE(a.uniform(), c.uniform());
  EXPECT_NE(derive_seed(1, 0), derive_seed(1, 1));
  EXPECT_EQ(derive_seed(1, 2), derive_seed(1, 2));
}

TEST(CoreRng, StateRoundTripContinuesTheStream) {
  Rng a(123);
  a.normal();  // leaves a cached spare normal
  const std::string s = a.state();
  Rng b(0);
  b.set_state(s);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.normal(), b.normal());
  EXPECT_THROW(b.set_state("garbage"), InvalidArgument);
}

// Moments of the distributions. With n draws the sample mean has standard error sigma/sqrt(n);
// every bound below is at least 5 standard errors, so a correct sampler fails with probability
// < 1e-6 per check, while a wrong formula (e.g. a wrong gamma scale) misses by far more.
TEST(CoreRng, UniformAndNormalMoments) {
  Rng rng(1);
  const int n = 200000;
  double su = 0, sz = 0, sz2 = 0;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    su += u;
    const double z = rng.normal();
    sz += z;
    sz2 += z * z;
  }
  EXPECT_NEAR(su / n, 0.5, 5 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(sz / n, 0.0, 5 / std::sqrt(n));
  EXPECT_NEAR(sz2 / n, 1.0, 5 * std::sqrt(2.0 / n));
}

TEST(CoreRng, GammaMomentsSmallAndLargeShape) {
  Rng rng(2);
  for (double shape : {0.3, 1.0, 4.5}) {
    const int n = 100000;
    double s = 0, s2 = 0;
    for (int i = 0; i < n; ++i) {
      const double g = rng.gamma(shape);
      ASSERT_GT(g, 0.0);
      s += g;
      s2 += g * g;
    }
    const double mean = s / n, var = s2 / n - mean * mean;
    // mean = shape, var = shape; SE(mean) = sqrt(shape/n).
    EXPECT_NEAR(mean, shape, 5 * std::sqrt(shape / n)) << "shape " << shape;
    EXPECT_NEAR(var, shape, 0.05 * shape + 10 * std::sqrt(shape / n)) << "shape " << shape;
  }
  EXPECT_THROW(rng.gamma(0.0), InvalidArgument);
}

TEST(CoreRng, DirichletIsAProbabilityVectorWithTheRightMean) {
  Rng rng(3);
  VectorXd alpha(3);
  alpha << 1.0, 2.0, 7.0;
  VectorXd mean = VectorXd::Zero(3);
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const VectorXd p = rng.dirichlet(alpha);
    ASSERT_NEAR(p.sum(), 1.0, 1e-12);
    ASSERT_GE(p.minCoeff(), 0.0);
    mean += p;
  }
  mean /= n;
  // E[p_i] = alpha_i / sum(alpha); each Var <= 1/4 / (sum+1), SE < 0.0011.
  EXPECT_EIGEN_NEAR(mean, alpha / alpha.sum(), 0.006);
}

TEST(CoreRng, CategoricalFrequencies) {
  Rng rng(4);
  VectorXd w(4);
  w << 0.1, 0.0, 0.6, 0.3;
  VectorXd counts = VectorXd::Zero(4);
  const int n = 100000;
  for (int i = 0; i < n; ++i) counts[rng.categorical(w)] += 1;
  EXPECT_EQ(counts[1], 0);  // zero weight is never drawn
  // SE of a frequency <= 0.5/sqrt(n) = 0.0016; 5 SE = 0.008.
  EXPECT_EIGEN_NEAR(counts / n, w, 0.008);
  VectorXd bad(2);
  bad << -1.0, 2.0;
  EXPECT_THROW(rng.categorical(bad), InvalidArgument);
  EXPECT_THROW(rng.categorical(VectorXd::Zero(3)), InvalidArgument);
}

TEST(CoreRng, UniformIntIsUnbiasedAndPermutationIsAPermutation) {
  Rng rng(5);
  const int k = 7, n = 70000;
  std::vector<int> counts(k, 0);
  for (int i = 0; i < n; ++i) counts[rng.uniform_int(k)]++;
  // Chi-square with 6 degrees of freedom: P(X > 30) < 1e-4.
  double chi2 = 0;
  for (int c : counts) chi2 += (c - n / double(k)) * (c - n / double(k)) / (n / double(k));
  EXPECT_LT(chi2, 30.0);
  const IndexVector p = rng.permutation(50);
  std::set<Index> seen(p.data(), p.data() + p.size());
  EXPECT_EQ(seen.size(), 50u);
  EXPECT_EQ(*seen.begin(), 0);
  EXPECT_EQ(*seen.rbegin(), 49);
  int bern = 0;
  for (int i = 0; i < n; ++i) bern += rng.bernoulli(0.25);
  EXPECT_NEAR(bern / double(n), 0.25, 5 * std::sqrt(0.25 * 0.75 / n));
}

// ------------------------------------------------------------- log-space ----

template <class T>
class CoreLogspace : public ::testing::Test {};
TYPED_TEST_SUITE(CoreLogspace, ergo::test::FloatTypes);

TYPED_TEST(CoreLogspace, LogSumExpMatchesNaiveAndSurvivesExtremes) {
  using S = TypeParam;
  Matrix<S> m(3, 4);
  m << 0, 1, -1000, -std::numeric_limits<S>::infinity(),  //
      1, 2, -1001, -std::numeric_limits<S>::infinity(),   //
      2, 3, -1002, -std::numeric_limits<S>::infinity();
  const RowVector<S> lse = log_sum_exp_cols(m);
  const S naive0 = std::log(std::exp(S(0)) + std::exp(S(1)) + std::exp(S(2)));
  EXPECT_NEAR(lse[0], naive0, ScalarTraits<S>::test_tol() * 10);
  EXPECT_NEAR(lse[1], naive0 + 1, ScalarTraits<S>::test_tol() * 10);
  EXPECT_NEAR(lse[2], naive0 - 1002, S(1e-3));  // naive exp underflows here; we do not
  EXPECT_EQ(lse[3], -std::numeric_limits<S>::infinity());
  EXPECT_NEAR(log_sum_exp(m.col(0)), lse[0], ScalarTraits<S>::test_tol());
  EXPECT_NEAR(log_add_exp(S(-1000), S(-1000)), S(-1000) + std::log(S(2)), S(1e-3));
}

TYPED_TEST(CoreLogspace, SoftmaxAndLogSoftmaxAreConsistent) {
  using S = TypeParam;
  Rng rng(9);
  Matrix<S> m = rng.normal_matrix<S>(5, 6, 0.0, 30.0);
  const Matrix<S> p = softmax_cols(m);
  const Matrix<S> lp = log_softmax_cols(m);
  for (Index j = 0; j < 6; ++j) EXPECT_NEAR(p.col(j).sum(), S(1), ScalarTraits<S>::prob_tol());
  EXPECT_EIGEN_NEAR(Matrix<S>(lp.array().exp()), p, ScalarTraits<S>::prob_tol());
  // In-place on a block.
  Matrix<S> big = m;
  log_softmax_cols_inplace(big.leftCols(2));
  EXPECT_EIGEN_NEAR(big.leftCols(2), lp.leftCols(2), ScalarTraits<S>::test_tol());
  Matrix<S> dead(2, 1);
  dead.setConstant(-std::numeric_limits<S>::infinity());
  EXPECT_THROW(softmax_cols(dead), InvalidArgument);
}

TEST(CoreLogspace, SafeLogAndLog1mExp) {
  EXPECT_EQ(safe_log(0.0), -std::numeric_limits<double>::infinity());
  EXPECT_THROW(safe_log(-0.1), InvalidArgument);
  // Reference in long double with expm1 (the naive log(1 - exp(x)) is the inaccurate one).
  for (double x : {-1e-10, -0.1, -0.7, -5.0, -50.0}) {
    const long double xl = x;
    const double ref =
        static_cast<double>(x > -0.5 ? std::log(-std::expm1(xl)) : std::log1p(-std::exp(xl)));
    EXPECT_NEAR(log1m_exp(x), ref, 1e-14 * std::abs(ref) + 1e-300) << x;
  }
}

// ------------------------------------------------------------- callbacks ----

TEST(CoreCallbacks, CsvLoggerAndListAndProgressBar) {
  std::ostringstream csv, bar;
  CsvLogger logger(csv);
  ProgressBar pb(bar, 10, 0.0);
  struct StopAt3 : Callback {
    bool on_progress(const ProgressEvent& e) override { return e.step < 3; }
  } stopper;
  CallbackList list({&logger, &pb, &stopper});
  ProgressEvent e;
  e.phase = "train";
  e.total = 10;
  e.extra = {{"l0", 4.0}};
  list.on_begin(e);
  int steps = 0;
  for (e.step = 1; e.step <= 10; ++e.step) {
    e.loss = 1.0 / static_cast<double>(e.step);
    e.elapsed_seconds = static_cast<double>(e.step);
    ++steps;
    if (!list.on_progress(e)) break;
  }
  list.on_end(e, "done");
  EXPECT_EQ(steps, 3);
  const std::string s = csv.str();
  EXPECT_THAT(
      s, HasSubstr("phase,step,total,epoch,loss,val_loss,items_per_second,elapsed_seconds,l0"));
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 1 + 1 + 3 + 1);
  EXPECT_THAT(bar.str(), HasSubstr("train ["));
  EXPECT_THAT(bar.str(), HasSubstr("done"));
  EXPECT_EQ(std::string(to_string(Status::NumericalIssue)), "NumericalIssue");
}

TEST(CoreLogspace, ExpOfLogGivesExactZerosForMinusInfinity) {
  // Eigen's vectorised exp returns ~1e-308 for -inf; exp_of_log must return exactly 0, so a
  // masked logit has probability exactly zero after softmax.
  Eigen::ArrayXd a(4);
  a << 0.0, -std::numeric_limits<double>::infinity(), -3.0, -800.0;
  const Eigen::ArrayXd e = exp_of_log(a);
  EXPECT_EQ(e[1], 0.0);
  EXPECT_DOUBLE_EQ(e[0], 1.0);
  EXPECT_NEAR(e[2], std::exp(-3.0), 1e-16);
  MatrixXd logits(3, 1);
  logits << 1.0, -std::numeric_limits<double>::infinity(), 2.0;
  EXPECT_EQ(softmax_cols(logits)(1, 0), 0.0);
}

// ------------------------------------------------------------------ parallel ----

TEST(CoreParallel, RunSideBySideRunsBothAndRethrowsTheFirstError) {
  for (const int threads : {1, 2}) {
    SCOPED_TRACE(threads);
    const ThreadLimit limit(threads);
    // both run, each exactly once, on distinct threads when two are asked for and available
    int a = 0, b = 0, ta = -1, tb = -1;
    detail::run_side_by_side(
        threads,
        [&] {
          ++a;
          ta = detail::thread_index();
        },
        [&] {
          ++b;
          tb = detail::thread_index();
        });
    EXPECT_EQ(a, 1);
    EXPECT_EQ(b, 1);
#ifdef _OPENMP
    if (threads == 2 && omp_get_max_threads() >= 2) {
      EXPECT_NE(ta, tb);
    }
#endif
    // an exception in either is rethrown after both finished; f's wins when both throw
    bool g_ran = false;
    EXPECT_THROW(detail::run_side_by_side(
                     threads, [] { throw RuntimeError("f"); }, [&] { g_ran = true; }),
                 RuntimeError);
    EXPECT_TRUE(g_ran);
    try {
      detail::run_side_by_side(
          threads, [] { throw RuntimeError("f"); }, [] { throw InvalidArgument("g"); });
      FAIL() << "no throw";
    } catch (const RuntimeError& e) {
      EXPECT_STREQ(e.what(), "f");
    }
  }
}
