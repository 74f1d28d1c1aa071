// KeeperZAB: the ZAB replication core as a pure state machine.
//
// Entry point: `ZabCore` (ZabCore.swift). Its documentation lists the phases and the ZAB paper
// sections and ZooKeeper classes each follows, and the invariants it keeps; `Action` states the
// driver's contract ("persist before you send"); `Message` states what the transport must
// guarantee. Tests/Simulation runs whole ensembles of cores under network, disk and crash
// faults and checks the ZAB properties.
