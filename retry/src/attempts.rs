//! The per-call engine: the state of one call of a [`Retry`] and the
//! decision after each failed attempt (retry after which wait, or stop and
//! why). The async runner (`run`) and the blocking runner (`blocking`)
//! both drive it, so they cannot decide differently; only their waiting
//! differs.
//!
//! The engine keeps the caller's error type `E` and sees each error
//! through a *view* ([`View`]), from `&E` to the `dyn Error` that rules
//! match and events carry: [`Plain`] for an `E` that is itself an error,
//! [`Boxed`] for a box around one. That is how [`Retry::run`] and
//! [`Retry::run_boxed`] (and the blocking pair) share one engine.
//!
//! [`Retry`]: crate::Retry
//! [`Retry::run`]: crate::Retry::run
//! [`Retry::run_boxed`]: crate::Retry::run_boxed

use std::any::TypeId;
use std::error::Error as StdError;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Level;

use crate::classify::{Rule, Verdict};
use crate::error::{RetryError, StopReason};
use crate::event::{self, Event};
use crate::policy::{Policy, Waits};

/// Rules whose retry counts are kept inline: policies have a few rules,
/// and counting per rule must not cost a call an allocation.
const INLINE_RULES: usize = 4;

/// A custom schedule's iterator for one call.
type Cursor = Box<dyn Iterator<Item = Duration> + Send>;

/// Where one call is in its schedules, and the retries granted by each
/// rule. Listed schedules (the common case) are walked by index, so a call
/// that uses only those keeps a few integers here and no pointer.
struct Progress {
    /// The index of the policy's next listed wait.
    next: u32,
    /// The first rules' counts (same index as the policy's rules).
    counts: [u32; INLINE_RULES],
    /// What every count and index starts at: the failed attempts of this
    /// call made by earlier processes (see [`Attempts::resume`]).
    base: u32,
    /// The policy's custom schedule for this call, made at the first wait
    /// taken from it.
    cursor: Option<Cursor>,
    /// What only some calls need, made on first use.
    rare: Option<Box<Rare>>,
}

/// The part of [`Progress`] made on first use.
#[derive(Default)]
struct Rare {
    /// The counts of rules past the inline ones.
    counts: Vec<u32>,
    /// Where each rule's own custom schedule is (same index as the
    /// policy's rules). Listed rule schedules need no cursor: the rule's
    /// count is the index.
    cursors: Vec<Option<Cursor>>,
}

/// A fresh iterator of `factory`'s schedule, past its first `skip` waits
/// (taken by a call resumed from an attempt store).
fn start_cursor(waits: &Waits, skip: u32) -> Option<Cursor> {
    let Waits::Custom(factory) = waits else {
        return None;
    };
    let mut iter = factory();
    if skip > 0 {
        iter.nth(skip as usize - 1);
    }
    Some(iter)
}

impl Progress {
    #[inline]
    fn new(base: u32) -> Self {
        Progress {
            next: base,
            counts: [base; INLINE_RULES],
            base,
            cursor: None,
            rare: None,
        }
    }

    /// The next wait of the policy's schedule, `waits`, if any is left.
    #[inline]
    fn next_wait(&mut self, waits: &Waits) -> Option<Duration> {
        match waits {
            Waits::Listed(list) => {
                let wait = list.get(self.next as usize).copied()?;
                self.next += 1;
                Some(wait)
            }
            Waits::Custom(_) => self.next_custom(waits),
        }
    }

    /// [`next_wait`](Progress::next_wait) from a custom schedule. Out of
    /// line: it calls through the iterator's vtable anyway.
    #[inline(never)]
    fn next_custom(&mut self, waits: &Waits) -> Option<Duration> {
        if self.cursor.is_none() {
            self.cursor = start_cursor(waits, self.base);
        }
        self.cursor.as_mut()?.next()
    }

    /// The retries granted so far by rule `rule`.
    #[inline]
    fn count(&self, rule: usize) -> u32 {
        match self.counts.get(rule) {
            Some(&count) => count,
            None => self.count_rare(rule),
        }
    }

    #[inline(never)]
    fn count_rare(&self, rule: usize) -> u32 {
        self.rare
            .as_ref()
            .and_then(|rare| rare.counts.get(rule - INLINE_RULES).copied())
            .unwrap_or(self.base)
    }

    /// Count one more retry granted by rule `rule`.
    #[inline]
    fn increment(&mut self, rule: usize) {
        match self.counts.get_mut(rule) {
            Some(count) => *count = count.saturating_add(1),
            None => self.increment_rare(rule),
        }
    }

    #[inline(never)]
    fn increment_rare(&mut self, rule: usize) {
        let at = rule - INLINE_RULES;
        let counts = &mut self.rare.get_or_insert_default().counts;
        if counts.len() <= at {
            counts.resize(at + 1, self.base);
        }
        counts[at] = counts[at].saturating_add(1);
    }

    /// The next wait of `rule`'s own custom schedule, `waits`, among
    /// `rules` rules. Out of line, as
    /// [`next_custom`](Progress::next_custom).
    #[inline(never)]
    fn next_rule_custom(&mut self, rule: usize, rules: usize, waits: &Waits) -> Option<Duration> {
        let base = self.base;
        let cursors = &mut self.rare.get_or_insert_default().cursors;
        if cursors.is_empty() {
            cursors.resize_with(rules, || None);
        }
        let cursor = &mut cursors[rule];
        if cursor.is_none() {
            *cursor = start_cursor(waits, base);
        }
        cursor.as_mut()?.next()
    }
}

impl Drop for Progress {
    /// Most calls have neither pointer: check both inline, free out of
    /// line.
    #[inline]
    fn drop(&mut self) {
        if self.cursor.is_some() || self.rare.is_some() {
            free(self.cursor.take(), self.rare.take());
        }
    }
}

/// Free what a [`Progress`] made on first use.
#[cold]
#[inline(never)]
fn free(cursor: Option<Cursor>, rare: Option<Box<Rare>>) {
    drop((cursor, rare));
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

/// How the engine sees an error of the caller's type `E`: as the
/// `dyn Error` that rules match and events carry, and, where `E` alone
/// tells, the type of that error.
pub(crate) trait View<E>: Copy {
    /// The error as rules and events see it: the top of its chain.
    fn view(self, error: &E) -> &(dyn StdError + 'static);

    /// The type of the error [`view`](View::view) gives, if `E` alone
    /// tells it: then a rule matching by type compares type ids, with no
    /// call through the error's vtable.
    fn top_type(self) -> Option<TypeId>;
}

/// The view of an error that is itself a [`std::error::Error`]: the
/// error, whose type is `E`.
#[derive(Clone, Copy)]
pub(crate) struct Plain;

impl<E: StdError + 'static> View<E> for Plain {
    #[inline]
    fn view(self, error: &E) -> &(dyn StdError + 'static) {
        error
    }

    #[inline]
    fn top_type(self) -> Option<TypeId> {
        Some(TypeId::of::<E>())
    }
}

/// The view of a boxed error (`Box<dyn Error + Send + Sync>`,
/// `anyhow::Error`): the error inside the box, whose source chain is the
/// rest of the chain. Its type is known only to the box.
#[derive(Clone, Copy)]
pub(crate) struct Boxed;

impl<E: AsRef<dyn StdError + Send + Sync + 'static>> View<E> for Boxed {
    #[inline]
    fn view(self, error: &E) -> &(dyn StdError + 'static) {
        error.as_ref()
    }

    #[inline]
    fn top_type(self) -> Option<TypeId> {
        None
    }
}

/// The state of one call: everything that decides the next step, shared
/// by the async and blocking runners so that they cannot drift apart.
///
/// A runner shows each failed attempt's error to
/// [`failed`](Attempts::failed) and keeps it: on a retry it files it with
/// [`retrying`](Attempts::retrying) after the wait, otherwise it turns it
/// into the call's error with [`give_up`](Attempts::give_up). The error is
/// not moved through the decision, whatever its size.
pub(crate) struct Attempts<'p, E, V> {
    /// The policy being applied.
    policy: &'p Policy,
    /// How rules and events see an error of type `E` ([`Plain`] or
    /// [`Boxed`]). Zero-sized, and its calls are static, so the view costs
    /// nothing per call.
    view: V,
    /// When the call started, if the policy has a time limit.
    started: Option<Instant>,
    /// Where we are in the schedules, and the retries granted per rule.
    progress: Progress,
    /// Errors of failed attempts that were retried, oldest first.
    earlier: Earlier<E>,
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
            started: policy.time_limit.map(|_| Instant::now()),
            progress: Progress::new(0),
            earlier: Earlier::default(),
        }
    }

    /// Continue a call whose first `failures` attempts failed in earlier
    /// processes (counted by an attempt store): the policy's schedule and
    /// every rule's count and schedule start past them. Which rule matched
    /// those failures is not known, so each counts against every rule: a
    /// resumed call never retries more than any of its limits in total.
    pub(crate) fn resume(&mut self, failures: u32) {
        self.progress = Progress::new(failures);
    }
}

impl<'p, E, V> Attempts<'p, E, V>
where
    V: View<E>,
{
    /// Whether an event at `level` would reach anyone. Checked before an
    /// event is even built, so that unobserved calls pay one atomic load
    /// per event rather than building and passing it.
    #[inline]
    fn observed(&self, level: Level) -> bool {
        self.policy.hook.is_some() || event::level_enabled(level)
    }

    /// Out of line and cold: an event is built only when someone listens,
    /// and the paths of calls nobody observes stay short.
    #[cold]
    #[inline(never)]
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

    /// The attempt of `cycle` failed with `error`: the wait before the
    /// next attempt, or why there is none (then hand the error to
    /// [`give_up`](Attempts::give_up)).
    #[inline]
    pub(crate) fn failed(&mut self, cycle: u32, error: &E) -> Result<Duration, StopReason> {
        let seen = self.view.view(error);
        let (wait, rule) = self.decide(seen)?;
        if let Some(rule) = rule {
            if rule.warns_on_retry() {
                event::warn_unclassified(cycle, seen, wait);
            }
        }
        if self.observed(Level::INFO) {
            self.emit(&Event::Failed {
                cycle,
                error: seen,
                wait,
                kind: rule.map(Rule::name),
            });
        }
        Ok(wait)
    }

    /// The wait for a retry of `error` and the rule that matched it, or
    /// why there is no retry. Checks run from the error itself outwards to
    /// shared state, so that a retry refused for a local reason never
    /// spends the shared budget.
    #[inline]
    fn decide(
        &mut self,
        error: &(dyn StdError + 'static),
    ) -> Result<(Duration, Option<&'p Rule>), StopReason> {
        let policy = self.policy;
        let (wait, matched) = if policy.rules.is_empty() {
            let wait = self.progress.next_wait(&policy.waits);
            (wait.ok_or(StopReason::Depleted)?, None)
        } else {
            // The first rule that matches decides.
            let top = self.view.top_type();
            let mut found = None;
            for (i, rule) in policy.rules.iter().enumerate() {
                let verdict = rule.decide_known(error, top);
                if verdict != Verdict::Pass {
                    found = Some((i, rule, verdict));
                    break;
                }
            }
            let Some((i, rule, verdict)) = found else {
                return Err(StopReason::NotRetryable);
            };
            let exact = match verdict {
                Verdict::Retry => None,
                Verdict::RetryAfter(exact) => Some(exact),
                Verdict::Pass | Verdict::Never => return Err(StopReason::NotRetryable),
            };
            let count = self.progress.count(i);
            if rule.retry_limit().is_some_and(|max| count >= max) {
                return Err(StopReason::KindBudgetExhausted);
            }
            // The rule's own schedule if it has one, else the policy's. A
            // Retry-After still takes a step of it, so the number of
            // attempts stays bounded by the schedule.
            let scheduled = match rule.own_waits() {
                None => self.progress.next_wait(&policy.waits),
                // The rule's count is the index into its own list.
                Some(Waits::Listed(list)) => list.get(count as usize).copied(),
                Some(waits) => self.progress.next_rule_custom(i, policy.rules.len(), waits),
            };
            let scheduled = scheduled.ok_or(StopReason::Depleted)?;
            // Counted now, before the bounds below are checked: a retry
            // they refuse ends the call, and the count is not read again.
            self.progress.increment(i);
            (exact.unwrap_or(scheduled), Some(rule))
        };

        if policy.time_limit.is_some() || policy.cancel.is_some() || policy.budget.is_some() {
            self.check_bounds(wait)?;
        }

        Ok((wait, matched))
    }

    /// Whether a retry after `wait` stays within the call's time limit, is
    /// not cancelled, and gets a token from the shared budget (taken last,
    /// so that it is spent only on a retry that is made). Out of line: most
    /// policies have none of these, and the retry path of those stays
    /// short.
    #[cold]
    #[inline(never)]
    fn check_bounds(&self, wait: Duration) -> Result<(), StopReason> {
        let policy = self.policy;
        if let (Some(started), Some(limit)) = (self.started, policy.time_limit) {
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
        Ok(())
    }

    /// The call ends with the failed attempt of `cycle`, its `error`, for
    /// `reason`. Out of line: the call is over, and the loops that retry
    /// stay small.
    #[inline(never)]
    pub(crate) fn give_up(&mut self, cycle: u32, error: E, reason: StopReason) -> RetryError<E> {
        if self.observed(Level::DEBUG) {
            self.emit(&Event::GaveUp {
                cycle,
                error: self.view.view(&error),
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
