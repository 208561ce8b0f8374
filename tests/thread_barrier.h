// thread_barrier.h: a reusable barrier for test threads that stand in for
// the ranks of a job (the collectives' stand-ins in tests/unit and tests/gpu).
// Each Wait returns once all `size` threads have called it; the barrier is
// then ready for the next round (its generation counts the rounds).
#pragma once

#include <condition_variable>
#include <mutex>

namespace lm_test {

struct ThreadBarrier {
  explicit ThreadBarrier(int n) : size(n) {}
  // The caller holds `lk` on mu: threads that keep the lock between rounds
  // (the emulated device is one at a time) release it only while waiting.
  void Wait(std::unique_lock<std::mutex>* lk) {
    const int gen = generation;
    if (++waiting == size) {
      waiting = 0;
      generation++;
      cv.notify_all();
    } else {
      cv.wait(*lk, [&] { return generation != gen; });
    }
  }
  void Wait() {
    std::unique_lock<std::mutex> lk(mu);
    Wait(&lk);
  }

  const int size;
  std::mutex mu;
  std::condition_variable cv;
  int waiting = 0, generation = 0;
};

}  // namespace lm_test
