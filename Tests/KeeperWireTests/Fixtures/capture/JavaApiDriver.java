// Drives the Java client API through the requests zkCli.sh has no command for: multi (with
// every op kind, and a failing one), multiRead, checkWatches (removing one specific watcher),
// create2 with a Stat. Run as a single-file program (see capture.sh).
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.apache.zookeeper.*;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Stat;

public class JavaApiDriver {
    public static void main(String[] args) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(args[0], 10000, e -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) connected.countDown();
        });
        connected.await();
        List<ACL> open = ZooDefs.Ids.OPEN_ACL_UNSAFE;
        Stat stat = new Stat();
        zk.create("/ja", "root".getBytes(), open, CreateMode.PERSISTENT, stat);
        zk.create("/ja/nulldata", null, open, CreateMode.PERSISTENT);
        zk.getData("/ja/nulldata", false, stat);
        zk.multi(Arrays.asList(
            Op.create("/ja/m1", "one".getBytes(), open, CreateMode.PERSISTENT),
            Op.create("/ja/m2", "two".getBytes(), open, CreateMode.PERSISTENT_SEQUENTIAL),
            Op.create("/ja/mc", new byte[0], open, CreateMode.CONTAINER),
            Op.create("/ja/mt", new byte[0], open, CreateMode.PERSISTENT_WITH_TTL, 60000),
            Op.setData("/ja/m1", "uno".getBytes(), 0),
            Op.check("/ja/m1", 1),
            Op.delete("/ja/m1", -1)));
        try {
            zk.multi(Arrays.asList(
                Op.create("/ja/x1", new byte[0], open, CreateMode.PERSISTENT),
                Op.check("/ja", 42),
                Op.delete("/ja/nulldata", -1)));
        } catch (KeeperException expected) {
        }
        zk.multi(Arrays.asList(
            Op.getData("/ja"),
            Op.getChildren("/ja"),
            Op.getData("/ja/none")));
        Watcher w = e -> { };
        zk.getData("/ja", w, stat);
        zk.exists("/ja/nulldata", w);
        zk.removeWatches("/ja", w, Watcher.WatcherType.Data, false);
        try {
            zk.removeWatches("/ja/m2", w, Watcher.WatcherType.Children, false);
        } catch (KeeperException expected) {
        }
        zk.removeAllWatches("/ja/nulldata", Watcher.WatcherType.Any, false);
        zk.addWatch("/ja", AddWatchMode.PERSISTENT_RECURSIVE);
        zk.getAllChildrenNumber("/ja");
        zk.getEphemerals("/");
        ZKUtil.deleteRecursive(zk, "/ja");
        zk.close();
        System.out.println("java api: done");
    }
}
