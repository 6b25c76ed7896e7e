//! The per-call engine: the state of one call of a [`Retry`] and the
//! decision after each failed attempt (retry after which wait, or stop and
//! why). The async runner (`run`) and the blocking runner (`blocking`)
//! both drive it, so they cannot decide differently; only their waiting
//! differs.
//!
//! The engine keeps the caller's error type `E` and sees each error
//! through a *view*, a function from `&E` to the `dyn Error` that rules
//! match and events carry: [`plain`] for an `E` that is itself an error,
//! [`boxed`] for a box around one. That is how [`Retry::run`] and
//! [`Retry::run_boxed`] (and the blocking pair) share one engine.
//!
//! [`Retry`]: crate::Retry
//! [`Retry::run`]: crate::Retry::run
//! [`Retry::run_boxed`]: crate::Retry::run_boxed

use std::error::Error as StdError;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Level;

use crate::classify::{Decision, Rule};
use crate::error::{RetryError, StopReason};
use crate::event::{self, Event};
use crate::policy::{Policy, Waits};

/// Progress through a schedule within one call.
enum Cursor {
    /// No wait taken from it yet, so no schedule iterator made yet.
    Start,
    /// Next index into a listed schedule.
    Listed(usize),
    /// A custom schedule's iterator for this call.
    Custom(Box<dyn Iterator<Item = Duration> + Send>),
}

impl Cursor {
    /// The next wait of `waits`, if any is left; on the first call the
    /// first `skip` waits are passed over (taken by a call resumed from an
    /// attempt store).
    #[inline]
    fn next(&mut self, waits: &Waits, skip: u32) -> Option<Duration> {
        if let Cursor::Start = self {
            *self = match waits {
                Waits::Listed(_) => Cursor::Listed(skip as usize),
                Waits::Custom(factory) => {
                    let mut iter = factory();
                    if skip > 0 {
                        iter.nth(skip as usize - 1);
                    }
                    Cursor::Custom(iter)
                }
            };
        }
        match (self, waits) {
            (Cursor::Listed(next), Waits::Listed(list)) => {
                let wait = list.get(*next).copied()?;
                *next += 1;
                Some(wait)
            }
            (Cursor::Custom(iter), _) => iter.next(),
            // The cursor is made from these very waits above.
            _ => None,
        }
    }
}

/// Rules whose retry counts are kept inline: policies have a few rules,
/// and counting per rule must not cost a call an allocation.
const INLINE_RULES: usize = 4;

/// Per-rule state of one call: the retries granted to each rule (same
/// index as the policy's rules), counting those of earlier processes for a
/// resumed call, and where each rule's own custom schedule is.
struct RuleState {
    /// The first rules' counts.
    inline: [u32; INLINE_RULES],
    /// What every count starts at: the failed attempts of this call made
    /// by earlier processes (see [`Attempts::resume`]). The schedules start
    /// that far in too.
    base: u32,
    /// What only some calls need, made on first use: one pointer, so that
    /// every other call neither allocates nor drops it.
    extra: Option<Box<RuleExtra>>,
}

/// The part of [`RuleState`] made on first use.
#[derive(Default)]
struct RuleExtra {
    /// The counts of rules past the inline ones.
    counts: Vec<u32>,
    /// Where each rule's own custom schedule is (same index as the
    /// policy's rules). Listed rule schedules need no cursor: the rule's
    /// count is the index.
    cursors: Vec<Cursor>,
}

impl RuleState {
    fn new(base: u32) -> Self {
        RuleState {
            inline: [base; INLINE_RULES],
            base,
            extra: None,
        }
    }

    #[inline]
    fn count(&self, rule: usize) -> u32 {
        match self.inline.get(rule) {
            Some(&count) => count,
            None => self
                .extra
                .as_ref()
                .and_then(|extra| extra.counts.get(rule - INLINE_RULES).copied())
                .unwrap_or(self.base),
        }
    }

    #[inline]
    fn increment(&mut self, rule: usize) {
        let slot = match self.inline.get_mut(rule) {
            Some(slot) => slot,
            None => {
                let at = rule - INLINE_RULES;
                let counts = &mut self.extra.get_or_insert_default().counts;
                if counts.len() <= at {
                    counts.resize(at + 1, self.base);
                }
                &mut counts[at]
            }
        };
        *slot = slot.saturating_add(1);
    }

    /// The cursor of `rule`'s own custom schedule, among `rules` rules.
    fn cursor(&mut self, rule: usize, rules: usize) -> &mut Cursor {
        let cursors = &mut self.extra.get_or_insert_default().cursors;
        if cursors.is_empty() {
            cursors.extend((0..rules).map(|_| Cursor::Start));
        }
        &mut cursors[rule]
    }
}

/// Errors of retried attempts, oldest first. The first two are kept
/// inline: most calls that retry at all retry once or twice and then
/// succeed, and they should not pay for a heap allocation to keep errors
/// that are dropped on success. A `Vec` is made only when the call gives
/// up (or retries more than twice).
struct Earlier<E> {
    /// The first two errors, filled in order.
    inline: [Option<E>; 2],
    /// The third error onwards.
    spill: Vec<E>,
}

impl<E> Default for Earlier<E> {
    fn default() -> Self {
        Earlier {
            inline: [None, None],
            spill: Vec::new(),
        }
    }
}

impl<E> Earlier<E> {
    #[inline]
    fn push(&mut self, error: E) {
        match self.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(error),
            None => self.spill.push(error),
        }
    }

    fn into_vec(self) -> Vec<E> {
        let [first, second] = self.inline;
        let Some(first) = first else {
            return Vec::new();
        };
        let mut all = Vec::with_capacity(2 + self.spill.len() + 1);
        all.push(first);
        all.extend(second);
        all.extend(self.spill);
        all
    }
}

/// The view of an error that is itself a [`std::error::Error`].
#[inline]
pub(crate) fn plain<E: StdError + 'static>(error: &E) -> &(dyn StdError + 'static) {
    error
}

/// The view of a boxed error (`Box<dyn Error + Send + Sync>`,
/// `anyhow::Error`): the error inside the box, whose source chain is the
/// rest of the chain.
#[inline]
pub(crate) fn boxed<E: AsRef<dyn StdError + Send + Sync + 'static>>(
    error: &E,
) -> &(dyn StdError + 'static) {
    error.as_ref()
}

/// What the runner should do after a failed attempt.
pub(crate) enum Step<E> {
    /// Wait this long, then hand the error back with
    /// [`Attempts::retrying`] (or [`Attempts::cancelled`]) and run the next
    /// cycle.
    Wait(Duration, E),
    /// Return this error.
    Stop(RetryError<E>),
}

/// The state of one call: everything that decides the next step, shared
/// by the async and blocking runners so that they cannot drift apart.
pub(crate) struct Attempts<'p, E, V> {
    /// The policy being applied.
    policy: &'p Policy,
    /// How rules and events see an error of type `E` ([`plain`] or
    /// [`boxed`]). A type parameter rather than a `fn` pointer: a function
    /// item is zero-sized and its calls are static, so the view costs
    /// nothing per call.
    view: V,
    /// When the call started and its time limit, if it has one.
    deadline: Option<(Instant, Duration)>,
    /// Where we are in the policy's schedule.
    cursor: Cursor,
    /// Errors of failed attempts that were retried, oldest first.
    earlier: Earlier<E>,
    /// Retries granted so far per rule, and the rules' own schedules.
    rules: RuleState,
}

impl<'p, E, V> Attempts<'p, E, V> {
    /// Begin one call of `policy`, seeing errors through `view`: the call
    /// counts towards the shared budget whether or not it ever retries.
    #[inline]
    pub(crate) fn new(policy: &'p Policy, view: V) -> Self {
        if let Some(budget) = &policy.budget {
            budget.deposit();
        }
        Attempts {
            policy,
            view,
            // Read the clock only when a limit needs it.
            deadline: policy.time_limit.map(|limit| (Instant::now(), limit)),
            cursor: Cursor::Start,
            earlier: Earlier::default(),
            rules: RuleState::new(0),
        }
    }

    /// Continue a call whose first `failures` attempts failed in earlier
    /// processes (counted by an attempt store): the policy's schedule and
    /// every rule's count and schedule start past them. Which rule matched
    /// those failures is not known, so each counts against every rule: a
    /// resumed call never retries more than any of its limits in total.
    pub(crate) fn resume(&mut self, failures: u32) {
        self.rules = RuleState::new(failures);
    }
}

impl<E, V> Attempts<'_, E, V>
where
    V: Fn(&E) -> &(dyn StdError + 'static),
{
    /// Whether an event at `level` would reach anyone. Checked before an
    /// event is even built, so that unobserved calls pay one atomic load
    /// per event rather than building and passing it.
    #[inline]
    fn observed(&self, level: Level) -> bool {
        self.policy.hook.is_some() || event::level_enabled(level)
    }

    fn emit(&self, event: &Event<'_>) {
        event::trace(event);
        if let Some(hook) = &self.policy.hook {
            hook(event);
        }
    }

    /// The attempt of `cycle` succeeded.
    #[inline]
    pub(crate) fn succeeded(&self, cycle: u32) {
        if self.observed(Level::DEBUG) {
            self.emit(&Event::Succeeded { cycle });
        }
    }

    /// The next wait for a retry granted by `rule` (`None` when no rule
    /// is in use): from the rule's own schedule if it has one, else from
    /// the policy's; `None` when that schedule is spent.
    #[inline]
    fn next_wait(&mut self, rule: Option<usize>) -> Option<Duration> {
        let own = rule.and_then(|i| Some((i, self.policy.rules[i].own_waits()?)));
        match own {
            None => self.cursor.next(&self.policy.waits, self.rules.base),
            Some((i, Waits::Listed(list))) => list.get(self.rules.count(i) as usize).copied(),
            Some((i, waits)) => {
                let base = self.rules.base;
                self.rules
                    .cursor(i, self.policy.rules.len())
                    .next(waits, base)
            }
        }
    }

    /// Decide what follows the failed attempt of `cycle`.
    #[inline]
    pub(crate) fn failed(&mut self, cycle: u32, error: E) -> Step<E> {
        match self.decide(&error) {
            Ok((wait, rule)) => {
                let rule = rule.map(|i| &self.policy.rules[i]);
                if rule.is_some_and(Rule::warns_on_retry) {
                    event::warn_unclassified(cycle, (self.view)(&error), wait);
                }
                if self.observed(Level::INFO) {
                    self.emit(&Event::Failed {
                        cycle,
                        error: (self.view)(&error),
                        wait,
                        kind: rule.map(Rule::name),
                    });
                }
                Step::Wait(wait, error)
            }
            Err(reason) => Step::Stop(self.give_up(cycle, error, reason)),
        }
    }

    /// The wait for a retry of `error` and the matching rule's index, or
    /// why there is no retry. Checks run from the error itself outwards to
    /// shared state, so that a retry refused for a local reason never
    /// spends the shared budget.
    #[inline]
    fn decide(&mut self, error: &E) -> Result<(Duration, Option<usize>), StopReason> {
        let error = (self.view)(error);
        let policy = self.policy;

        let (decision, rule) = if policy.rules.is_empty() {
            (Decision::Retry, None)
        } else {
            policy
                .rules
                .iter()
                .enumerate()
                .find_map(|(i, rule)| rule.decide(error).map(|d| (d, Some(i))))
                .unwrap_or((Decision::DoNotRetry, None))
        };
        if decision == Decision::DoNotRetry {
            return Err(StopReason::NotRetryable);
        }

        if let Some(i) = rule {
            if let Some(max) = policy.rules[i].retry_limit() {
                if self.rules.count(i) >= max {
                    return Err(StopReason::KindBudgetExhausted);
                }
            }
        }

        // A Retry-After still takes a step of the schedule, so the number
        // of attempts stays bounded by the schedule.
        let scheduled = self.next_wait(rule).ok_or(StopReason::Depleted)?;
        let wait = match decision {
            Decision::RetryAfter(exact) => exact,
            _ => scheduled,
        };

        if let Some((started, limit)) = self.deadline {
            let ends = Instant::now().checked_add(wait);
            if ends.is_none_or(|ends| ends.duration_since(started) > limit) {
                return Err(StopReason::TimeLimit);
            }
        }
        if policy
            .cancel
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
        {
            return Err(StopReason::Cancelled);
        }
        if let Some(budget) = &policy.budget {
            if !budget.try_withdraw() {
                return Err(StopReason::BudgetExhausted);
            }
        }

        if let Some(i) = rule {
            self.rules.increment(i);
        }
        Ok((wait, rule))
    }

    fn give_up(&mut self, cycle: u32, error: E, reason: StopReason) -> RetryError<E> {
        if self.observed(Level::DEBUG) {
            self.emit(&Event::GaveUp {
                cycle,
                error: (self.view)(&error),
                reason,
            });
        }
        RetryError::new(error, std::mem::take(&mut self.earlier).into_vec(), reason)
    }

    /// The wait after a failed attempt is over: file its error.
    #[inline]
    pub(crate) fn retrying(&mut self, error: E) {
        self.earlier.push(error);
    }

    /// The wait after the failed attempt of `cycle` was cancelled.
    pub(crate) fn cancelled(mut self, cycle: u32, error: E) -> RetryError<E> {
        self.give_up(cycle, error, StopReason::Cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_errors_come_back_oldest_first_across_the_inline_slots() {
        for n in 0..6 {
            let mut earlier = Earlier::default();
            for error in 0..n {
                earlier.push(error);
            }
            assert_eq!(
                earlier.into_vec(),
                (0..n).collect::<Vec<u32>>(),
                "{n} errors"
            );
        }
    }
}
