package main

// queue zk-config: a ZooKeeper server list from a queue's members, whose
// counters are the servers' myid values.

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

// ZooKeeper server-list tags a member may carry to override the flags for
// its own line, for several servers sharing one host.
const (
	tagZKQuorumPort   = "zk.quorum_port"
	tagZKElectionPort = "zk.election_port"
	tagZKClientPort   = "zk.client_port"
)

// zkPorts are the ports of one server line; client 0 means none.
type zkPorts struct {
	quorum, election, client int
}

func (a *app) queueZKConfig() *cobra.Command {
	var (
		ports      string
		clientPort int
	)
	cmd := &cobra.Command{
		Use:   "zk-config",
		Short: "Print a ZooKeeper server list: server.<counter>=<process_id>:2888:3888 in counter order",
		Long: `Print one ZooKeeper server line per member, in counter order:

  server.<counter>=<process_id>:<quorum port>:<election port>[;<client port>]

so the queue's counters are the servers' myid values (see join --myid-file).
--ports Q:E sets the quorum and election ports (default 2888:3888);
--client-port P appends ";P" (ZooKeeper 3.5+ dynamic configuration).

Servers sharing one host need their own ports (and process IDs that differ
yet name that host, such as aliases zk1, zk2, zk3 in /etc/hosts). A member
whose tags include zk.quorum_port, zk.election_port or zk.client_port gets
those values on its line instead of the flags', for example:

  countctl -i myzk queue -p zk2 join --tag zk.quorum_port=2889 \
      --tag zk.election_port=3889 --tag zk.client_port=2182

The output is the same with -o json and -o text.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := a.requireID()
			if err != nil {
				return err
			}
			def, err := parseZKPorts(ports)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("client-port") {
				if !validPort(clientPort) {
					return usagef("--client-port must be a port number from 1 to 65535, got %d", clientPort)
				}
				def.client = clientPort
			}
			return show(a, readQueue(id), func(_ *client.Client, q *api.Queue) error {
				lines, err := zkConfigLines(q.Members, def)
				if err != nil {
					return fmt.Errorf("queue %s: %w", id, err)
				}
				for _, l := range lines {
					if _, err := fmt.Fprintln(a.stdout, l); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&ports, "ports", "2888:3888", "quorum and election ports, Q:E")
	cmd.Flags().IntVar(&clientPort, "client-port", 0, "client port to append as ;P")
	return cmd
}

func validPort(p int) bool { return p >= 1 && p <= 65535 }

// parseZKPorts parses --ports Q:E.
func parseZKPorts(s string) (zkPorts, error) {
	qs, es, ok := strings.Cut(s, ":")
	q, qerr := strconv.Atoi(qs)
	e, eerr := strconv.Atoi(es)
	if !ok || qerr != nil || eerr != nil || !validPort(q) || !validPort(e) {
		return zkPorts{}, usagef("--ports must be QUORUM:ELECTION, two port numbers from 1 to 65535, got %q", s)
	}
	return zkPorts{quorum: q, election: e}, nil
}

// zkConfigLines renders members as ZooKeeper server lines in counter order,
// each with def's ports unless the member's zk.* tags override them.
func zkConfigLines(members []api.Ticket, def zkPorts) ([]string, error) {
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(x, y api.Ticket) int { return cmp.Compare(x.Counter, y.Counter) })
	lines := make([]string, 0, len(sorted))
	for _, m := range sorted {
		p := def
		for _, o := range []struct {
			tag  string
			port *int
		}{{tagZKQuorumPort, &p.quorum}, {tagZKElectionPort, &p.election}, {tagZKClientPort, &p.client}} {
			v, ok := m.Tags[o.tag]
			if !ok {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || !validPort(n) {
				return nil, fmt.Errorf("member %s has tag %s=%q, which is not a port number from 1 to 65535", m.ProcessID, o.tag, v)
			}
			*o.port = n
		}
		line := fmt.Sprintf("server.%d=%s:%d:%d", m.Counter, m.ProcessID, p.quorum, p.election)
		if p.client != 0 {
			line += ";" + strconv.Itoa(p.client)
		}
		lines = append(lines, line)
	}
	return lines, nil
}
