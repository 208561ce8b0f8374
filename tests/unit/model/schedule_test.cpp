// schedule_test.cpp: the learning-rate schedules' shape at known points.
#include "model/schedule.h"

#include <cmath>

#include "../test.h"

using namespace lm;

TEST(wsd_shape) {
  Schedule s;
  s.kind = ScheduleKind::kWsd;
  s.warmup_fraction = 0.1;
  s.decay_fraction = 0.2;
  CHECK_OK(s.Validate());
  CHECK_NEAR(s.Multiplier(0.0, 0), 0.0, 1e-12);
  CHECK_NEAR(s.Multiplier(0.05, 0), 0.5, 1e-12);
  CHECK_NEAR(s.Multiplier(0.1, 0), 1.0, 1e-12);
  CHECK_NEAR(s.Multiplier(0.5, 0), 1.0, 1e-12);
  CHECK_NEAR(s.Multiplier(0.8, 0), 1.0, 1e-12);
  CHECK_NEAR(s.Multiplier(0.9, 0), 0.5, 1e-12);
  CHECK_NEAR(s.Multiplier(0.99, 0), 0.05, 1e-12);
  CHECK_EQ(s.Multiplier(1.0, 0), 0.0);
  CHECK_EQ(s.Multiplier(1.5, 0), 0.0);
  CHECK_EQ(s.Multiplier(NAN, 0), 0.0);
}

TEST(cosine_shape) {
  Schedule s;
  s.kind = ScheduleKind::kCosine;
  s.warmup_fraction = 0.0;
  CHECK_OK(s.Validate());
  CHECK_NEAR(s.Multiplier(0.0, 0), 1.0, 1e-12);
  CHECK_NEAR(s.Multiplier(0.5, 0), 0.5, 1e-12);
  CHECK_NEAR(s.Multiplier(0.25, 0), 0.5 * (1 + std::cos(M_PI / 4)), 1e-12);
  CHECK_NEAR(s.Multiplier(0.999999, 0), 0.0, 1e-9);
  CHECK_EQ(s.Multiplier(1.0, 0), 0.0);
  // With warmup, the cosine starts at the end of warmup.
  s.warmup_fraction = 0.2;
  CHECK_NEAR(s.Multiplier(0.1, 0), 0.5, 1e-12);
  CHECK_NEAR(s.Multiplier(0.2, 0), 1.0, 1e-12);
  CHECK_NEAR(s.Multiplier(0.6, 0), 0.5, 1e-12);
}

TEST(warmup_in_steps) {
  Schedule s;
  s.warmup_steps = 4;
  s.decay_fraction = 0.5;
  CHECK_NEAR(s.Multiplier(0.0, 0), 0.25, 1e-12);
  CHECK_NEAR(s.Multiplier(0.01, 1), 0.5, 1e-12);
  CHECK_NEAR(s.Multiplier(0.02, 3), 1.0, 1e-12);
  CHECK_NEAR(s.Multiplier(0.02, 100), 1.0, 1e-12);
  CHECK_NEAR(s.Multiplier(0.75, 100), 0.5, 1e-12);
}

TEST(monotone_decay_to_zero) {
  for (ScheduleKind k : {ScheduleKind::kWsd, ScheduleKind::kCosine}) {
    Schedule s;
    s.kind = k;
    s.warmup_fraction = 0.05;
    double prev = 2;
    for (int i = 100; i <= 1000; i++) {
      double m = s.Multiplier(i / 1000.0, i);
      CHECK(m >= 0 && m <= 1);
      CHECK(m <= prev + 1e-15);
      prev = m;
    }
    CHECK_EQ(prev, 0.0);
  }
}

TEST(validate_and_parse) {
  Schedule s;
  s.warmup_fraction = 1.0;
  CHECK(!s.Validate().ok());
  s.warmup_fraction = 0.9;
  s.decay_fraction = 0.2;
  CHECK(!s.Validate().ok());  // warmup runs into the decay
  s.warmup_fraction = 0.1;
  s.decay_fraction = 0;
  CHECK(!s.Validate().ok());
  ScheduleKind k;
  CHECK_OK(ParseScheduleKind("cosine", &k));
  CHECK(k == ScheduleKind::kCosine);
  CHECK_OK(ParseScheduleKind("wsd", &k));
  CHECK(k == ScheduleKind::kWsd);
  CHECK_EQ(ParseScheduleKind("linear", &k).code(), Status::kUsage);
}

TEST_MAIN()
