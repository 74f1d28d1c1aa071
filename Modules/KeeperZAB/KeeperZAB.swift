// KeeperZAB: the ZAB replication core as a pure, deterministic state machine.
//
// Entry point: `ZabCore`. The driver (KeeperServer's replica thread) owns sockets, the log, the
// store and the clock; the core owns the protocol. Inputs: `start()`, `step(_:from:)` for a
// peer's message, `tick()` once per tickTime, `logDurable(upTo:)` when a group commit reached
// the disk, `peerDisconnected(_:)`, `propose(_:)` (leader), `forward(_:)` (learner),
// `requestSync(_:)`. Output: `[Action]`, carried out in order.
//
// Sources the phases follow
// - Election: ZooKeeper's FastLeaderElection (lookForLeader, totalOrderPredicate, termPredicate,
//   checkLeader, Vote.equals); votes ordered by (current epoch, last zxid, server id).
// - Discovery: ZAB paper (Junqueira, Reed, Serafini, "Zab: High-performance broadcast for
//   primary-backup systems", DSN 2011), "Phase 1: Discovery"; ZooKeeper's Leader.lead /
//   getEpochToPropose / waitForEpochAck (FOLLOWERINFO, LEADERINFO, ACKEPOCH). ZooKeeper
//   Internals, "Leader Activation".
// - Synchronization: ZAB paper "Phase 2: Synchronization"; ZooKeeper's
//   LearnerHandler.syncFollower (DIFF, TRUNC, SNAP; no TRUNC across an epoch boundary) and
//   Learner.syncWithLeader (NEWLEADER acknowledged after the history is durable, currentEpoch
//   recorded before the ACK).
// - Broadcast: ZAB paper "Phase 3: Broadcast"; ZooKeeper Internals, "Active Messaging";
//   Leader.processAck / tryToCommit (COMMIT on a quorum of ACKs, INFORM to observers),
//   Leader.lead's ping loop ("Not sufficient followers synced": step down after syncLimit),
//   Leader.propose (zxid counter rollover forces a new epoch).
//
// Invariants (kept by preconditions, checked on every event by Tests/Simulation)
// 1. appliedZxid <= durableZxid <= history.last and appliedZxid <= committedZxid: the store
//    never holds a txn the log could lose after a crash, nor one that is not committed.
// 2. history.base <= appliedZxid: every txn not yet applied is in memory, so a SNAP (at the
//    applied zxid) is always followed by the rest of the history.
// 3. A learner appends only zxids above its last one, and only from its leader's FIFO
//    connection: its log is always a prefix of some leader's history.
// 4. currentEpoch is persisted only once the history it vouches for is durable (a learner at
//    NEWLEADER, the leader after the ACKEPOCH quorum), so a vote's (epoch, zxid) claim holds.
// 5. A leader commits txns of its own epoch only on a quorum of durable ACKs (its own counted
//    once its log is durable), and txns of earlier epochs only when a quorum acknowledged
//    NEWLEADER for its whole history.
// 6. Observers never vote, never count in a quorum, and receive only committed txns.
//
// Actions contract ("persist before you send", see `Action`)
// - Carry out one list in order. persistAcceptedEpoch, persistCurrentEpoch, truncateLog and
//   installSnapshot are durable before the next action; appendLog is asynchronous and answered
//   by logDurable(upTo:). Before truncateLog or installSnapshot, finish (and report) the appends
//   in flight.
// - commit(upTo:) never exceeds what logDurable reported. A SNAP message carries the store as
//   of the last commit(upTo:) before it (apply pending commits first).
// - Election notifications may be lost, duplicated or reordered; every other message rides the
//   learner's connection, FIFO while it lasts; peerDisconnected(_:) is reported before any
//   message of a newer connection from that peer.
