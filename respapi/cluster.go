package respapi

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/tidwall/redcon"

	"github.com/countd/countd/cluster"
)

// slots is Redis Cluster's hash slot count: the leader owns all of them.
const slots = 16384

// keySlot is Redis Cluster's slot of key: CRC16 (XMODEM) of the key, or of
// its hash tag (the part between the first "{" and the next "}", when not
// empty), modulo 16384. Clients compute it themselves; MOVED must agree.
func keySlot(key []byte) int {
	if i := bytes.IndexByte(key, '{'); i >= 0 {
		if j := bytes.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for _, b := range key {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % slots
}

// respMember is a member that serves RESP, as the topology commands show
// it.
type respMember struct {
	cluster.MemberStatus
	host string
	port int
}

// respMembers is the leader and the other members of st that advertise a
// RESP address; ok is false when no leader with one is known.
func respMembers(st cluster.Status) (leader respMember, others []respMember, ok bool) {
	for _, m := range st.Members {
		if m.RESPAddr == "" || m.Suffrage == "none" {
			continue
		}
		host, p, err := net.SplitHostPort(m.RESPAddr)
		if err != nil {
			continue
		}
		port, _ := strconv.Atoi(p)
		rm := respMember{MemberStatus: m, host: host, port: port}
		if m.Leader {
			leader, ok = rm, true
		} else {
			others = append(others, rm)
		}
	}
	return leader, others, ok
}

// redisID is a member's ID in Redis Cluster's form: 40 hex characters.
func redisID(id string) string {
	sum := sha1.Sum([]byte(id))
	return hex.EncodeToString(sum[:])
}

func (c *conn) noLeaderLine() string {
	if c.s.cfg.Redirect == RedirectMoved {
		return "CLUSTERDOWN no leader with a Redis address is known (an election is in progress); retry shortly"
	}
	return "TRYAGAIN no leader with a Redis address is known (an election is in progress); retry shortly"
}

// cmdRaftLeader answers the leader's RESP address, as SummitDB does.
func cmdRaftLeader(c *conn, _ [][]byte) {
	leader, _, ok := respMembers(c.s.node.Status())
	if !ok {
		c.errorNow(c.noLeaderLine())
		return
	}
	c.now(func(w *redcon.Writer) { w.WriteBulkString(leader.RESPAddr) })
}

// cmdRaftPeers answers every member's RESP address and role, flat, as
// SummitDB does: addr, "Leader"|"Follower", addr, ….
func cmdRaftPeers(c *conn, _ [][]byte) {
	leader, others, ok := respMembers(c.s.node.Status())
	c.now(func(w *redcon.Writer) {
		all := others
		if ok {
			all = append([]respMember{leader}, others...)
		}
		w.WriteArray(2 * len(all))
		for _, m := range all {
			w.WriteBulkString(m.RESPAddr)
			if m.Leader {
				w.WriteBulkString("Leader")
			} else {
				w.WriteBulkString("Follower")
			}
		}
	})
}

// cmdCluster answers the Redis Cluster commands clients use to learn who
// owns which slot: the leader owns all of them, the followers are its
// replicas.
func cmdCluster(c *conn, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "keyslot":
		if len(args) != 3 {
			c.errorNow("ERR wrong number of arguments for 'cluster|keyslot' command")
			return
		}
		c.now(func(w *redcon.Writer) { w.WriteInt(keySlot(args[2])) })
		return
	case "myid":
		c.now(func(w *redcon.Writer) { w.WriteBulkString(redisID(c.s.node.ID())) })
		return
	case "slots", "shards", "nodes", "info":
	default:
		c.errorNow(fmt.Sprintf("ERR unknown subcommand '%s'. Try CLUSTER SLOTS, SHARDS, NODES, INFO, KEYSLOT or MYID.", clip(sub)))
		return
	}
	leader, others, ok := respMembers(c.s.node.Status())
	if !ok && sub != "info" {
		c.errorNow(c.noLeaderLine())
		return
	}
	self := c.s.node.ID()
	all := append([]respMember{leader}, others...) // the leader first
	c.now(func(w *redcon.Writer) {
		switch sub {
		case "slots":
			w.WriteArray(1)
			w.WriteArray(3 + len(others))
			w.WriteInt(0)
			w.WriteInt(slots - 1)
			for _, m := range all {
				w.WriteArray(3)
				w.WriteBulkString(m.host)
				w.WriteInt(m.port)
				w.WriteBulkString(redisID(m.ID))
			}
		case "shards":
			w.WriteArray(1)
			w.WriteArray(4)
			w.WriteBulkString("slots")
			w.WriteArray(2)
			w.WriteInt(0)
			w.WriteInt(slots - 1)
			w.WriteBulkString("nodes")
			w.WriteArray(1 + len(others))
			applied := c.s.node.State().AppliedIndex()
			for _, m := range all {
				role, health := "replica", "online"
				if m.Leader {
					role = "master"
				}
				if m.GossipStatus != "alive" {
					health = "failed"
				}
				w.WriteArray(14)
				for _, kv := range [][2]string{{"id", redisID(m.ID)}, {"ip", m.host}, {"endpoint", m.host}, {"role", role}, {"health", health}} {
					w.WriteBulkString(kv[0])
					w.WriteBulkString(kv[1])
				}
				w.WriteBulkString("port")
				w.WriteInt(m.port)
				w.WriteBulkString("replication-offset")
				w.WriteUint64(applied)
			}
		case "nodes":
			var b strings.Builder
			for _, m := range all {
				flags, master, slotRange := "slave", redisID(leader.ID), ""
				if m.Leader {
					flags, master, slotRange = "master", "-", " 0-16383"
				}
				if m.ID == self {
					flags = "myself," + flags
				}
				link := "connected"
				if m.GossipStatus != "alive" {
					flags += ",fail"
					link = "disconnected"
				}
				fmt.Fprintf(&b, "%s %s:%d@0 %s %s 0 0 1 %s%s\n", redisID(m.ID), m.host, m.port, flags, master, link, slotRange)
			}
			w.WriteBulkString(b.String())
		case "info":
			state, assigned := "ok", slots
			if !ok {
				state, assigned = "fail", 0
			}
			w.WriteBulkString(fmt.Sprintf("cluster_enabled:1\r\ncluster_state:%s\r\ncluster_slots_assigned:%d\r\ncluster_slots_ok:%d\r\ncluster_known_nodes:%d\r\ncluster_size:1\r\n",
				state, assigned, assigned, len(others)+btoi(ok)))
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// version is countd's module version, "(devel)" in a development build.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return "(devel)"
}

// cmdInfo answers INFO [server|replication|all|default|everything]:
// enough for clients and redis-cli, and the node's Raft view.
func cmdInfo(c *conn, args [][]byte) {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := len(want) == 0 || want["all"] || want["default"] || want["everything"]
	st := c.s.node.Status()
	var b strings.Builder
	if all || want["server"] {
		mode := "standalone"
		if c.s.cfg.Redirect == RedirectMoved {
			mode = "cluster"
		}
		fmt.Fprintf(&b, "# Server\r\nredis_version:7.0.0\r\nredis_mode:%s\r\ncountd_version:%s\r\nprocess_id:%d\r\nrun_id:%s\r\n\r\n",
			mode, version(), os.Getpid(), redisID(st.NodeID))
	}
	if all || want["replication"] {
		role := "slave"
		if st.State == "Leader" {
			role = "master"
		}
		fmt.Fprintf(&b, "# Replication\r\nrole:%s\r\n", role)
		leader, others, ok := respMembers(st)
		if role == "slave" && ok {
			fmt.Fprintf(&b, "master_host:%s\r\nmaster_port:%d\r\nmaster_link_status:up\r\n", leader.host, leader.port)
		}
		if role == "master" {
			fmt.Fprintf(&b, "connected_slaves:%d\r\n", len(others))
		}
		fmt.Fprintf(&b, "cluster_name:%s\r\nnode_id:%s\r\nraft_state:%s\r\nraft_leader_id:%s\r\nraft_term:%d\r\nraft_commit_index:%d\r\nraft_applied_index:%d\r\n\r\n",
			c.s.node.ClusterName(), st.NodeID, st.State, st.LeaderID, st.Term, st.CommitIndex, st.AppliedIndex)
	}
	if all || want["cluster"] {
		fmt.Fprintf(&b, "# Cluster\r\ncluster_enabled:%d\r\n\r\n", btoi(c.s.cfg.Redirect == RedirectMoved))
	}
	c.now(func(w *redcon.Writer) { w.WriteBulkString(strings.TrimSuffix(b.String(), "\r\n")) })
}
