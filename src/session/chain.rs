//! Saves of one session within this process, queued and committed in groups.
//!
//! Without this, concurrent requests on one session (a single-page app firing parallel
//! requests with one cookie) all load the same version, and every save after the first loses
//! its compare-and-swap and must reload: on a store behind I/O each loser pays round trips
//! and the losers collide again. Here the saves of a key take turns: one save at a time is
//! the *leader* and writes; the saves that arrive while it writes queue up, and the first of
//! them leads the next write for all of them at once (group commit: each member's changes
//! applied in turn on top of the last write, one store round trip for the group, every
//! member answered with its outcome). Only a save from another process can still make a
//! compare-and-swap fail. The store's compare-and-swap stays the guarantee; this only keeps
//! this process's saves from racing each other.
//!
//! A session joins its key's link when it reads its record, and holds it until it is
//! dropped, so the last write stays known as long as a request that loaded an older version
//! may still save. Stores that answer at once are not chained: their saves take microseconds
//! and a lost race is retried at once.

use std::collections::HashMap;
use std::mem;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::oneshot;

use super::changes::Changes;
use crate::store::{Data, Version};
use crate::{Error, SessionConfig, SessionKey};

/// What a save of a key in this process wrote.
#[derive(Clone)]
pub(super) struct Written {
    /// The key the cookie carries from now on.
    pub(super) key: SessionKey,
    pub(super) version: Version,
    pub(super) data: Data,
}

/// One save of a group: the changes of its session since its last save, read from `mine`,
/// and the version its data was loaded at.
pub(super) struct Member {
    pub(super) changes: Changes,
    pub(super) mine: Data,
    pub(super) version: Version,
}

/// What a save of a group ends with.
pub(super) type Outcome = Result<Written, Error>;

/// A save that waits for the write under way, with the way to answer it.
struct Waiting {
    member: Member,
    reply: oneshot::Sender<Reply>,
}

enum Reply {
    /// Written (or not) by a group this save rode in.
    Done(Outcome),
    /// The previous leader is done: this save leads the next group, with these riders.
    Lead(Member, Vec<Waiting>),
}

#[derive(Default)]
struct LinkState {
    /// The last write of the key in this process, if its outcome is known.
    last: Option<Written>,
    /// A leader is writing; new saves queue.
    writing: bool,
    queue: Vec<Waiting>,
}

#[derive(Default)]
struct Link(Mutex<LinkState>);

impl Link {
    fn state(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The keys in use by this process's requests, each with the last write of it.
#[derive(Default)]
pub(crate) struct SaveChains {
    links: Mutex<HashMap<SessionKey, Arc<Link>>>,
}

/// A session's place in its key's chain, held from its read to its end.
pub(super) struct LinkHandle {
    chains: Arc<SaveChains>,
    key: SessionKey,
    link: Arc<Link>,
}

/// A save's turn: it leads a group, or a group it rode in has answered it.
pub(super) enum Turn<'a> {
    Lead(Group<'a>),
    Done(Outcome),
}

/// The saves one leader writes together: its own first, then the riders in the order they
/// queued. Dropped before [`finish`](Self::finish) (the leader's request was cancelled), it
/// forgets the last write, whose outcome is unknown, and hands the riders to a new leader.
pub(super) struct Group<'a> {
    link: &'a Link,
    last: Option<Written>,
    members: Vec<Member>,
    replies: Vec<oneshot::Sender<Reply>>,
}

/// The chains of the stores with an identity ([`SessionStore::identity`]), per store and
/// configuration, while sessions use them.
///
/// [`SessionStore::identity`]: crate::store::SessionStore::identity
static SHARED: Mutex<Vec<(usize, usize, Weak<SaveChains>)>> = Mutex::new(Vec::new());

impl SaveChains {
    /// The chains of the sessions of the store `identity` under `config` (the same for every
    /// handle on that store), or new ones for a store without an identity.
    pub(crate) fn of(identity: Option<usize>, config: &Arc<SessionConfig>) -> Arc<Self> {
        let Some(store) = identity else {
            return Arc::default();
        };
        let config = Arc::as_ptr(config) as usize;
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        // A dead entry's store and configuration may be gone and their addresses reused;
        // a live one keeps both alive, since its sessions hold them.
        shared.retain(|(_, _, chains)| chains.strong_count() > 0);
        if let Some(chains) = shared
            .iter()
            .find(|(s, c, _)| (*s, *c) == (store, config))
            .and_then(|(_, _, chains)| chains.upgrade())
        {
            return chains;
        }
        let chains = Arc::new(Self::default());
        shared.push((store, config, Arc::downgrade(&chains)));
        chains
    }

    fn links(&self) -> std::sync::MutexGuard<'_, HashMap<SessionKey, Arc<Link>>> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins the chain of `key`.
    pub(super) fn join(self: &Arc<Self>, key: &SessionKey) -> LinkHandle {
        let link = Arc::clone(self.links().entry(key.clone()).or_default());
        LinkHandle {
            chains: Arc::clone(self),
            key: key.clone(),
            link,
        }
    }
}

impl LinkHandle {
    /// Whether this is the chain of `key`.
    pub(super) fn is_for(&self, key: &SessionKey) -> bool {
        self.key == *key
    }

    /// Queues a save of the key: it leads a group at once when no write is under way, and
    /// otherwise waits to be answered by a group, or to lead the next one.
    pub(super) async fn enter(&self, member: Member) -> Turn<'_> {
        let mut waiting = {
            let mut state = self.link.state();
            if !state.writing {
                state.writing = true;
                let last = state.last.clone();
                drop(state);
                return Turn::Lead(Group::new(&self.link, last, member, Vec::new()));
            }
            let (reply, answer) = oneshot::channel();
            state.queue.push(Waiting { member, reply });
            Answer {
                link: &self.link,
                answer,
            }
        };
        match (&mut waiting.answer).await {
            Ok(Reply::Done(outcome)) => Turn::Done(outcome),
            Ok(Reply::Lead(member, riders)) => {
                let last = self.link.state().last.clone();
                Turn::Lead(Group::new(&self.link, last, member, riders))
            }
            // Every sender is answered or handed on before it drops (`Group::drop`).
            Err(_) => Turn::Done(Err(Error::store("a grouped session save was abandoned"))),
        }
    }
}

/// What a queued save waits for. Dropped unanswered (its request was cancelled), it refuses
/// any answer from then on, and hands on a turn to lead that reached it too late.
struct Answer<'a> {
    link: &'a Link,
    answer: oneshot::Receiver<Reply>,
}

impl Drop for Answer<'_> {
    fn drop(&mut self) {
        self.answer.close();
        if let Ok(Reply::Lead(_, riders)) = self.answer.try_recv() {
            hand_on(&mut self.link.state(), riders);
        }
    }
}

impl Drop for LinkHandle {
    fn drop(&mut self) {
        let mut links = self.chains.links();
        // Held by the map and this handle alone: no request of this process uses the key
        // any more, so the entry goes.
        if links
            .get(&self.key)
            .is_some_and(|link| Arc::strong_count(link) == 2)
        {
            links.remove(&self.key);
        }
    }
}

impl<'a> Group<'a> {
    fn new(link: &'a Link, last: Option<Written>, own: Member, riders: Vec<Waiting>) -> Self {
        let mut members = Vec::with_capacity(riders.len() + 1);
        members.push(own);
        let mut replies = Vec::with_capacity(riders.len());
        // A rider whose request is gone is left out: nothing waits for its save.
        for rider in riders.into_iter().filter(|r| !r.reply.is_closed()) {
            members.push(rider.member);
            replies.push(rider.reply);
        }
        Self {
            link,
            last,
            members,
            replies,
        }
    }

    /// The last write of the key in this process, which the group builds on.
    pub(super) fn last(&self) -> Option<&Written> {
        self.last.as_ref()
    }

    /// The saves of the group, the leader's first.
    pub(super) fn members(&self) -> &[Member] {
        &self.members
    }

    /// Answers every rider and hands the turn on. `written` is the group's write (`None`
    /// when no member could be written and the store was not called); `rejected[i]`, when
    /// set, is member `i`'s own failure (its changes were left out). Returns the leader's
    /// outcome.
    pub(super) fn finish(
        mut self,
        written: Option<Outcome>,
        mut rejected: Vec<Option<Error>>,
    ) -> Outcome {
        rejected.resize_with(self.members.len(), || None);
        // Answered here: nothing is left for `drop` to hand on.
        self.members.clear();
        let mut state = self.link.state();
        match &written {
            Some(Ok(write)) => state.last = Some(write.clone()),
            // Gone, or an outcome unknown: the next save must not build on the last write.
            Some(Err(_)) => state.last = None,
            None => {}
        }
        let outcome_of = |rejected: Option<Error>| match (rejected, &written) {
            (Some(error), _) => Err(error),
            (None, Some(Ok(write))) => Ok(write.clone()),
            (None, Some(Err(error))) => Err(error.duplicate()),
            (None, None) => Err(Error::store("a grouped session save wrote nothing")),
        };
        let mut rejected = rejected.into_iter();
        let own = outcome_of(rejected.next().flatten());
        for (reply, rejected) in mem::take(&mut self.replies).into_iter().zip(rejected) {
            // A rider whose request was cancelled meanwhile no longer listens.
            let _ = reply.send(Reply::Done(outcome_of(rejected)));
        }
        hand_on(&mut state, Vec::new());
        own
    }
}

impl Drop for Group<'_> {
    fn drop(&mut self) {
        if self.replies.is_empty() && self.members.is_empty() {
            return;
        }
        // Cancelled mid-write: whether the write landed is unknown.
        let mut state = self.link.state();
        state.last = None;
        let riders = mem::take(&mut self.replies)
            .into_iter()
            .zip(self.members.drain(..).skip(1))
            .map(|(reply, member)| Waiting { member, reply })
            .collect();
        hand_on(&mut state, riders);
    }
}

/// Ends a leader's turn: the first save still waiting (the riders of a cancelled group,
/// then the queue) leads the next group with all the others; with none, the key is free.
fn hand_on(state: &mut LinkState, mut waiting: Vec<Waiting>) {
    waiting.append(&mut state.queue);
    let mut waiting = waiting.into_iter();
    while let Some(next) = waiting.next() {
        match next.reply.send(Reply::Lead(next.member, waiting.collect())) {
            Ok(()) => return,
            // That request is gone: the next one leads.
            Err(Reply::Lead(_, rest)) => waiting = rest.into_iter(),
            Err(Reply::Done(_)) => break,
        }
    }
    state.writing = false;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    fn member(n: u64) -> Member {
        Member {
            changes: Changes::default(),
            mine: Arc::default(),
            version: Version::from_counter(n),
        }
    }

    fn written(n: u64, key: &SessionKey) -> Written {
        Written {
            key: key.clone(),
            version: Version::from_counter(n),
            data: Arc::default(),
        }
    }

    fn poll<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[tokio::test]
    async fn saves_arriving_during_a_write_are_written_together_by_the_first_of_them() {
        let chains = Arc::new(SaveChains::default());
        let key = SessionKey::generate().unwrap();
        let (a, b, c) = (chains.join(&key), chains.join(&key), chains.join(&key));
        {
            let Turn::Lead(first) = a.enter(member(0)).await else {
                panic!("the first save leads")
            };
            assert!(first.last().is_none());
            let second = b.enter(member(1));
            let third = c.enter(member(2));
            let (mut second, mut third) = (pin!(second), pin!(third));
            assert!(poll(second.as_mut()).is_pending());
            assert!(poll(third.as_mut()).is_pending());
            let own = first.finish(Some(Ok(written(7, &key))), Vec::new());
            assert_eq!(own.unwrap().version, Version::from_counter(7));
            // The second save leads the next group, with the third riding in it.
            let Poll::Ready(Turn::Lead(group)) = poll(second.as_mut()) else {
                panic!("the first waiting save leads next")
            };
            assert_eq!(group.members().len(), 2);
            assert_eq!(
                group.last().map(|w| w.version.clone()),
                Some(Version::from_counter(7))
            );
            assert!(poll(third.as_mut()).is_pending());
            let own = group.finish(
                Some(Ok(written(8, &key))),
                vec![None, Some(Error::SessionTooLarge { limit: 1 })],
            );
            assert_eq!(own.unwrap().version, Version::from_counter(8));
            match poll(third.as_mut()) {
                Poll::Ready(Turn::Done(Err(Error::SessionTooLarge { limit: 1 }))) => {}
                _ => panic!("the rider gets its own rejection"),
            }
        }
        drop((a, b));
        assert_eq!(chains.links().len(), 1);
        drop(c);
        assert!(chains.links().is_empty());
    }

    #[tokio::test]
    async fn a_cancelled_leader_hands_its_riders_on_and_forgets_the_last_write() {
        let chains = Arc::new(SaveChains::default());
        let key = SessionKey::generate().unwrap();
        let (a, b) = (chains.join(&key), chains.join(&key));
        let Turn::Lead(first) = a.enter(member(0)).await else {
            panic!("the first save leads")
        };
        assert!(first.finish(Some(Ok(written(3, &key))), Vec::new()).is_ok());
        let Turn::Lead(cancelled) = a.enter(member(3)).await else {
            panic!("no write under way")
        };
        let rider = b.enter(member(3));
        let mut rider = pin!(rider);
        assert!(poll(rider.as_mut()).is_pending());
        drop(cancelled);
        let Poll::Ready(Turn::Lead(group)) = poll(rider.as_mut()) else {
            panic!("the waiting save leads after the cancelled one")
        };
        assert!(group.last().is_none());
        assert!(
            group.finish(None, Vec::new()).is_err(),
            "nothing was written"
        );
        assert!(!a.link.state().writing);
    }

    #[tokio::test]
    async fn a_save_cancelled_as_its_turn_to_lead_arrives_hands_it_on() {
        let chains = Arc::new(SaveChains::default());
        let key = SessionKey::generate().unwrap();
        let (a, b, c) = (chains.join(&key), chains.join(&key), chains.join(&key));
        let Turn::Lead(first) = a.enter(member(0)).await else {
            panic!("the first save leads")
        };
        let second = Box::pin(b.enter(member(1)));
        let third = c.enter(member(2));
        let (mut second, mut third) = (second, pin!(third));
        assert!(poll(second.as_mut()).is_pending());
        assert!(poll(third.as_mut()).is_pending());
        assert!(first.finish(Some(Ok(written(1, &key))), Vec::new()).is_ok());
        // The second save's turn was sent; its request goes away before it reads it.
        drop(second);
        let Poll::Ready(Turn::Lead(group)) = poll(third.as_mut()) else {
            panic!("the turn reaches the third save")
        };
        assert_eq!(group.members().len(), 1);
        assert!(group.finish(Some(Ok(written(2, &key))), Vec::new()).is_ok());
        assert!(!a.link.state().writing);
    }
}
