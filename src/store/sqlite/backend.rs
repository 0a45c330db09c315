//! The face's operations on SQLite: each is the method of the same name.

use std::collections::HashMap;

use super::Sqlite;
use crate::domain::identity::Identity;
use crate::domain::ids::{FeedId, StoryId};
use crate::domain::model::Item;
use crate::domain::render::FailingFeed;
use crate::domain::wire::Fingerprint;
use crate::store::*;
use crate::store::{processes, robots};

impl Backend for Sqlite {
    fn pause_channel(
        &mut self,
        channel: &str,
        error: &str,
        now: i64,
        jitter: f64,
        not_before: i64,
    ) -> Result<ChannelFault> {
        Ok(Sqlite::pause_channel(
            self, channel, error, now, jitter, not_before,
        )?)
    }

    fn paused_channels(&self, now: i64) -> Result<Vec<(String, ChannelFault)>> {
        Ok(Sqlite::paused_channels(self, now)?)
    }

    fn sync_feeds(&mut self, feeds: &[(String, String)]) -> Result<Vec<FeedState>> {
        Ok(Sqlite::sync_feeds(self, feeds)?)
    }

    fn feed_states(&self) -> Result<Vec<FeedState>> {
        Ok(Sqlite::feed_states(self)?)
    }

    fn claim_feeds(&mut self, claim: &FeedClaim) -> Result<Vec<FeedState>> {
        Ok(Sqlite::claim_feeds(self, claim)?)
    }

    fn owner(&self) -> &str {
        &self.owner
    }

    fn act_for(&mut self, owner: &str) {
        owner.clone_into(&mut self.owner);
    }

    fn release_feeds(&mut self) -> Result<usize> {
        Ok(Sqlite::release_feeds(self)?)
    }

    fn heartbeat(&mut self, me: &ProcessInfo, now: i64, lead_until: i64) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let leads = processes::heartbeat(&*tx, &self.owner, me, now, lead_until)?;
        tx.commit()?;
        Ok(leads)
    }

    fn retire(&mut self) -> Result<()> {
        let tx = self.conn.transaction()?;
        processes::retire(&*tx, &self.owner)?;
        tx.commit()?;
        Ok(())
    }

    fn known_items(&self, feed_id: FeedId, ids: &[Identity]) -> Result<HashMap<String, KnownItem>> {
        Ok(Sqlite::known_items(self, feed_id, ids)?)
    }

    fn record_polls(&mut self, polls: &[PollRecord]) -> Result<Vec<Result<RecordSummary>>> {
        Ok(crate::store::error::each(Sqlite::record_polls(
            self, polls,
        )?))
    }

    fn feed_health(&self, names: &[&str]) -> Result<Vec<FeedHealth>> {
        Ok(Sqlite::feed_health(self, names)?)
    }

    fn record_health(
        &mut self,
        changes: &[HealthChange],
        channels: &[String],
        now: i64,
    ) -> Result<usize> {
        Ok(Sqlite::record_health(self, changes, channels, now)?)
    }

    fn health(&self) -> Result<()> {
        Ok(Sqlite::health(self)?)
    }

    fn digest_members(&mut self, channel: &str, cutoff: i64) -> Result<Claimed> {
        Ok(Sqlite::digest_members(self, channel, cutoff)?)
    }

    fn health_pending(&self) -> Result<bool> {
        Ok(Sqlite::health_pending(self)?)
    }

    fn claim_health(&mut self, now: i64, until: i64, channels: &[&str]) -> Result<Claimed> {
        Ok(Sqlite::claim_health(self, now, until, channels)?)
    }

    fn claim_alerts(
        &mut self,
        now: i64,
        until: i64,
        channels: &[&str],
        ignore_hold: bool,
        limit: usize,
    ) -> Result<Claimed> {
        Ok(Sqlite::claim_alerts(
            self,
            now,
            until,
            channels,
            ignore_hold,
            limit,
        )?)
    }

    fn mark_damaged(&mut self, target: Target, id: &str, reason: &str) -> Result<()> {
        Ok(Sqlite::mark_damaged(self, target, id, reason)?)
    }

    fn renew(&self, target: Target, id: &str, until: i64) -> Result<bool> {
        Ok(Sqlite::renew(self, target, id, until)?)
    }

    fn release(&self, target: Target, ids: &[String]) -> Result<()> {
        Ok(Sqlite::release(self, target, ids)?)
    }

    fn create_digest(
        &mut self,
        channel: &str,
        id: &str,
        members: &[String],
        health: &[String],
        body: &str,
        now: i64,
        tick_from: Option<i64>,
    ) -> Result<bool> {
        Ok(Sqlite::create_digest(
            self, channel, id, members, health, body, now, tick_from,
        )?)
    }

    fn claim_digests(
        &mut self,
        now: i64,
        until: i64,
        channels: &[&str],
        any_time: bool,
    ) -> Result<Vec<DueDigest>> {
        Ok(Sqlite::claim_digests(self, now, until, channels, any_time)?)
    }

    fn last_tick(&self, channel: &str) -> Result<Option<i64>> {
        Ok(Sqlite::last_tick(self, channel)?)
    }

    fn take_tick(&self, channel: &str, from: Option<i64>, to: i64) -> Result<bool> {
        Ok(Sqlite::take_tick(self, channel, from, to)?)
    }

    fn mark_sent(&mut self, target: Target, id: &str, now: i64) -> Result<Vec<i64>> {
        Ok(Sqlite::mark_sent(self, target, id, now)?)
    }

    fn mark_alerts_sent(&mut self, ids: &[&str], now: i64) -> Result<Vec<Vec<i64>>> {
        Ok(Sqlite::mark_alerts_sent(self, ids, now)?)
    }

    fn mark_attempt_failed(
        &mut self,
        target: Target,
        id: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<()> {
        Ok(Sqlite::mark_attempt_failed(
            self, target, id, error, retry_at,
        )?)
    }

    fn requeue_failed(&mut self, channel: &str, now: i64) -> Result<Requeued> {
        Ok(Sqlite::requeue_failed(self, channel, now)?)
    }

    fn failing_feeds(&self, names: &[&str], failing_before: i64) -> Result<Vec<FailingFeed>> {
        Ok(Sqlite::failing_feeds(self, names, failing_before)?)
    }

    fn prune_batch(&mut self, cursor: &mut Cursor, cutoff: i64, stories: usize) -> Result<Pruned> {
        Ok(Sqlite::prune_batch(self, cursor, cutoff, stories)?)
    }

    fn reclaim(&mut self, bytes: u64) -> Result<u64> {
        Ok(Sqlite::reclaim(self, bytes)?)
    }

    fn retained(&self) -> Result<Retained> {
        Ok(Sqlite::retained(self)?)
    }

    fn checkpoint(&self) -> Result<()> {
        Ok(Sqlite::checkpoint(self)?)
    }

    fn pending_by_channel(&self) -> Result<Vec<(String, i64)>> {
        Ok(Sqlite::pending_by_channel(self)?)
    }

    fn status(&self) -> Result<Status> {
        Ok(Sqlite::status(self)?)
    }

    fn recent(&self, since: i64) -> Result<Vec<RecentStory>> {
        Ok(Sqlite::recent(self, since)?)
    }

    fn history(&self, since: i64, reading: &mut dyn texts::Reading) -> Result<()> {
        // One snapshot: the items and the alerts agree.
        let tx = self.conn.unchecked_transaction()?;
        Ok(texts::history(&*tx, since, reading)?)
    }

    fn prune_texts(&mut self, cutoff: i64, limit: usize) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = texts::prune(&*tx, cutoff, limit)?;
        tx.commit()?;
        Ok(n)
    }

    fn wire_matches(
        &mut self,
        fp: &Fingerprint,
        item: &Item,
        now: i64,
        window: i64,
        keep: i64,
        feed: &str,
    ) -> Result<Vec<WireMatch>> {
        Ok(Sqlite::wire_matches(
            self, fp, item, now, window, keep, feed,
        )?)
    }

    fn story_of_link(&self, link: &str) -> Result<Option<StoryId>> {
        Ok(Sqlite::story_of_link(self, link)?)
    }

    fn wire_index_size(&self) -> (usize, usize) {
        Sqlite::wire_index_size(self)
    }

    fn robots(&self, origin: &str) -> Result<Option<RobotsTxt>> {
        Ok(robots::get(&self.conn, origin)?)
    }

    fn keep_robots(&mut self, r: &RobotsTxt) -> Result<()> {
        Ok(robots::put(&self.conn, r)?)
    }
}
