//! The token bucket that caps ICMP messages the router generates (RFC 1812 section
//! 4.3.2.8, RFC 4443 section 2.4 (f)), lock-free so the packet path can consult it.
//!
//! Owns only rate arithmetic; time is passed in, never read here, so tests drive it.

use std::sync::atomic::{AtomicU64, Ordering};

/// A rate and a burst. `per_second == 0` disables the messages entirely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl RateLimit {
    /// The default for ICMP errors: 100 per second, bursts of 50.
    pub const ICMP_ERRORS: RateLimit = RateLimit {
        per_second: 100,
        burst: 50,
    };
    /// The default for echo replies: generous, but a ping flood cannot take the CPU.
    pub const ECHO_REPLIES: RateLimit = RateLimit {
        per_second: 1000,
        burst: 200,
    };
}

/// A token bucket as the generic cell rate algorithm: one atomic holds the theoretical
/// arrival time (TAT) of the next message, so acquiring is a load and a CAS, no lock.
/// Allowing while TAT - now <= (burst - 1) * interval is exactly a bucket of `burst`
/// tokens refilled at `per_second`.
#[derive(Debug)]
pub struct IcmpRateLimiter {
    tat_ns: AtomicU64,
    interval_ns: u64,
    tolerance_ns: u64,
    enabled: bool,
}

impl IcmpRateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        let interval_ns = 1_000_000_000 / u64::from(limit.per_second.max(1));
        IcmpRateLimiter {
            tat_ns: AtomicU64::new(0),
            interval_ns,
            tolerance_ns: interval_ns * u64::from(limit.burst.max(1) - 1),
            enabled: limit.per_second > 0,
        }
    }

    /// Takes one token at monotonic time `now_ns`; false when the bucket is empty.
    pub fn try_acquire(&self, now_ns: u64) -> bool {
        if !self.enabled {
            return false;
        }
        let mut tat = self.tat_ns.load(Ordering::Relaxed);
        loop {
            let base = tat.max(now_ns);
            if base - now_ns > self.tolerance_ns {
                return false;
            }
            match self.tat_ns.compare_exchange_weak(
                tat,
                base + self.interval_ns,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => tat = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_bursts_then_refills() {
        let l = IcmpRateLimiter::new(RateLimit {
            per_second: 100,
            burst: 50,
        });
        let t0 = 5_000_000_000;
        let sent = (0..200).filter(|_| l.try_acquire(t0)).count();
        assert_eq!(sent, 50);
        // 10 ms later exactly one token has come back.
        assert!(l.try_acquire(t0 + 10_000_000));
        assert!(!l.try_acquire(t0 + 10_000_000));
        // After a long pause the bucket is full again, not fuller.
        let t1 = t0 + 60_000_000_000;
        assert_eq!((0..200).filter(|_| l.try_acquire(t1)).count(), 50);
    }

    #[test]
    fn steady_rate() {
        let l = IcmpRateLimiter::new(RateLimit {
            per_second: 100,
            burst: 1,
        });
        // One attempt per millisecond for a second: 100 get through.
        let sent = (0..1000u64)
            .filter(|ms| l.try_acquire(1_000_000_000 + ms * 1_000_000))
            .count();
        assert_eq!(sent, 100);
    }

    #[test]
    fn zero_rate_disables() {
        let l = IcmpRateLimiter::new(RateLimit {
            per_second: 0,
            burst: 10,
        });
        assert!(!l.try_acquire(0));
    }
}
