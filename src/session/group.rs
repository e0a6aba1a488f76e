//! The update of a session on a store behind I/O: written in a group with this process's
//! other saves of the key that wait meanwhile (the mechanism is in `chain.rs`).

use std::sync::Arc;

use time::OffsetDateTime;

use super::Session;
use super::chain::{Group, Member, Outcome, Turn, Written};
use super::size::check_size;
use crate::store::{Data, LoadedRecord, SaveOutcome, Version};
use crate::{Error, SessionKey};

impl Session {
    /// Updates the record `key` (loaded at `version`) with this session's changes: leads a
    /// group of saves of the key, or rides in one.
    pub(super) async fn update_in_group(
        &self,
        key: SessionKey,
        version: Version,
        now: OffsetDateTime,
    ) -> Result<SessionKey, Error> {
        let link = self.link_for(&key);
        // The data and the changes read under one lock, so that they belong together even
        // when another task holding this session changed it since the plan.
        let (member, generation) = {
            let mut state = self.state();
            let generation = state.changes.generation;
            let member = Member {
                mine: Arc::clone(state.data()),
                changes: state.changes.clone(),
                version,
            };
            (member, generation)
        };
        let outcome = match link.enter(member).await {
            Turn::Done(outcome) => outcome,
            Turn::Lead(group) => self.write_group(&key, group, now).await,
        };
        let written = outcome?;
        let key = self.saved(
            written.key,
            written.version,
            generation,
            Some(&written.data),
            false,
        );
        // Kept until the session ends: a later save of this request builds on this write.
        self.state().link = Some(link);
        Ok(key)
    }

    /// Writes a group's changes as one compare-and-swap, on top of the last write of the key
    /// in this process, and answers every member.
    async fn write_group(
        &self,
        key: &SessionKey,
        group: Group<'_>,
        now: OffsetDateTime,
    ) -> Outcome {
        let max_size = self.config().max_session_size;
        let base = group.last().map(|w| (&w.data, &w.version));
        let (merged, mut rejected) = fold(base, group.members(), max_size);
        let Some((data, version)) = merged else {
            // No member fits: nothing to write, each has its own error.
            return group.finish(None, rejected);
        };
        let store = &self.shared().store;
        let written = match self.record(Arc::clone(&data), now) {
            Err(error) => Err(error),
            Ok(record) => match store.save(key, &record, &version, self.limit()).await {
                Ok(SaveOutcome::Saved { key, version }) => Ok(Written { key, version, data }),
                Ok(SaveOutcome::Gone) => Err(Error::SessionInterrupted),
                // Another process wrote: every member's changes go on top of its write.
                Ok(SaveOutcome::Conflict) => {
                    let members = group.members();
                    let rebuild = |fresh: &LoadedRecord| {
                        let base = Some((&fresh.data, &fresh.version));
                        let (merged, again) = fold(base, members, max_size);
                        rejected = again;
                        merged.map(|(data, _)| data).ok_or(Error::SessionTooLarge {
                            limit: max_size.unwrap_or_default(),
                        })
                    };
                    Box::pin(self.save_after_conflicts(key.clone(), rebuild))
                        .await
                        .map(|(key, version, data)| Written { key, version, data })
                }
                Err(error) => Err(error),
            },
        };
        group.finish(Some(written), rejected)
    }
}

/// The data a group writes and the version it expects, and each member left out: each
/// member's changes applied in turn on top of `base` (the last write of the key, or the
/// record as another process left it), or, without one, on top of the first member's data
/// as loaded. A member whose changes would take the session beyond `max_size` is left out,
/// with its error at its index; the data is `None` when every member is.
fn fold(
    base: Option<(&Data, &Version)>,
    members: &[Member],
    max_size: Option<usize>,
) -> (Option<(Data, Version)>, Vec<Option<Error>>) {
    let mut acc: Option<(Data, Version)> = None;
    let mut rejected = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let candidate = match (&acc, base) {
            (Some((data, _)), _) => member.changes.apply(data, &member.mine),
            // Loaded at the base's version: its data is the base with its own changes.
            (None, Some((_, version))) if *version == member.version => Arc::clone(&member.mine),
            (None, Some((data, _))) => member.changes.apply(data, &member.mine),
            (None, None) => Arc::clone(&member.mine),
        };
        if let Some(limit) = max_size
            && let Err(error) = check_size(&candidate, limit)
        {
            rejected.resize_with(i + 1, || None);
            rejected[i] = Some(error);
            continue;
        }
        let version = match (acc.take(), base) {
            (Some((_, version)), _) => version,
            (None, Some((_, version))) => version.clone(),
            (None, None) => member.version.clone(),
        };
        acc = Some((candidate, version));
    }
    (acc, rejected)
}
