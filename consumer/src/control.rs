//! [`Control`]: how a host tells its consumers to stop, to pause and to go
//! on, and how they wait for it.

use std::sync::Arc;

use tokio::sync::watch;

/// What a consumer should be doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Consume.
    Running,
    /// Finish the message in hand and wait.
    Paused,
    /// Finish the message in hand, record the position and return.
    Stopping,
}

/// Shared between a host and its consumers: cheap to clone, every clone
/// sees every change. Once stopping, it stays stopping.
#[derive(Debug, Clone)]
pub struct Control {
    state: Arc<watch::Sender<State>>,
}

impl Default for Control {
    fn default() -> Self {
        Self::new()
    }
}

impl Control {
    /// Running.
    pub fn new() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(State::Running)),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        *self.state.borrow()
    }

    /// Asks every consumer to stop.
    pub fn stop(&self) {
        self.state.send_replace(State::Stopping);
    }

    /// Asks every consumer to pause after the message in hand (unless
    /// stopping).
    pub fn pause(&self) {
        self.state.send_if_modified(|state| {
            let pause = *state == State::Running;
            if pause {
                *state = State::Paused;
            }
            pause
        });
    }

    /// Lets paused consumers go on (unless stopping).
    pub fn resume(&self) {
        self.state.send_if_modified(|state| {
            let resume = *state == State::Paused;
            if resume {
                *state = State::Running;
            }
            resume
        });
    }

    /// True once stopping.
    pub fn is_stopping(&self) -> bool {
        self.state() == State::Stopping
    }

    /// Waits while paused; true when running, false when stopping. Says
    /// (at info, in the caller's span) when it starts waiting, "consumer
    /// paused": the message in hand is finished and no other starts; and
    /// "consumer resumed" when it goes on.
    pub async fn proceed(&self) -> bool {
        // Asked before every message: answer the common case without a
        // receiver.
        match self.state() {
            State::Running => return true,
            State::Stopping => return false,
            State::Paused => {}
        }
        let mut receiver = self.state.subscribe();
        tracing::info!("consumer paused");
        // The sender lives in `self`: it cannot be gone.
        let running = receiver
            .wait_for(|state| *state != State::Paused)
            .await
            .is_ok_and(|state| *state == State::Running);
        if running {
            tracing::info!("consumer resumed");
        }
        running
    }

    /// Completes once stopping.
    pub async fn stopped(&self) {
        let mut receiver = self.state.subscribe();
        let _ = receiver.wait_for(|state| *state == State::Stopping).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pausing_waits_until_resumed_and_stopping_is_final() {
        let control = Control::new();
        assert!(control.proceed().await);
        control.pause();
        let waiting = tokio::spawn({
            let control = control.clone();
            async move { control.proceed().await }
        });
        // Paused time: the clock moves on only once every task waits, so
        // this returns after the waiting task has run as far as it can.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!waiting.is_finished(), "paused");
        control.resume();
        assert!(waiting.await.unwrap(), "resumed: running");

        control.pause();
        control.stop();
        control.resume();
        assert_eq!(control.state(), State::Stopping);
        assert!(!control.proceed().await);
        tokio::time::timeout(Duration::from_secs(1), control.stopped())
            .await
            .expect("stopped at once");
    }
}
