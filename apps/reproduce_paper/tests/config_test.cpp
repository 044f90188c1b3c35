// Tests of apps/reproduce_paper/config.hpp: defaults are valid, JSON merging, and the parser's
// errors for unknown keys, wrong types and out-of-range values name the key.
#include "common/test_utils.hpp"

#include "reproduce_paper/config.hpp"

#include <gmock/gmock.h>

using ergo::repro::Config;
using ::testing::HasSubstr;

TEST(ReproduceConfig, DefaultsAndQuickAreValidAndRoundTrip) {
  Config c;
  EXPECT_NO_THROW(ergo::repro::check(c));
  Config q;
  ergo::repro::apply_quick(q);
  EXPECT_NO_THROW(ergo::repro::check(q));
  EXPECT_TRUE(q.quick);
  Config back;
  ergo::repro::merge_json(back, ergo::repro::to_json(q));
  EXPECT_EQ(ergo::repro::to_json(back), ergo::repro::to_json(q));
}

TEST(ReproduceConfig, MergeOverridesOnlyGivenKeys) {
  Config c;
  ergo::repro::merge_json(c, nlohmann::json{{"seeds", 3}, {"exp1_n", {2, 16}}, {"lr", 0.01}});
  EXPECT_EQ(c.seeds, 3);
  EXPECT_EQ(c.exp1_n, (std::vector<ergo::Index>{2, 16}));
  EXPECT_DOUBLE_EQ(c.lr, 0.01);
  EXPECT_EQ(c.epochs, Config{}.epochs);
}

TEST(ReproduceConfig, UnknownKeyIsRejectedByName) {
  Config c;
  try {
    ergo::repro::merge_json(c, nlohmann::json{{"seeds", 3}, {"learning_rate", 0.1}});
    FAIL();
  } catch (const ergo::InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("learning_rate: expected one of the known keys"));
    EXPECT_THAT(e.what(), HasSubstr("got an unknown key"));
  }
}

TEST(ReproduceConfig, WrongTypeAndOutOfRangeAreRejectedByName) {
  Config c;
  try {
    ergo::repro::merge_json(c, nlohmann::json{{"epochs", "many"}});
    FAIL();
  } catch (const ergo::InvalidArgument& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("epochs: expected a value of the same type as 10, got \"many\""));
  }
  Config r;
  ergo::repro::merge_json(r, nlohmann::json{{"eta", 0.7}});
  try {
    ergo::repro::check(r);
    FAIL();
  } catch (const ergo::InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("eta: expected a value in [0, 0.5), got 0.7"));
  }
  Config n;
  n.exp1_n = {2, 17};  // ℓ = 16 for m = 4
  try {
    ergo::repro::check(n);
    FAIL();
  } catch (const ergo::InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("exp1_n[]: expected a value in [1, 16], got 17"));
  }
  EXPECT_THROW(ergo::repro::merge_json(c, nlohmann::json::array()), ergo::InvalidArgument);
  // A fraction for an integer key is refused, not truncated.
  try {
    ergo::repro::merge_json(c, nlohmann::json{{"seeds", 2.5}});
    FAIL();
  } catch (const ergo::InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("seeds: expected a value of the same type as"));
  }
}

TEST(ReproduceConfig, PermutationCountMustReachThePThreshold) {
  Config c;
  c.permutations = 99;  // smallest p = 0.01, not below max_p_value = 0.01
  try {
    ergo::repro::check(c);
    FAIL();
  } catch (const ergo::InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("permutations: expected at least 100"));
  }
  c.max_p_value = 0.02;
  EXPECT_NO_THROW(ergo::repro::check(c));
  c.permutations = 0;  // no null at all is fine
  EXPECT_NO_THROW(ergo::repro::check(c));
}
