//! The outbox (`store::outbox`) on SQLite: claims, digests and outcomes
//! that change several rows are one transaction; claims take SQLite's
//! write lock first, which is what orders two processes on one file.

use anyhow::Result;
use rusqlite::TransactionBehavior;

use super::{ChannelFault, Claimed, DueDigest, Requeued, Sqlite, Target};
use crate::domain::render::FailingFeed;
use crate::store::outbox;

impl Sqlite {
    /// The database answers a query (the watchdog's health check).
    pub fn health(&self) -> Result<()> {
        outbox::health(&self.conn)
    }

    pub fn digest_members(&mut self, channel: &str, cutoff: i64) -> Result<Claimed> {
        outbox::digest_members(&self.conn, channel, cutoff)
    }

    pub fn health_pending(&self) -> Result<bool> {
        outbox::health_pending(&self.conn)
    }

    pub fn claim_health(&mut self, now: i64, until: i64, channels: &[&str]) -> Result<Claimed> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows = outbox::claim_health(&*tx, &self.owner, now, until, channels)?;
        tx.commit()?;
        outbox::read_back_claimed_health(&self.conn, rows)
    }

    pub fn claim_alerts(
        &mut self,
        now: i64,
        until: i64,
        channels: &[&str],
        ignore_hold: bool,
        limit: usize,
    ) -> Result<Claimed> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows =
            outbox::claim_alerts(&*tx, &self.owner, now, until, channels, ignore_hold, limit)?;
        tx.commit()?;
        outbox::read_back_claimed(&self.conn, &rows)
    }

    pub fn mark_damaged(&mut self, target: Target, id: &str, reason: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        outbox::mark_damaged(&*tx, target, id, reason)?;
        tx.commit()?;
        Ok(())
    }

    pub fn renew(&self, target: Target, id: &str, until: i64) -> Result<bool> {
        outbox::renew(&self.conn, &self.owner, target, id, until)
    }

    pub fn release(&self, target: Target, ids: &[String]) -> Result<()> {
        outbox::release(&self.conn, &self.owner, target, ids)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn create_digest(
        &mut self,
        channel: &str,
        id: &str,
        members: &[String],
        health: &[String],
        body: &str,
        now: i64,
        tick_from: Option<i64>,
    ) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let made = outbox::create_digest(&*tx, channel, id, members, health, body, now, tick_from)?;
        if made {
            tx.commit()?;
        }
        Ok(made)
    }

    pub fn claim_digests(
        &mut self,
        now: i64,
        until: i64,
        channels: &[&str],
        any_time: bool,
    ) -> Result<Vec<DueDigest>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let due = outbox::claim_digests(&*tx, &self.owner, now, until, channels, any_time)?;
        tx.commit()?;
        Ok(due)
    }

    pub fn last_tick(&self, channel: &str) -> Result<Option<i64>> {
        outbox::last_tick(&self.conn, channel)
    }

    pub fn take_tick(&self, channel: &str, from: Option<i64>, to: i64) -> Result<bool> {
        outbox::take_tick(&self.conn, channel, from, to)
    }

    pub fn mark_sent(&mut self, target: Target, id: &str, now: i64) -> Result<Vec<i64>> {
        let tx = self.conn.transaction()?;
        let delivered = outbox::mark_sent(&*tx, &self.owner, target, id, now)?;
        tx.commit()?;
        Ok(delivered)
    }

    /// `mark_sent` of several alerts, in one transaction.
    pub fn mark_alerts_sent(&mut self, ids: &[&str], now: i64) -> Result<Vec<Vec<i64>>> {
        let tx = self.conn.transaction()?;
        let delivered = ids
            .iter()
            .map(|id| outbox::mark_sent(&*tx, &self.owner, Target::Alert, id, now))
            .collect::<Result<_>>()?;
        tx.commit()?;
        Ok(delivered)
    }

    pub fn mark_attempt_failed(
        &mut self,
        target: Target,
        id: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        outbox::mark_attempt_failed(&*tx, Some(&self.owner), target, id, error, retry_at)?;
        tx.commit()?;
        Ok(())
    }

    pub fn requeue_failed(&mut self, channel: &str, now: i64) -> Result<Requeued> {
        let tx = self.conn.transaction()?;
        let requeued = outbox::requeue_failed(&*tx, channel, now)?;
        tx.commit()?;
        Ok(requeued)
    }

    pub fn pause_channel(
        &mut self,
        channel: &str,
        error: &str,
        now: i64,
        jitter: f64,
        not_before: i64,
    ) -> Result<ChannelFault> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let fault = outbox::pause_channel(&*tx, channel, error, now, jitter, not_before)?;
        tx.commit()?;
        Ok(fault)
    }

    pub fn paused_channels(&self, now: i64) -> Result<Vec<(String, ChannelFault)>> {
        outbox::channel_faults(&self.conn, Some(now))
    }

    pub fn failing_feeds(&self, names: &[&str], failing_before: i64) -> Result<Vec<FailingFeed>> {
        outbox::failing_feeds(&self.conn, names, failing_before)
    }
}
